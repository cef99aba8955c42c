"""The measured side of the benchmarks: one library doing one task in a fresh process.

    python benchmarks/clients.py TASK '{"lib": "...", ...}'

TASK is ``first-state``, ``handle``, ``farm`` or ``recover``; the JSON argument carries the
library and its parameters. Results go to stdout as JSON lines (other lines, such as a peer
library's own prints, are ignored by the benchmark). Times are ``time.monotonic()``, which on
Linux every process shares, so the benchmark can compare them with its own.

This file runs in two virtualenvs: the project's (bambu-lan, bare paho) and
``benchmarks/.peers-venv`` (the peer libraries, which must not see bambu-lan). So it imports
only the standard library at the top, and each library inside the function that uses it:
that also keeps every library's import cost inside what a cold first-state run measures.

Libraries (``lib``):
    bambu-lan          bambu_lan.Printer (asyncio) / bambu_lan.Farm
    bambu-lan-sync     bambu_lan.SyncPrinter (blocking)
    bambu-lan-status   ``bambu-lan status --json`` (first-state only)
    paho               a bare paho-mqtt script: the floor
    bambulabs-api      bambulabs_api.Printer
    bambu-printer-manager   bpm.bambuprinter.BambuPrinter
    bambu-mqtt-comms   bambu_mqtt_comms.BambuMQTTClient
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

T_MAIN = time.monotonic()  # the interpreter is up and this module is running

# A report counts as a full one when it is a push_status with msg 0 (A1, P1: protocol.md
# §3.5). Peers are given this test on the raw payload; it costs one substring search.
FULL_MARKER = b'"msg":0'
PUSH_MARKER = b'"push_status"'

Config = dict[str, Any]


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def finish(**fields: Any) -> None:
    """Report and leave at once: teardown (DISCONNECT, thread joins) is not measured, and the
    kernel closes the sockets, which the simulator sees as a closed connection."""
    emit(**fields)
    sys.stdout.flush()
    os._exit(0)


def is_full(payload: bytes) -> bool:
    return PUSH_MARKER in payload and FULL_MARKER in payload


def rss_mb() -> float:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def top_functions(stats: Any, count: int) -> list[dict[str, Any]]:
    """The ``count`` functions of a ``pstats.Stats`` with the most time of their own; time
    spent waiting in ``epoll`` (an idle event loop) is left out of the shares."""
    import re

    entries = {key: value for key, value in stats.stats.items() if "select.epoll" not in key[2]}
    total = sum(tt for (_cc, _nc, tt, _ct, _callers) in entries.values()) or 1.0
    rows = []
    for (filename, line, name), (_cc, calls, tottime, cumtime, _callers) in entries.items():
        where = re.sub(r"^.*/(src|site-packages|lib/python3\.\d+)/", "", filename)
        rows.append(
            {
                "function": f"{where}:{line}({name})",
                "calls": calls,
                "own_share": tottime / total,
                "cumulative_share": cumtime / total,
            }
        )
    rows.sort(key=lambda row: row["own_share"], reverse=True)
    return rows[:count]


# --- first full state -----------------------------------------------------------------------
# Each returns when the library holds the printer's full state; ``mark`` notes milestones.


def first_state_paho(cfg: Config, mark: Callable[[str], None]) -> None:
    """The floor: TLS 1.2 (CA checked), subscribe on CONNACK, pushall, wait for msg 0."""
    import ssl

    import paho.mqtt.client as mqtt

    mark("imported")
    context = ssl.create_default_context(cafile=cfg["ca_path"])
    context.check_hostname = False  # the leaf's CN is the serial, not the address
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-{os.getpid()}", protocol=mqtt.MQTTv311
    )
    client.username_pw_set("bblp", cfg["access_code"])
    client.tls_set_context(context)
    serial = cfg["serial"]

    def on_connect(client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            raise SystemExit(f"CONNACK {reason}")
        client.subscribe(f"device/{serial}/report")
        pushall = {"pushing": {"sequence_id": "1", "command": "pushall"}}
        client.publish(f"device/{serial}/request", json.dumps(pushall))

    def on_message(client: Any, userdata: Any, message: Any) -> None:
        report = json.loads(message.payload).get("print", {})
        if report.get("command") == "push_status" and report.get("msg") == 0:
            mark("full")
            client.disconnect()  # ends loop_forever

    client.on_connect = on_connect
    client.on_message = on_message
    client.connect(cfg["host"], cfg["port"], keepalive=30)
    client.loop_forever()


def first_state_bambu_lan(cfg: Config, mark: Callable[[str], None]) -> None:
    import asyncio

    from bambu_lan import Printer

    mark("imported")

    async def run() -> None:
        async with Printer(
            cfg["host"], cfg["serial"], cfg["access_code"], port=cfg["port"], ca_file=cfg["ca_path"]
        ) as printer:
            await printer.wait_for_state(timeout=cfg["timeout"])
            finish_first_state()

    asyncio.run(run())


def first_state_bambu_lan_sync(cfg: Config, mark: Callable[[str], None]) -> None:
    from bambu_lan import SyncPrinter

    mark("imported")
    with SyncPrinter(
        cfg["host"], cfg["serial"], cfg["access_code"], port=cfg["port"], ca_file=cfg["ca_path"]
    ) as printer:
        printer.wait_for_state(timeout=cfg["timeout"])
        finish_first_state()


def first_state_bambu_lan_status(cfg: Config, mark: Callable[[str], None]) -> None:
    """``bambu-lan status --json`` in this process: the command line's own imports (status,
    the library, asyncio) are made while it runs, so they fall in "connect to full" here.
    Full is when the JSON is written (the person sees the state); the goodbye to the printer
    after it is not counted, as no client's teardown is."""
    import contextlib
    import io

    from bambu_lan.cli.main import main

    class Output(io.StringIO):
        def write(self, text: str) -> int:
            _MARKS.setdefault("full", time.monotonic())
            return super().write(text)

    mark("imported")
    out = Output()
    args = ["status", "--json", "--host", cfg["host"], "--port", str(cfg["port"])]
    args += ["--serial", cfg["serial"], "--access-code", cfg["access_code"]]
    args += ["--ca-file", cfg["ca_path"], "--timeout", str(cfg["timeout"])]
    with contextlib.redirect_stdout(out):
        main(args)
    if not json.loads(out.getvalue()).get("complete"):
        raise SystemExit("status --json printed no complete state")
    finish_first_state()


