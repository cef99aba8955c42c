"""How fast 1,000 simulated printers start in one process, and what they cost when idle.

    .venv/bin/python benchmarks/sim_fleet_start.py [--count 1000] [--idle 10] [--speed 1]
        [--host-mode address|port] [--clients N]

Prints one JSON object: start time (cold: new keys and leaves; warm: reused from the cert
directory), resident memory, and CPU use of the idle fleet over ``--idle`` seconds. With
``--clients N``, the first N printers each get one subscribed client (in a child process, so
that only the simulator is measured) for the idle window: reports then really go out over
TLS. Not part of the test suite: budgets are measured,
never asserted by timed tests (design.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bambu_lan.sim import SimFleet, get_profile
from bambu_lan.sim import mqtt_wire as wire
from bambu_lan.sim.certs import CertAuthority


def rss_mb() -> float:
    """Current resident set size (Linux /proc), else the peak from getrusage."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


async def subscribe_all(listing: list[dict[str, Any]]) -> None:
    """Child-process mode: one bare MQTT subscriber per printer of ``listing``.

    Prints "ready" once every one got its SUBACK, then, at EOF on stdin, the number of
    reports received, and exits. Running the clients in their own process keeps their cost
    out of the simulator's figures.
    """
    import ssl

    counter = [0]
    subscribed = 0
    all_subscribed = asyncio.Event()

    async def one(index: int, info: dict[str, Any]) -> None:
        nonlocal subscribed
        context = ssl.create_default_context(cafile=info["ca_path"])
        context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
        reader, writer = await asyncio.open_connection(
            info["host"], info["port"], ssl=context, server_hostname=info["serial"]
        )
        parser = wire.PacketReader(role="client")
        writer.write(wire.encode_connect(f"bench-{index}", username="bblp",
                                         password=info["access_code"]))  # fmt: skip
        try:
            while data := await reader.read(65536):
                parser.feed(data)
                for packet in parser:
                    if isinstance(packet, wire.ConnAck):
                        topic = f"device/{info['serial']}/report"
                        writer.write(wire.encode_subscribe(1, [(topic, 0)]))
                    elif isinstance(packet, wire.SubAck):
                        subscribed += 1
                        if subscribed == len(listing):
                            all_subscribed.set()
                    elif isinstance(packet, wire.Publish):
                        counter[0] += 1
        finally:
            writer.close()

    tasks = [asyncio.create_task(one(i, info)) for i, info in enumerate(listing)]
    await all_subscribed.wait()
    counter[0] = 0
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.read)  # the parent closes our stdin when done
    print(counter[0], flush=True)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def measure(args: argparse.Namespace, cert_dir: Path) -> dict[str, Any]:
    result: dict[str, Any] = {"count": args.count, "host_mode": args.host_mode,
                              "speed": args.speed, "python": sys.version.split()[0]}  # fmt: skip
    rss_before = rss_mb()

    t0 = time.perf_counter()
    await asyncio.to_thread(
        lambda: CertAuthority.load_or_create(cert_dir).ensure_leaves(
            SimFleet.serials(get_profile("a1"), args.count)
        )
    )
    result["cold_cert_seconds"] = round(time.perf_counter() - t0, 2)

    fleet = SimFleet(
        args.count,
        "a1",
        host_mode=args.host_mode,
        port=0,
        cert_dir=cert_dir,
        time_scale=args.speed,
        seed=1,
    )
    t0 = time.perf_counter()
    await fleet.start()
    result["warm_start_seconds"] = round(time.perf_counter() - t0, 2)
    result["rss_mb_before"] = round(rss_before, 1)
    result["rss_mb_started"] = round(rss_mb(), 1)

    child = None
    if args.clients:
        listing = fleet.listing()[: args.clients]
        child = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--subscribe",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert child.stdin is not None
        assert child.stdout is not None
        child.stdin.write(json.dumps(listing).encode() + b"\n")
        await child.stdin.drain()
        assert (await child.stdout.readline()).strip() == b"ready"
    try:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(args.idle)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        result["idle_seconds"] = round(wall, 1)
        result["idle_cpu_percent_of_one_core"] = round(100 * cpu / wall, 1)
        result["rss_mb_idle"] = round(rss_mb(), 1)
        result["clients"] = args.clients
        result["live_sessions"] = sum(p.broker.session_count for p in fleet.printers)
        if child is not None:
            assert child.stdin is not None
            assert child.stdout is not None
            child.stdin.close()
            received = int((await child.stdout.readline()).strip() or 0)
            await child.wait()
            result["reports_received_per_second"] = round(received / wall, 1)
        result["reports_published_total"] = sum(p.broker.stats.reports for p in fleet.printers)
    finally:
        if child is not None and child.returncode is None:
            child.kill()
            await child.wait()
        t0 = time.perf_counter()
        await fleet.stop()
        result["stop_seconds"] = round(time.perf_counter() - t0, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--idle", type=float, default=10.0, help="idle window, seconds")
    parser.add_argument("--speed", type=float, default=1.0, help="time scale of the printers")
    parser.add_argument("--host-mode", choices=["address", "port"], default="address")
    parser.add_argument("--clients", type=int, default=0, help="subscribers on the first N")
    parser.add_argument("--subscribe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.subscribe:  # the child process of --clients
        asyncio.run(subscribe_all(json.loads(sys.stdin.readline())))
        return
    with tempfile.TemporaryDirectory(prefix="bambu-lan-bench-") as tmp:
        result = asyncio.run(measure(args, Path(tmp)))
    result["cpus"] = os.cpu_count()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
