"""Step 1, input: the address (resolved), the serial's and access code's shape, the trust
settings. All four are checked even when one fails, so that one run names every mistake."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time

from bambu_lan.config import access_code_problem, normalize_host
from bambu_lan.doctor.result import Status, Step
from bambu_lan.doctor.run import Blocked, DoctorRun
from bambu_lan.errors import ConfigError
from bambu_lan.protocol.topics import serial_problem
from bambu_lan.trust import load_ca_files


async def check_input(run: DoctorRun) -> None:
    failed: list[Step] = []
    for check in (_input_host, _input_serial, _input_code, _input_trust):
        step = await check(run)
        if step.failed:
            failed.append(step)
    if failed:
        run.blocker = failed[0]
        raise Blocked


async def _input_host(run: DoctorRun) -> Step:
    started = time.monotonic()
    port = run.cfg.port
    fix_where = "the printer shows its IP address in Settings > WLAN (A1) or Network (P1/X1)"
    try:  # the one normalisation every command uses (trim, [IPv6], host:port, URL, IDNA)
        host = normalize_host(run.cfg.host)
    except ConfigError as exc:
        cause = "host_invalid" if run.cfg.host.strip() else "host_missing"
        return run.record(
            "input.host", Status.FAIL, str(exc), cause=cause, fix=exc.hint or fix_where,
            started=started,
        )  # fmt: skip
    if host != run.cfg.host:
        run.use_host(host)
    if not 0 < port < 65536:
        return run.record(
            "input.host", Status.FAIL, f"port {port} is out of range", cause="port_invalid",
            fix="leave --port out: printers listen on 8883", started=started,
        )  # fmt: skip
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        run.addresses = [str(address)]
        note = f"IPv{address.version}"
        if address.is_loopback:
            note += ", loopback (a simulator on this machine?)"
        return run.record(
            "input.host", Status.PASS, f"{host} ({note})", started=started,
            data={"addresses": run.addresses},
        )  # fmt: skip
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(run.t.resolve):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (TimeoutError, OSError) as exc:
        why = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        return run.record(
            "input.host", Status.FAIL, f"the host name {host!r} does not resolve ({why})",
            cause="host_unknown",
            fix=f"use the printer's IP address instead of a name; {fix_where}",
            started=started,
        )  # fmt: skip
    run.addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    return run.record(
        "input.host", Status.PASS, f"{host} resolves to {', '.join(run.addresses)}",
        started=started, data={"addresses": run.addresses},
    )  # fmt: skip


async def _input_serial(run: DoctorRun) -> Step:
    serial = run.cfg.serial
    problem = serial_problem(serial)
    if problem:
        return run.record(
            "input.serial", Status.FAIL, problem, cause="serial_invalid",
            fix="copy the serial from the printer's screen (Settings > Device) or its "
            "label: 15 characters, digits and capital letters",
        )  # fmt: skip
    return run.record("input.serial", Status.PASS, f"{serial} (15 characters, upper case)")


async def _input_code(run: DoctorRun) -> Step:
    problem = access_code_problem(run.code)
    if problem:
        return run.record(
            "input.access_code", Status.FAIL, problem, cause="access_code_invalid",
            fix="read the access code on the printer's screen (A1: Settings > WLAN; P1/X1: "
            "Settings > Network, LAN-only mode) and pass --access-code or BAMBU_ACCESS_CODE",
        )  # fmt: skip
    return run.record("input.access_code", Status.PASS, "8 characters (not shown)")


async def _input_trust(run: DoctorRun) -> Step:
    trust = run.cfg.trust
    mode = trust.mode
    if mode == "insecure":
        return run.record(
            "input.trust", Status.WARN,
            "--insecure: the printer's identity is not checked; the access code goes to "
            "whoever answers at this address",
            fix="drop --insecure (the certificate is then pinned on first use) or pass "
            "--ca-file/--ca-dir", required=False,
        )  # fmt: skip
    if mode == "pin":
        path = trust.known_printers_path()
        return run.record(
            "input.trust", Status.PASS,
            f"no CA given: the certificate is pinned on first use in {path}",
        )  # fmt: skip
    try:
        files = trust.ca_files()
        load_ca_files(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), files)
    except ConfigError as exc:
        return run.record(
            "input.trust", Status.FAIL, str(exc), cause="trust_config",
            fix=exc.hint or "pass a PEM file with --ca-file, or a bambu_certs/ folder with "
            "--ca-dir; for the simulator, its ca.pem",
        )  # fmt: skip
    names = ", ".join(str(p) for p in files)
    return run.record("input.trust", Status.PASS, f"CA: {names}")