def make_bambulabs_api(
    cfg: Config, on_full: Callable[[], None], on_message: Callable[[], None] = lambda: None
) -> Any:
    """A ``bambulabs_api.Printer`` whose message hook (it runs after the report was merged
    into the client's data, its ``dump()``) calls ``on_message``, and ``on_full`` after each
    full report."""
    import bambulabs_api

    printer = bambulabs_api.Printer(cfg["host"], cfg["access_code"], cfg["serial"])
    if cfg["port"] != 8883:
        printer.mqtt_client._port = cfg["port"]  # Printer() has no port argument  # noqa: SLF001 - the peer's own hook (no public one)

    def hook(mqtt_client: Any, client: Any, userdata: Any, message: Any) -> None:
        on_message()
        if is_full(message.payload):
            on_full()

    printer.mqtt_client.on_message_handler = hook
    return printer


def first_state_bambulabs_api(cfg: Config, mark: Callable[[str], None]) -> None:
    import threading

    import bambulabs_api  # noqa: F401  (imported here so that the import is measured)

    mark("imported")
    done = threading.Event()
    printer = make_bambulabs_api(cfg, done.set)
    printer.mqtt_start()  # connects in paho's thread; pushall + get_version on CONNACK
    if not done.wait(cfg["timeout"]):
        raise SystemExit("bambulabs-api: no full state")
    finish_first_state()


