"""Steps 2 and 3, network and TLS: TCP to the MQTT port (refused, no answer and unreachable
told apart) and the extra ports; a TLS 1.2 handshake, TLS 1.3, the certificate, its CN against
the serial, the chain against the given CA and the pinned fingerprint. No credentials are sent
in these steps, and nothing is pinned."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ssl
import time
from datetime import UTC, datetime
from typing import Any

from bambu_lan.doctor.probes import probe_plain_mqtt, tls13_only_context, tls_handshake
from bambu_lan.doctor.result import Status, Step
from bambu_lan.doctor.run import Blocked, DoctorRun
from bambu_lan.errors import ConfigError
from bambu_lan.protocol.topics import serial_problem
from bambu_lan.trust import KnownPrinters, PeerCertificate, pretty_fingerprint, tls12_context


async def check_network(run: DoctorRun) -> None:
    tcp = await _tcp_step(run, "net.tcp", run.cfg.port, required=True)
    for port in run.extra_ports:
        await _tcp_step(run, f"net.port_{port}", port, required=False)
    if tcp.failed:
        run.blocker = tcp
        raise Blocked


async def _tcp_step(run: DoctorRun, step_id: str, port: int, *, required: bool) -> Step:
    started = time.monotonic()
    host = run.cfg.host
    where = f"{host}:{port}"
    try:
        async with asyncio.timeout(run.t.tcp):
            _reader, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        evidence, cause = f"no answer from {where} within {run.t.tcp:g} s", "no_answer"
        fix = (
            "check the IP on the printer's screen (Settings > WLAN), that the printer is on "
            "and on the same network as this computer (not a guest Wi-Fi or another VLAN), "
            "and that no firewall drops the traffic"
        )
    except ConnectionRefusedError:
        evidence, cause = (
            f"{where} refused the connection (nothing listens there)",
            "port_closed",
        )
        fix = (
            "a device answers at this address but not on this port: turn on LAN-only mode "
            "on the printer (some firmware closes 8883 in cloud mode), check that the IP is "
            "the printer's (Settings > WLAN) and that --port is 8883"
        )
    except OSError as exc:
        if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN):
            evidence = f"no route to {host} ({exc.strerror})"
            cause = "host_unreachable"
            fix = (
                "this computer cannot reach that address: is the printer on and is the IP "
                "right (Settings > WLAN)? Same network, no VPN in the way?"
            )
        else:
            evidence, cause = (
                f"cannot connect to {where}: {exc.strerror or exc}",
                "network_error",
            )
            fix = "check the address and this computer's network connection"
    else:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return run.record(
            step_id, Status.PASS, f"{where} accepts TCP connections",
            required=required, started=started,
        )  # fmt: skip
    if not required:
        return run.record(
            step_id, Status.WARN, evidence, required=False, started=started,
            fix="only needed for files (FTPS) or the camera; MQTT does not use it",
        )  # fmt: skip
    return run.record(step_id, Status.FAIL, evidence, cause=cause, fix=fix, started=started)


async def check_tls(run: DoctorRun) -> None:
    cfg, t = run.cfg, run.t
    started = time.monotonic()
    hs = await asyncio.to_thread(tls_handshake, cfg.host, cfg.port, tls12_context(), t.tls)
    if hs.outcome != "ok" and await asyncio.to_thread(probe_plain_mqtt, cfg.host, cfg.port, t.tls):
        run.fail(
            "tls.handshake",
            f"{cfg.host}:{cfg.port} answers MQTT without TLS (a CONNACK to a CONNECT without "
            f"credentials); TLS 1.2: {hs.detail}",
            "plain_mqtt",
            "this is a plain MQTT broker, not a Bambu printer's port (printers speak MQTT "
            "over TLS on 8883): check --port and --host; no credentials were sent",
            started=started, data={"outcome": hs.outcome},
        )  # fmt: skip
    if hs.outcome != "ok" or hs.der is None:
        cause, fix = {
            "no_answer": (
                "tls_no_answer",
                "the port accepts TCP but does not answer TLS: is this a Bambu printer's "
                "MQTT port (8883)? A printer that is overloaded or starting up may do "
                "this too: wait a minute, restart it if it persists",
            ),
            "not_tls": (
                "not_tls",
                "another service answers on this port: printers speak MQTT over TLS on "
                "8883 (check --port and the IP)",
            ),
        }.get(
            hs.outcome,
            (
                "tls_refused",
                "the printer speaks TLS 1.2 with AES-GCM suites; check that the IP is the "
                "printer's, and that this system's OpenSSL allows TLS 1.2 and "
                "AES256-GCM-SHA384 (some hardened builds drop them)",
            ),
        )
        run.fail(
            "tls.handshake", f"TLS 1.2 with {cfg.host}:{cfg.port}: {hs.detail}",
            cause, fix, started=started, data={"outcome": hs.outcome},
        )  # fmt: skip
    assert hs.der is not None
    cipher = hs.cipher[0] if hs.cipher else "?"
    run.record(
        "tls.handshake", Status.PASS, f"{hs.version}, cipher {cipher}", started=started,
        data={"version": hs.version, "cipher": cipher},
    )  # fmt: skip
    run.peer = peer = PeerCertificate.from_der(hs.der)

    await _tls13_step(run)
    _certificate_step(run, peer)
    _serial_step(run, peer)
    if cfg.trust.mode == "ca":
        await _chain_step(run)
    _pin_step(run, peer)


async def _tls13_step(run: DoctorRun) -> None:
    started = time.monotonic()
    if not ssl.HAS_TLSv1_3:
        run.record("tls.tls13", Status.SKIP, "this system's OpenSSL has no TLS 1.3", required=False)
        return
    cfg = run.cfg
    run.tls13 = r = await asyncio.to_thread(
        tls_handshake, cfg.host, cfg.port, tls13_only_context(), run.t.tls13
    )
    pin = "clients must pin TLS 1.2 (bambu-lan does)"
    if r.outcome in ("refused", "closed"):
        evidence = f"refused ({r.detail}): the printer accepts only TLS 1.2; {pin}"
        behaviour = "refused"
    elif r.outcome == "no_answer":
        evidence = (
            f"no answer within {run.t.tls13:g} s: the printer never answers a TLS 1.3 "
            f"ClientHello, so a client offering 1.3 hangs; {pin}"
        )
        behaviour = "no answer"
    elif r.outcome == "ok":
        evidence = f"accepted ({r.version}); bambu-lan still pins TLS 1.2, as printers need"
        behaviour = "accepted"
    else:
        evidence, behaviour = f"inconclusive: {r.detail}", "inconclusive"
    status = Status.WARN if behaviour == "inconclusive" else Status.PASS
    run.record(
        "tls.tls13", status, evidence, required=False, started=started,
        data={"behaviour": behaviour},
    )  # fmt: skip


def _certificate_step(run: DoctorRun, peer: PeerCertificate) -> None:
    now = datetime.now(UTC)
    evidence = (
        f"CN={peer.subject_cn or '(none)'}, issuer CN={peer.issuer_cn or '(none)'}, "
        f"valid {peer.not_before:%Y-%m-%d} to {peer.not_after:%Y-%m-%d}, "
        f"X.509 v{peer.version}, {pretty_fingerprint(peer.fingerprint)}"
    )
    data = {
        "subject_cn": peer.subject_cn,
        "issuer_cn": peer.issuer_cn,
        "not_before": peer.not_before.isoformat(),
        "not_after": peer.not_after.isoformat(),
        "version": peer.version,
        "fingerprint_sha256": peer.fingerprint,
    }
    if not peer.not_before <= now <= peer.not_after:
        when = "expired" if now > peer.not_after else "not valid yet"
        run.record(
            "tls.certificate", Status.WARN, f"{evidence}; {when} by this computer's clock",
            fix="check this computer's date and time; with a CA file, OpenSSL refuses "
            "certificates outside their validity", required=False, data=data,
        )  # fmt: skip
        return
    run.record("tls.certificate", Status.PASS, evidence, data=data)


def _serial_step(run: DoctorRun, peer: PeerCertificate) -> None:
    serial, cn = run.cfg.serial, peer.subject_cn
    if cn == serial:
        run.record("tls.serial", Status.PASS, f"CN {cn} is the configured serial")
        return
    host = run.cfg.host
    if serial_problem(cn):
        evidence = (
            f"the device at {host} presents CN={cn or '(none)'}, which is not a Bambu "
            f"serial: this is probably not a Bambu printer"
        )
    else:
        evidence = f"the printer at {host} is {cn}, not {serial}"
    run.fail(
        "tls.serial", evidence, "serial_mismatch",
        "either the IP belongs to another printer or the serial is mistyped: check both on "
        "the printer's screen (Settings > Device for the serial, Settings > WLAN for the "
        "IP). No credentials were sent.",
        data={"presented": cn, "configured": serial},
    )  # fmt: skip


async def _chain_step(run: DoctorRun) -> None:
    started = time.monotonic()
    cfg = run.cfg
    files = cfg.trust.ca_files()
    names = ", ".join(str(p) for p in files)
    r = await asyncio.to_thread(tls_handshake, cfg.host, cfg.port, tls12_context(files), run.t.tls)
    if r.outcome == "ok":
        run.record("tls.chain", Status.PASS, f"verifies against {names}", started=started)
        return
    detail = (r.verify_message or r.detail).lower()
    if r.outcome == "verify_failed" and ("expired" in detail or "not yet valid" in detail):
        run.fail(
            "tls.chain", f"the certificate is outside its validity dates: {detail}",
            "certificate_dates",
            "check the date and time on the printer (it sets its clock from the network: a "
            "printer without internet may have lost it) and on this computer. No "
            "credentials were sent.",
            started=started,
        )  # fmt: skip
    if r.outcome == "verify_failed":
        run.fail(
            "tls.chain", f"not signed by {names}: {r.verify_message or r.detail}",
            "untrusted_certificate",
            "for a real printer use Bambu's CA files (bambu_certs/: bambu.cert and the "
            "newer bambu_*.cert); for the simulator its ca.pem; if those are right, "
            "something else answers at this address. No credentials were sent.",
            started=started,
        )  # fmt: skip
    run.fail(
        "tls.chain", f"second handshake failed: {r.detail}", "tls_refused",
        "run the doctor again; if it persists the printer may be overloaded",
        started=started,
    )  # fmt: skip


def _pin_step(run: DoctorRun, peer: PeerCertificate) -> None:
    trust = run.cfg.trust
    path = trust.known_printers_path()
    data: dict[str, Any] = {"file": str(path), "fingerprint_sha256": peer.fingerprint}
    now = pretty_fingerprint(peer.fingerprint)
    try:
        pinned = KnownPrinters(path).get(run.cfg.serial)
    except ConfigError as exc:
        run.record(
            "tls.pin", Status.WARN, str(exc), fix=exc.hint or "check the file's permissions",
            required=False, data=data,
        )  # fmt: skip
        return
    data["pinned"] = pinned
    if trust.mode == "insecure":
        run.record(
            "tls.pin", Status.WARN, "--insecure: no identity check at all",
            fix="drop --insecure", required=False, data=data,
        )  # fmt: skip
        return
    if pinned is None:
        data["status"] = "not pinned"
        if trust.mode == "ca":
            evidence = f"not pinned (not needed: trusted through the CA); now {now}"
        else:
            evidence = (
                f"not pinned yet: the first connection of bambu-lan will pin {now} in "
                f"{path} (the doctor pins nothing)"
            )
        run.record("tls.pin", Status.PASS, evidence, data=data)
        return
    if pinned == peer.fingerprint:
        data["status"] = "matching"
        run.record("tls.pin", Status.PASS, f"pinned and matching ({now})", data=data)
        return
    data["status"] = "changed"
    evidence = (
        f"changed since pinning: the printer presents {now}, {path} has "
        f"{pretty_fingerprint(pinned)}"
    )
    fix = (
        "if the printer was reset, repaired or replaced, forget the old pin with "
        f"`bambu-lan trust forget {run.cfg.serial}` (or delete its line in {path}) and "
        "connect again; otherwise another device answers at this address: check the IP"
    )
    if trust.mode == "ca":
        # The library trusts the CA here and ignores pins: worth knowing, not a failure.
        run.record(
            "tls.pin", Status.WARN, evidence + " (ignored: trusted through the CA)",
            fix=fix, required=False, data=data,
        )  # fmt: skip
        return
    run.fail("tls.pin", evidence, "certificate_changed", fix, data=data)
