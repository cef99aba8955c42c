"""8. Camera: latency the library adds to a frame, and ``camera serve`` with 20 MJPEG viewers.

One simulated A1 with its camera, in a process of its own, prints the ``time.monotonic()`` at
which each frame was written to every viewer (the clock all processes on Linux share).

* latency: a client process receives frames either with a bare TLS read (asyncio streams:
  login, then ``readexactly`` of each 16-byte header and its JPEG: the least any client can
  do) or through ``Camera.frames()``; per frame, the time from "written" to "in the
  consumer's hands". Added latency = median of the library minus median of the bare read,
  both at 10 frames a second. Budget: 2 ms.
* rtsps snapshot: ``Camera.snapshot()`` of a simulated X1C (H.264 over RTSPS at 10 frames a
  second, another session keeping the stream running as a printer's always is): from the
  call to the JPEG, through the library's own RTSP session and ffmpeg decoding one picture.
  Measured, no budget.
* serve: ``bambu-lan camera serve`` as users run it, 20 viewers reading ``/stream.mjpg``
  (threads of this process, which is not measured), the simulator at the printers' cadence
  of a frame a second. Sampled from /proc: the server's CPU time (share of one core) and
  resident memory every few seconds; the simulator reports how many camera connections it
  accepted (budget: one upstream, at most 5 % of a core, memory flat). A full run listens
  for the 10 minutes the issue asks (``SERVE_SECONDS``); memory is sampled every 5 s and
  reported as first / last / max and the slope of a least-squares line through the samples
  (MB per hour), with one sample a minute kept in the JSON. A second, shorter round runs
  the camera at 10 frames a second to show the headroom.
* serve_x1c: the same with a simulated X1C (H.264 over RTSPS at 10 frames a second, 1280×720)
  and 5 viewers for 30 s: one RTSPS session, one ffmpeg decoding it and making 5 JPEGs a
  second. The server process's CPU and its ffmpeg's (its children, from /proc) are given
  apart. Measured, no budget (a real X1C sends 1080p at up to 30 frames a second: more to
  decode).

Also: ``python benchmarks/bench_camera.py sim|raw|lib ...`` are the child processes.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import ssl
import statistics
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any

from common import BAMBU_LAN, OUR_PYTHON, Context, LineProcess, progress, running, summary

SERVE_SECONDS = 600.0
FAST_SERVE_SECONDS = 30.0
VIEWERS = 20
X1_VIEWERS = 5
BUDGET_ADDED_MS = 2.0
BUDGET_CPU_PERCENT = 5.0
THIS = Path(__file__).resolve()


# --- child processes -------------------------------------------------------------------------


async def _sim_main(cert_dir: str, interval: float, model: str = "a1") -> None:
    from bambu_lan.sim import SimulatedPrinter
    from bambu_lan.sim.camera import CameraServer

    loop = asyncio.get_running_loop()
    async with SimulatedPrinter(
        model, cert_dir=cert_dir, camera_port=0, camera_interval=interval, seed=7
    ) as sim:
        camera = sim.camera
        assert camera is not None

        def sent(t: float) -> None:
            print(json.dumps({"ev": "sent", "t": t}), flush=True)

        if isinstance(camera, CameraServer):
            camera.on_frame = sent
        print(json.dumps({"ev": "ready", **sim.connection_info()}), flush=True)
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            if line.strip() == b"stats":
                stats = camera.stats
                print(
                    json.dumps(
                        {
                            "ev": "stats",
                            "logins_received": getattr(stats, "logins_received", None),
                            "viewers": camera.viewers,
                            "frames_sent": getattr(stats, "frames_sent", None),
                            "plays": getattr(stats, "plays", None),  # RTSPS sessions
                        }
                    ),
                    flush=True,
                )


async def _raw_main(host: str, port: int, code: str, ca: str, frames: int) -> None:
    """The least a client can do: TLS, login, then header + JPEG by length."""
    from bambu_lan.protocol.camera_wire import login_packet

    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    reader, writer = await asyncio.open_connection(host, port, ssl=ctx)
    writer.write(login_packet(code))
    for _ in range(frames):
        header = await reader.readexactly(16)
        size = struct.unpack_from("<I", header)[0]
        await reader.readexactly(size)
        print(json.dumps({"ev": "frame", "t": time.monotonic()}), flush=True)
    writer.close()


async def _lib_main(host: str, port: int, serial: str, code: str, *rest: str) -> None:
    ca, frames = rest[0], int(rest[1])
    from bambu_lan.camera import Camera
    from bambu_lan.config import PrinterConfig, Secret
    from bambu_lan.trust import TrustConfig

    cfg = PrinterConfig(
        host, serial, Secret(code), trust=TrustConfig(ca_file=Path(ca)), camera_port=port
    )
    count = 0
    with Camera(cfg).frames() as stream:
        async for _frame in stream:
            print(json.dumps({"ev": "frame", "t": time.monotonic()}), flush=True)
            count += 1
            if count == frames:
                break


async def _rtsps_main(host: str, port: int, serial: str, code: str, *rest: str) -> None:
    """X1 snapshots one after another, while another session keeps the stream running (a
    printer's camera always runs; the simulator's encoder starts with its first viewer)."""
    ca, count = rest[0], int(rest[1])
    from bambu_lan.camera import Camera
    from bambu_lan.camera_rtsp import RtspSession
    from bambu_lan.config import PrinterConfig, Secret
    from bambu_lan.errors import BambuError
    from bambu_lan.trust import TrustConfig

    cfg = PrinterConfig(
        host, serial, Secret(code), trust=TrustConfig(ca_file=Path(ca)), camera_port=port
    )
    held = RtspSession(cfg, port)
    await held.open(10)
    await held.start_video()

    async def keep_reading() -> None:
        while True:
            await held.next_packet()

    reader = asyncio.create_task(keep_reading())
    await asyncio.sleep(2.0)  # the encoder is up and a picture is cached
    camera = Camera(cfg)
    for _ in range(count):
        started = time.perf_counter()
        try:
            frame = await camera.snapshot(timeout=20)
            print(json.dumps({"ev": "snapshot", "s": time.perf_counter() - started,
                              "bytes": frame.size}), flush=True)  # fmt: skip
        except BambuError as exc:
            print(json.dumps({"ev": "failed", "error": str(exc)}), flush=True)
    reader.cancel()
    held.close()


# --- measuring ------------------------------------------------------------------------------


def _latencies(sim: LineProcess, client: LineProcess, frames: int) -> list[float]:
    arrivals: list[float] = []
    while len(arrivals) < frames:
        value = client.next(30.0)
        if isinstance(value, dict) and value.get("ev") == "frame":
            arrivals.append(value["t"])
    sent: list[float] = []
    while not sim.lines.empty():
        value = sim.lines.get_nowait()
        if isinstance(value, dict) and value.get("ev") == "sent":
            sent.append(value["t"])
    out = []
    for t in arrivals:
        before = [s for s in sent if s <= t]
        if before:
            out.append(t - before[-1])
    return out[1:]  # the first frame waited for the connection too


def _drain(sim: LineProcess) -> None:
    while not sim.lines.empty():
        sim.lines.get_nowait()


def _sim(
    ctx: Context, interval: float, name: str, model: str = "a1"
) -> tuple[LineProcess, dict[str, Any]]:
    sim = LineProcess(
        [OUR_PYTHON, THIS, "sim", ctx.cert_dir, str(interval), model],
        env=ctx.env,
        log=ctx.work_dir / f"{name}.log",
    )
    ready = sim.wait_for(lambda v: isinstance(v, dict) and v.get("ev") == "ready", 120)
    if ready is None:
        sim.close()
        raise RuntimeError("the simulator did not start")
    info: dict[str, Any] = ready
    return sim, info


def measure_latency(ctx: Context) -> dict[str, Any]:
    frames = 12 if ctx.quick else 300
    result: dict[str, Any] = {"frames_per_second": 10, "frames": frames}
    sim, info = _sim(ctx, 0.1, "camera-latency-sim")
    with running(sim):
        base = [info["host"], str(info["camera_port"])]
        for name, args in (
            ("raw", ["raw", *base, info["access_code"], info["ca_path"], str(frames)]),
            (
                "bambu-lan",
                ["lib", *base, info["serial"], info["access_code"], info["ca_path"], str(frames)],
            ),
        ):
            _drain(sim)
            client = LineProcess(
                [OUR_PYTHON, THIS, *args], env=ctx.env, log=ctx.work_dir / f"camera-{name}.log"
            )
            with running(client):
                values = _latencies(sim, client, frames)
            result[name] = summary(values)
            progress(f"  {name}: median {result[name]['median'] * 1000:.2f} ms per frame")
    result["added_median"] = result["bambu-lan"]["median"] - result["raw"]["median"]
    return result


def measure_rtsps_snapshot(ctx: Context) -> dict[str, Any]:
    """``Camera.snapshot()`` of a simulated X1C (RTSPS, H.264 at 10 frames a second): the
    library's RTSP session plus ffmpeg decoding one picture, from call to JPEG."""
    count = 2 if ctx.quick else 20
    sim, info = _sim(ctx, 0.1, "camera-rtsps-sim", "x1c")
    with running(sim):
        args = [info["host"], str(info["camera_port"]), info["serial"], info["access_code"],
                info["ca_path"], str(count)]  # fmt: skip
        client = LineProcess(
            [OUR_PYTHON, THIS, "rtsps", *args], env=ctx.env, log=ctx.work_dir / "camera-rtsps.log"
        )
        times: list[float] = []
        failures: list[str] = []
        with running(client):
            while len(times) + len(failures) < count:
                value = client.next(60.0)
                if isinstance(value, dict) and value.get("ev") == "snapshot":
                    times.append(value["s"])
                elif isinstance(value, dict) and value.get("ev") == "failed":
                    failures.append(value["error"])
    return {
        "model": "x1c",
        "frames_per_second": 10,
        "snapshots": count,
        "seconds": summary(times),
        "failures": len(failures),
        "errors": failures[:3],
    }


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def _children_cpu_seconds(pid: int) -> float:
    """CPU time of ``pid``'s children: those it waited for and those running now (its
    ffmpeg, for an X1C)."""
    ticks = os.sysconf("SC_CLK_TCK")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = (int(fields[13]) + int(fields[14])) / ticks
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            child = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(child[1]) == pid:
            total += (int(child[11]) + int(child[12])) / ticks
    return total


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class _Viewer(threading.Thread):
    """Reads /stream.mjpg and counts the parts, until told to stop."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(daemon=True)
        self.host, self.port = host, port
        self.parts = 0
        self.error = ""
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            conn.request("GET", "/stream.mjpg")
            response = conn.getresponse()
            tail = b""
            while not self.stop.is_set():
                chunk = response.read1(65536)
                if not chunk:
                    break
                data = tail + chunk
                self.parts += data.count(b"Content-Type: image/jpeg")
                tail = data[-40:]
            conn.close()
        except OSError as exc:
            self.error = str(exc)


def measure_serve(
    ctx: Context,
    interval: float,
    seconds: float,
    name: str,
    *,
    model: str = "a1",
    viewer_count: int = VIEWERS,
) -> dict[str, Any]:
    sample_every = 1.0 if ctx.quick else 5.0
    sim, info = _sim(ctx, interval, f"{name}-sim", model)
    with running(sim):
        serve = LineProcess(
            [
                BAMBU_LAN,
                "camera",
                "serve",
                "--http-port",
                "0",
                "--json",
                "--host",
                info["host"],
                "--port",
                str(info["port"]),
                "--serial",
                info["serial"],
                "--access-code",
                info["access_code"],
                "--ca-file",
                info["ca_path"],
                "--camera-port",
                str(info["camera_port"]),
            ],
            env=ctx.env,
            log=ctx.work_dir / f"{name}-serve.log",
        )
        with running(serve):
            started = serve.next(60.0)
            host, port = "127.0.0.1", int(started["url"].rsplit(":", 1)[1])
            viewers = [_Viewer(host, port) for _ in range(viewer_count)]
            for viewer in viewers:
                viewer.start()
            time.sleep(max(2.0, 2 * interval))  # every viewer connected and fed
            pid = serve.proc.pid
            rss: list[float] = []
            at: list[float] = []  # seconds since t0 of each sample
            t0, cpu0 = time.monotonic(), _cpu_seconds(pid)
            children0 = _children_cpu_seconds(pid)
            deadline = t0 + seconds
            next_report = t0 + 60.0
            while time.monotonic() < deadline:
                rss.append(_rss_mb(pid))
                at.append(time.monotonic() - t0)
                if time.monotonic() >= next_report:
                    next_report += 60.0
                    progress(f"  {at[-1] / 60:.0f} min: RSS {rss[-1]:.2f} MB")
                time.sleep(min(sample_every, max(0.0, deadline - time.monotonic())))
            wall, cpu = time.monotonic() - t0, _cpu_seconds(pid) - cpu0
            children_cpu = _children_cpu_seconds(pid) - children0
            rss.append(_rss_mb(pid))
            at.append(wall)
            _drain(sim)
            sim.send("stats")
            stats = sim.wait_for(lambda v: isinstance(v, dict) and v.get("ev") == "stats", 30)
            for viewer in viewers:
                viewer.stop.set()
            serve.proc.send_signal(signal.SIGINT)  # Ctrl-C: what stops it cleanly
        parts = [v.parts for v in viewers]
        errors = [v.error for v in viewers if v.error]
    stats = stats or {}
    return {
        "model": model,
        "frames_per_second": round(1 / interval, 2),
        "seconds": round(wall, 1),
        "viewers": viewer_count,
        "cpu_percent_of_a_core": 100 * cpu / wall,
        "children_cpu_percent_of_a_core": 100 * children_cpu / wall,
        "rss_mb": {"first": rss[0], "last": rss[-1], **summary(rss)},
        "rss_growth_mb": rss[-1] - rss[0],
        "rss_sample_every_s": sample_every,
        "rss_slope_mb_per_hour": _slope_per_hour(at, rss),
        "rss_per_minute": _per_minute(at, rss),
        "upstream_connections": stats.get("logins_received") or stats.get("plays"),
        "frames_per_viewer": summary([float(p) for p in parts]),
        "viewer_errors": errors[:3],
    }


def _slope_per_hour(at: list[float], rss: list[float]) -> float:
    """The slope of the least-squares line through the samples, in MB per hour."""
    if len(at) < 2 or at[-1] <= at[0]:
        return 0.0
    return statistics.linear_regression(at, rss).slope * 3600


def _per_minute(at: list[float], rss: list[float]) -> list[list[float]]:
    """[minute, MB] of the first sample of each minute, and the last sample."""
    out: list[list[float]] = []
    for t, value in zip(at, rss, strict=True):
        if not out or t >= 60 * (len(out)):
            out.append([round(t / 60, 2), round(value, 3)])
    last = [round(at[-1] / 60, 2), round(rss[-1], 3)]
    if out[-1] != last:
        out.append(last)
    return out


def run(ctx: Context) -> dict[str, Any]:
    progress("camera: latency added to a frame (bare TLS read vs Camera.frames())")
    data: dict[str, Any] = {"latency": measure_latency(ctx)}
    progress("camera: X1C snapshot through RTSPS (the library's session + ffmpeg decoding)")
    data["rtsps_snapshot"] = measure_rtsps_snapshot(ctx)
    shot = data["rtsps_snapshot"]["seconds"]
    if shot.get("n"):
        progress(f"  median {shot['median'] * 1000:.0f} ms")
    seconds = 4.0 if ctx.quick else SERVE_SECONDS
    progress(f"camera: `camera serve`, {VIEWERS} viewers, 1 frame/s, {seconds:g} s")
    data["serve"] = measure_serve(ctx, 1.0, seconds, "camera-serve")
    progress(f"  {data['serve']['cpu_percent_of_a_core']:.2f} % of a core")
    if not ctx.quick:
        progress(
            f"camera: `camera serve`, {VIEWERS} viewers, 10 frames/s, {FAST_SERVE_SECONDS:g} s"
        )
        data["serve_fast"] = measure_serve(ctx, 0.1, FAST_SERVE_SECONDS, "camera-serve-fast")
    x1_seconds = 2.0 if ctx.quick else FAST_SERVE_SECONDS
    progress(
        f"camera: X1C `camera serve`, {X1_VIEWERS} viewers, H.264 at 10 frames/s into "
        f"ffmpeg, 5 JPEGs/s out, {x1_seconds:g} s"
    )
    data["serve_x1c"] = measure_serve(
        ctx, 0.1, x1_seconds, "camera-serve-x1c", model="x1c", viewer_count=X1_VIEWERS
    )
    x1 = data["serve_x1c"]
    progress(
        f"  server {x1['cpu_percent_of_a_core']:.2f} % + ffmpeg "
        f"{x1['children_cpu_percent_of_a_core']:.2f} % of a core"
    )
    data["budget_added_ms"] = BUDGET_ADDED_MS
    data["budget_cpu_percent"] = BUDGET_CPU_PERCENT
    return data


if __name__ == "__main__":
    role, args = sys.argv[1], sys.argv[2:]
    if role == "sim":
        asyncio.run(_sim_main(args[0], float(args[1]), *args[2:]))
    elif role == "rtsps":
        asyncio.run(_rtsps_main(args[0], int(args[1]), args[2], args[3], args[4], args[5]))
    elif role == "raw":
        asyncio.run(_raw_main(args[0], int(args[1]), args[2], args[3], int(args[4])))
    elif role == "lib":
        asyncio.run(_lib_main(args[0], int(args[1]), args[2], args[3], args[4], args[5]))
    else:
        raise SystemExit(f"unknown role {role}")