def make_bpm(
    cfg: Config, on_full: Callable[[], None], on_message: Callable[[], None] = lambda: None
) -> Any:
    """A bambu-printer-manager ``BambuPrinter``; ``on_message`` after each report, ``on_full``
    after its state was rebuilt from a full report. Its project-info fetch at a job's start
    reads the SD card over FTPS (port 990), where the benchmark's simulators serve nothing:
    that fetch answers "no files" here instead of failing in the MQTT thread."""
    import tempfile
    from pathlib import Path

    from bpm.bambuconfig import BambuConfig
    from bpm.bambuprinter import BambuPrinter

    config = BambuConfig(
        hostname=cfg["host"],
        access_code=cfg["access_code"],
        serial_number=cfg["serial"],
        mqtt_port=cfg["port"],
        watchdog_timeout=int(cfg.get("watchdog", 30)),
        # Not ~/.bpm: the benchmark's own cache directory (removed after the run).
        bpm_cache_path=Path(os.environ.get("XDG_CACHE_HOME") or tempfile.gettempdir()) / "bpm",
    )
    printer = BambuPrinter(config=config)
    printer.get_sdcard_3mf_files = dict
    handler = printer._on_message  # noqa: SLF001 - the peer's own hook (no public one)

    def hook(text: str) -> None:
        handler(text)
        on_message()
        if '"msg":0' in text and '"push_status"' in text:
            on_full()

    printer._on_message = hook  # its paho callback looks the handler up on each message  # noqa: SLF001 - the peer's own hook (no public one)
    return printer


def first_state_bpm(cfg: Config, mark: Callable[[str], None]) -> None:
    import threading

    import bpm.bambuprinter  # noqa: F401  (imported here so that the import is measured)

    mark("imported")
    done = threading.Event()
    printer = make_bpm(cfg, done.set)
    printer.start_session()  # its watchdog thread sends get_version + pushall once connected
    if not done.wait(cfg["timeout"]):
        raise SystemExit("bambu-printer-manager: no full state")
    finish_first_state()


def make_comms(cfg: Config, on_message: Callable[[bytes], None] | None = None) -> Any:
    from bambu_mqtt_comms import BambuMQTTClient, PrinterConfig

    client = BambuMQTTClient(
        PrinterConfig(
            ip=cfg["host"], serial=cfg["serial"], access_code=cfg["access_code"], port=cfg["port"]
        )
    )
    if on_message is not None:
        handler = client._on_message  # noqa: SLF001 - the peer's own hook (no public one)
        hook = on_message

        def wrapped(mqtt_client: Any, userdata: Any, message: Any) -> None:
            handler(mqtt_client, userdata, message)
            hook(message.payload)

        client._on_message = wrapped  # connect() hands self._on_message to paho  # noqa: SLF001 - the peer's own hook (no public one)
    return client


def first_state_comms(cfg: Config, mark: Callable[[str], None]) -> None:
    import bambu_mqtt_comms  # noqa: F401  (imported here so that the import is measured)

    mark("imported")
    client = make_comms(cfg)
    # connect() returns once CONNACK came and its pushall was answered (prime_status).
    # detect_signing=False: its probe is an unknown command that the simulator, like
    # some firmware, never answers, so the default would wait out response_timeout (10 s).
    client.connect(timeout=cfg["timeout"], detect_signing=False)
    if client.get_status() is None:
        raise SystemExit("bambu-mqtt-comms: no full state")
    finish_first_state()


FIRST_STATE: dict[str, Callable[[Config, Callable[[str], None]], None]] = {
    "paho": first_state_paho,
    "bambu-lan": first_state_bambu_lan,
    "bambu-lan-sync": first_state_bambu_lan_sync,
    "bambu-lan-status": first_state_bambu_lan_status,
    "bambulabs-api": first_state_bambulabs_api,
    "bambu-printer-manager": first_state_bpm,
    "bambu-mqtt-comms": first_state_comms,
}

_MARKS: dict[str, float] = {"main": T_MAIN}


def finish_first_state() -> None:
    _MARKS.setdefault("full", time.monotonic())
    finish(**_MARKS)


def first_state(cfg: Config) -> None:
    def mark(name: str) -> None:
        _MARKS[name] = time.monotonic()

    FIRST_STATE[cfg["lib"]](cfg, mark)
    finish_first_state()  # paho's loop returns here


# --- report handling ------------------------------------------------------------------------


def load_stream(path: str) -> list[bytes]:
    with open(path, "rb") as stream:
        return [line.rstrip(b"\n") for line in stream if line.strip()]


def time_handler(handler: Callable[[Any], None], messages: list[Any], cfg: Config) -> Config:
    """Feed ``messages`` round and round through ``handler``; deltas per CPU second (one core:
    the handler runs on this thread) and per wall second, per repeat."""
    min_seconds = cfg["min_seconds"]
    cpu_rates, wall_rates = [], []
    for _ in range(cfg["repeats"]):
        count = 0
        cpu0, wall0 = time.process_time(), time.perf_counter()
        while True:
            for message in messages:
                handler(message)
            count += len(messages)
            cpu = time.process_time() - cpu0
            if cpu >= min_seconds:
                break
        wall = time.perf_counter() - wall0
        cpu_rates.append(count / cpu)
        wall_rates.append(count / wall)
    return {"cpu_rates": cpu_rates, "wall_rates": wall_rates, "deltas": len(messages)}


def paho_messages(payloads: list[bytes], serial: str) -> list[Any]:
    """paho ``MQTTMessage`` objects as paho hands them to ``on_message`` (built beforehand:
    making them is paho's work, not the handler's)."""
    from paho.mqtt.client import MQTTMessage

    messages = []
    for payload in payloads:
        message = MQTTMessage(topic=f"device/{serial}/report".encode())
        message.payload = payload
        messages.append(message)
    return messages


def handle(cfg: Config) -> None:
    payloads = load_stream(cfg["stream"])
    full, deltas = payloads[0], payloads[1:]
    serial, lib = cfg["serial"], cfg["lib"]
    result: Config
    if lib == "bambu-lan":
        result = handle_bambu_lan(cfg, full, deltas)
    elif lib == "bambulabs-api":
        from bambulabs_api.mqtt_client import PrinterMQTTClient

        client = PrinterMQTTClient("127.0.0.1", "12345678", serial)
        client._on_message(None, None, paho_messages([full], serial)[0])  # noqa: SLF001 - the peer's own hook (no public one)

        def api_handler(message: Any) -> None:
            client._on_message(None, None, message)  # noqa: SLF001 - the peer's own hook (no public one)

        result = time_handler(api_handler, paho_messages(deltas, serial), cfg)
    elif lib == "bambu-printer-manager":
        info = {"host": "127.0.0.1", "port": 8883, "serial": serial, "access_code": "12345678"}
        printer = make_bpm(info, lambda: None)
        printer._on_message(full.decode("utf-8"))  # noqa: SLF001 - the peer's own hook (no public one)

        def bpm_handler(message: Any) -> None:
            # What its paho on_message does: decode to str, then the handler.
            printer._on_message(message.payload.decode("utf-8"))  # noqa: SLF001 - the peer's own hook (no public one)

        result = time_handler(bpm_handler, paho_messages(deltas, serial), cfg)
    elif lib == "bambu-mqtt-comms":
        info = {"host": "127.0.0.1", "port": 8883, "serial": serial, "access_code": "12345678"}
        comms = make_comms(info)
        comms._on_message(None, None, paho_messages([full], serial)[0])  # noqa: SLF001 - the peer's own hook (no public one)

        def comms_handler(message: Any) -> None:
            comms._on_message(None, None, message)  # noqa: SLF001 - the peer's own hook (no public one)

        result = time_handler(comms_handler, paho_messages(deltas, serial), cfg)
    elif lib == "json.loads":
        result = time_handler(json.loads, deltas, cfg)
    elif lib == "orjson.loads":
        import orjson

        result = time_handler(orjson.loads, deltas, cfg)
    else:
        raise SystemExit(f"unknown library {lib}")
    finish(**result)


def handle_bambu_lan(cfg: Config, full: bytes, deltas: list[bytes]) -> Config:
    """``PrinterCore.feed``: decode + merge + typed state + events (what ``Printer`` runs per
    payload); with ``stage`` set, only the first stages of it (to show where the time goes)."""
    from bambu_lan.protocol.core import PrinterCore
    from bambu_lan.protocol.decode import decode_payload
    from bambu_lan.protocol.merge import apply_push
    from bambu_lan.protocol.state import StateBuilder

    core = PrinterCore(cfg["serial"])
    core.feed(full, 0.0)
    stage = cfg.get("stage", "all")
    if stage == "all":
        feed = core.feed
        return time_handler(lambda payload: feed(payload, 0.0), deltas, cfg)
    raw = dict(core.raw)
    if stage == "decode":
        return time_handler(decode_payload, deltas, cfg)

    def decode_merge(payload: bytes) -> None:
        nonlocal raw
        body = decode_payload(payload)
        assert body is not None
        raw, _ = apply_push(raw, body["print"])

    if stage == "decode+merge":
        return time_handler(decode_merge, deltas, cfg)
    builder = StateBuilder(cfg["serial"])
    builder.build(raw, None, True)

    def decode_merge_build(payload: bytes) -> None:
        nonlocal raw
        body = decode_payload(payload)
        assert body is not None
        raw, _ = apply_push(raw, body["print"])
        builder.build(raw, body["print"].keys(), True)

    if stage == "decode+merge+state":
        return time_handler(decode_merge_build, deltas, cfg)
    if stage == "pipeline":
        # decode, merge, typed state, events through the public protocol functions alone:
        # the core without its own bookkeeping (replies, link events).
        from bambu_lan.protocol.events import EventTracker

        pipe_builder = StateBuilder(cfg["serial"])
        tracker = EventTracker(cfg["serial"])
        pipe_raw: dict[str, Any] = {}

        def pipeline(payload: bytes) -> None:
            nonlocal pipe_raw
            body = decode_payload(payload)
            assert body is not None
            report = body["print"]
            pipe_raw, full_report = apply_push(pipe_raw, report)
            tracker.update(
                pipe_builder.build(pipe_raw, None if full_report else report.keys(), True)
            )

        pipeline(full)
        return time_handler(pipeline, deltas, cfg)
    if stage == "every field read":
        # The handler, then a consumer that reads every field of every snapshot (sections
        # are built on first read: this is the cost of all of them, every delta).
        import dataclasses

        assert core.state is not None
        names = [f.name for f in dataclasses.fields(core.state)]

        def handle_and_read(payload: bytes) -> None:
            state = feed_state(payload)
            for name in names:
                getattr(state, name)

        def feed_state(payload: bytes) -> Any:
            core.feed(payload, 0.0)
            return core.state

        return time_handler(handle_and_read, deltas, cfg)
    raise SystemExit(f"unknown stage {stage}")


# --- farm -----------------------------------------------------------------------------------


def farm(cfg: Config) -> None:
    """Watch N printers from this process; once every one has a full state (or the connect
    timeout passed), let it settle, then measure CPU, memory and messages over a window."""
    lib = cfg["lib"]
    t_start = time.monotonic()
    run = farm_bambu_lan if lib == "bambu-lan" else farm_peer
    finish(**run(cfg, t_start))


def measure_window(
    cfg: Config, messages: Callable[[], int], sleep: Callable[[float], Any]
) -> Config:
    """CPU over ``window`` seconds, cut into ``parts`` equal parts (their min/median/max:
    a neighbour's burst on a shared machine shows as one part, not the whole figure)."""
    import statistics

    parts = max(1, int(cfg.get("parts", 1)))
    shares = []
    m0, cpu0, wall0 = messages(), cpu_seconds(), time.monotonic()
    cpu_a, wall_a = cpu0, wall0
    for _ in range(parts):
        sleep(cfg["window"] / parts)
        cpu_b, wall_b = cpu_seconds(), time.monotonic()
        shares.append(100 * (cpu_b - cpu_a) / (wall_b - wall_a))
        cpu_a, wall_a = cpu_b, wall_b
    m1, cpu1, wall1 = messages(), cpu_a, wall_a
    wall = wall1 - wall0
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        fds = [0]
    rss = rss_mb()
    before = cfg.get("_rss_before_mb")
    return {
        "open_fds": len(fds),
        "max_fd": max(fds),  # select()-based loops cannot watch a descriptor above 1023
        "window_seconds": wall,
        "cpu_percent": 100 * (cpu1 - cpu0) / wall,
        "cpu_percent_parts": {
            "min": min(shares),
            "median": statistics.median(shares),
            "max": max(shares),
            "n": len(shares),
        },
        "messages_per_second": (m1 - m0) / wall,
        "cpu_us_per_message": 1e6 * (cpu1 - cpu0) / max(1, m1 - m0),
        "rss_mb": rss,
        "peak_rss_mb": peak_rss_mb(),
        # RSS just before the first client was made (libraries imported): the rest is what
        # the printers cost.
        "rss_before_mb": before,
        "kb_per_printer": None
        if before is None
        else 1024 * (rss - before) / max(1, len(cfg["printers"])),
    }


def memory_by_file(snapshot: Any, n: int, count: int = 12) -> list[dict[str, Any]]:
    """tracemalloc's live Python allocations grouped by the file that made them, per printer."""
    stats = snapshot.statistics("filename")
    rows = []
    for stat in stats[:count]:
        name = stat.traceback[0].filename
        for marker in ("site-packages/", "src/", "python3.11/", "lib/python3"):
            if marker in name:
                name = name.split(marker, 1)[1]
                break
        rows.append({"file": name, "bytes_per_printer": stat.size / n, "blocks": stat.count / n})
    return rows


def farm_bambu_lan(cfg: Config, t_start: float) -> Config:  # finishes the process
    import asyncio
    import contextlib
    import threading
    from pathlib import Path

    from bambu_lan import Farm
    from bambu_lan.config import PrinterConfig, Secret
    from bambu_lan.trust import TrustConfig

    async def run() -> None:
        configs = [
            PrinterConfig(
                host=p["host"],
                serial=p["serial"],
                access_code=Secret(p["access_code"]),
                port=p["port"],
                trust=TrustConfig(ca_file=Path(p["ca_path"])),
            )
            for p in cfg["printers"]
        ]
        import gc

        gc.collect()
        cfg["_rss_before_mb"] = rss_mb()
        if cfg.get("tracemalloc"):
            import tracemalloc

            tracemalloc.start()
        async with Farm(configs) as watched:
            events = [0]

            async def consume() -> None:  # a farm monitor reads the merged event stream
                async for _event in watched.events():
                    events[0] += 1

            consumer = asyncio.create_task(consume())
            with contextlib.suppress(TimeoutError):
                await watched.wait_for_states(timeout=cfg["connect_timeout"])
            states = watched.states.values()
            full = sum(1 for s in states if s is not None and s.complete)
            t_ready = time.monotonic()
            await asyncio.sleep(cfg["settle"])
            printers = list(watched.printers.values())
            if cfg.get("tracemalloc"):
                # A run of its own (tracing slows everything): what each printer costs, by
                # the file that allocated it. No CPU figures from this run.
                gc.collect()
                snapshot = tracemalloc.take_snapshot()
                traced = sum(stat.size for stat in snapshot.statistics("filename"))
                finish(
                    n=len(configs),
                    full_states=full,
                    traced_kb_per_printer=traced / 1024 / len(configs),
                    kb_per_printer=1024 * (rss_mb() - cfg["_rss_before_mb"]) / len(configs),
                    by_file=memory_by_file(snapshot, len(configs)),
                )

            def messages() -> int:
                return sum(p.status.messages for p in printers)

            window = await asyncio.to_thread(measure_window, cfg, messages, blocking_sleep)
            connected = sum(1 for p in printers if p.status.connected)
            if cfg.get("profile_seconds"):
                # After the measured window (cProfile slows what it watches): where the event
                # loop's time goes.
                import cProfile
                import pstats

                profiler = cProfile.Profile(time.process_time)  # CPU, not waiting
                profiler.enable()
                await asyncio.sleep(cfg["profile_seconds"])
                profiler.disable()
                window["profile"] = top_functions(pstats.Stats(profiler), 12)
            assert not consumer.done(), "the event consumer stopped"
            # Leave from inside the Farm: like the peers, no teardown after the measurement.
            finish(
                events=events[0],
                n=len(configs),
                full_states=full,
                connect_seconds=t_ready - t_start,
                connected=connected,
                threads=threading.active_count(),
                **window,
            )

    asyncio.run(run())
    raise SystemExit("the farm ended without a result")


def blocking_sleep(seconds: float) -> None:
    time.sleep(seconds)


def farm_peer(cfg: Config, t_start: float) -> Config:
    """One client object per printer, as each peer's API is meant to be used."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    lib = cfg["lib"]
    printers: list[Config] = cfg["printers"]
    counts = [0] * len(printers)  # messages per printer, each written by one thread only
    full = [threading.Event() for _ in printers]
    clients: list[Any] = []
    import_peer(lib)
    cfg["_rss_before_mb"] = rss_mb()

    def counter(index: int) -> Callable[..., None]:
        def on_message(*_: Any) -> None:
            counts[index] += 1

        return on_message

    if lib == "bambulabs-api":
        for index, info in enumerate(printers):
            printer = make_bambulabs_api(info, full[index].set, counter(index))
            printer.mqtt_start()
            clients.append(printer)
    elif lib == "bambu-printer-manager":
        for index, info in enumerate(printers):
            printer = make_bpm(info, full[index].set, counter(index))
            printer.start_session()
            clients.append(printer)
    elif lib == "bambu-mqtt-comms":

        def connect(index: int) -> Any:
            count = counter(index)

            def on_message(payload: bytes) -> None:
                count()
                if is_full(payload):
                    full[index].set()

            client = make_comms(printers[index], on_message)
            clients.append(client)
            try:
                client.connect(timeout=cfg["client_timeout"], detect_signing=False)
            except Exception as exc:  # one printer that fails must not stop the others
                emit(error=f"{printers[index]['serial']}: {exc}")
            else:
                if client.get_status() is not None:
                    full[index].set()
            return client

        # Its connect() blocks until the first full report: connect many at once, as a
        # script watching a farm would. Connects still running at the deadline go on.
        pool = ThreadPoolExecutor(max_workers=32)
        for index in range(len(printers)):
            pool.submit(connect, index)
        pool.shutdown(wait=False)
    else:
        raise SystemExit(f"unknown library {lib}")
    deadline = t_start + cfg["connect_timeout"]
    for event in full:
        event.wait(max(0.0, deadline - time.monotonic()))
    t_ready = time.monotonic()
    full_states = sum(1 for event in full if event.is_set())
    time.sleep(cfg["settle"])
    window = measure_window(cfg, lambda: sum(counts), blocking_sleep)
    connected = sum(1 for client in clients if peer_connected(lib, client))
    return {
        "n": len(printers),
        "full_states": full_states,
        "connect_seconds": t_ready - t_start,
        "connected": connected,
        "threads": threading.active_count(),
        **window,
    }


def import_peer(lib: str) -> None:
    """Import the peer's package before measuring what its clients cost."""
    import contextlib
    import importlib

    module = {
        "bambulabs-api": "bambulabs_api",
        "bambu-printer-manager": "bpm",
        "bambu-mqtt-comms": "bambu_mqtt_comms",
    }.get(lib)
    if module is not None:
        with contextlib.suppress(ImportError):  # the client maker says what is missing
            importlib.import_module(module)


def peer_connected(lib: str, client: Any) -> bool:
    if lib == "bambulabs-api":
        return bool(client.mqtt_client_connected())
    if lib == "bambu-printer-manager":
        return bool(client.client is not None and client.client.is_connected())
    return bool(client.is_connected)


# --- recovery -------------------------------------------------------------------------------


def recover(cfg: Config) -> None:
    """Stay connected and report, as JSON lines with times: ``full`` each time a full report
    reached the library's state, ``kick`` when its watchdog notices silence. Until EOF."""
    lib = cfg["lib"]
    if lib == "bambu-lan":
        recover_bambu_lan(cfg)
        return

    def on_full() -> None:
        emit(ev="full", t=time.monotonic())

    if lib == "bambulabs-api":
        make_bambulabs_api(cfg, on_full).mqtt_start()
    elif lib == "bambu-printer-manager":
        make_bpm(cfg, on_full).start_session()
    elif lib == "bambu-mqtt-comms":
        client = make_comms(cfg, lambda payload: on_full() if is_full(payload) else None)
        client.connect(timeout=cfg["timeout"], detect_signing=False)
    else:
        raise SystemExit(f"unknown library {lib}")
    sys.stdin.read()  # the benchmark closes our stdin when done
    finish(ev="end")


def recover_bambu_lan(cfg: Config) -> None:
    import asyncio

    from bambu_lan import EventKind, Printer, PrinterOptions, PrinterState, SessionOptions

    options = PrinterOptions(session=SessionOptions(watchdog=cfg["watchdog"]))

    async def run() -> None:
        printer = Printer(
            cfg["host"],
            cfg["serial"],
            cfg["access_code"],
            port=cfg["port"],
            ca_file=cfg["ca_path"],
            options=options,
        )
        # The update stream says when the watchdog noticed a silence ("silent") and when a
        # full report arrived again after a reconnect or a silence ("resynced").
        updates = printer.updates()

        async def report() -> None:
            ready = False
            async for update in updates:
                if isinstance(update, PrinterState):
                    if update.complete and not ready:
                        ready = True
                        emit(ev="full", t=time.monotonic())
                        emit(ev="ready", t=time.monotonic())
                elif update.kind is EventKind.SILENT:
                    emit(ev="kick", t=time.monotonic(), silent_for=update.data["silent_for"])
                elif update.kind is EventKind.RESYNCED:
                    emit(ev="full", t=time.monotonic())

        async with printer:
            task = asyncio.get_running_loop().create_task(report())
            await printer.wait_for_state(timeout=cfg["timeout"])
            await asyncio.to_thread(sys.stdin.read)
            task.cancel()

    asyncio.run(run())
    finish(ev="end")


TASKS: dict[str, Callable[[Config], None]] = {
    "first-state": first_state,
    "handle": handle,
    "farm": farm,
    "recover": recover,
}


def main() -> None:
    cfg = json.loads(sys.argv[2])
    if "config" in cfg:  # large configurations (a farm's printers) come in a file
        with open(cfg.pop("config")) as handle:
            cfg |= json.load(handle)
    TASKS[sys.argv[1]](cfg)


if __name__ == "__main__":
    main()
