"""web: the farm dashboard of ``bambu-lan serve --http-port``.

The simulator runs in its own process (one loopback address per printer, nine in ten
printing, real time); ``serve`` runs in another (this file, ``serve`` mode: the real daemon
with its log and web sinks, history off). Measured:

1. **First paint, 200 printers**: a real headless Chromium opens the farm page, new browser
   context each time (no cache); ``first-contentful-paint`` from the Paint Timing API, with the
   server's response time and the HTML size beside it.
2. **Update traffic, 200 printers**: one page's live stream read for a window: server-sent
   events per second, card patches per printer per second (the mean, and the busiest printer),
   bytes per second.
3. **CPU, 1,000 printers**: ``serve``'s CPU (``/proc/<pid>/stat``) over a window without pages,
   then with 10 pages open (each: the farm page's HTML fetched once, then its live stream read),
   alternately, three times each. The pages are HTTP clients in this process rather than ten
   Chromium tabs: the server does the same work, and ten browsers rendering 1,000 cards would
   take the 2 cores the measured process needs.

    .venv/bin/python benchmarks/run.py --only web
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from common import ROOT, Context, LineProcess, Simulator, progress, running, summary

BUDGET_PAINT_PRINTERS = 200
BUDGET_PAINT_SECONDS = 1.0
BUDGET_MESSAGES_PER_PRINTER = 1.0
BUDGET_CPU_PRINTERS = 1000
BUDGET_CPU_PAGES = 10
BUDGET_CPU_EXTRA_PERCENT = 10.0
PRINTING_SHARE = 0.9
TOKEN = "bench-token-not-secret"  # the benchmark's own throw-away login


# --- the serve process ------------------------------------------------------------------------


def serve_child(config_path: str) -> None:
    """``bambu-lan serve --http-port 0`` over the printers in the config, in this process."""
    import logging

    from bambu_lan import PrinterConfig, Secret
    from bambu_lan.serve.daemon import Daemon
    from bambu_lan.serve.settings import ServeSettings
    from bambu_lan.trust import TrustConfig

    logging.basicConfig(level=logging.WARNING)
    cfg = json.loads(Path(config_path).read_text())

    async def main() -> None:
        configs = [
            PrinterConfig(
                host=p["host"],
                serial=p["serial"],
                access_code=Secret(p["access_code"]),
                port=p["port"],
                trust=TrustConfig(ca_file=Path(p["ca_path"])),
                name=f"Printer {i + 1:04d}",
            )
            for i, p in enumerate(cfg["printers"])
        ]
        settings = ServeSettings(http_port=0, web_token=Secret(TOKEN), history=False)
        daemon = Daemon(settings, configs)
        await daemon.start()
        try:
            hub = daemon.hub
            results = await asyncio.gather(
                *(w.printer.wait_for_state(cfg["connect_timeout"]) for w in hub.printers.values()),
                return_exceptions=True,
            )
            ok = sum(not isinstance(r, BaseException) for r in results)
            print(
                json.dumps({"port": daemon.http_port, "pid": os.getpid(), "ready": ok}), flush=True
            )
            await asyncio.to_thread(sys.stdin.readline)  # until told to stop (or EOF)
        finally:
            await daemon.stop()

    asyncio.run(main())


class ServeProcess(LineProcess):
    def __init__(self, ctx: Context, printers: list[dict[str, Any]], name: str) -> None:
        path = ctx.work_dir / f"{name}.json"
        timeout = max(30.0, 0.06 * len(printers))
        path.write_text(json.dumps({"printers": printers, "connect_timeout": timeout}))
        super().__init__(
            [sys.executable, __file__, "serve", str(path)],
            env=ctx.env,
            log=ctx.work_dir / f"{name}.log",
        )
        try:
            first = self.next(timeout + 60)
        except BaseException:
            self.close()
            raise
        self.port: int = first["port"]
        self.pid: int = first["pid"]
        self.ready: int = first["ready"]
        self.url = f"http://127.0.0.1:{self.port}/"

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])  # utime + stime
        return ticks / os.sysconf("SC_CLK_TCK")


# --- measurements -----------------------------------------------------------------------------


async def first_paints(url: str, runs: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from tests.web.browser import chromium

    paints: list[float] = []
    responses: list[float] = []
    failures = 0
    cards = 0
    async with chromium() as browser:
        for _ in range(runs):
            page = await browser.new_page()
            try:
                await page.viewport(1440, 900)
                await page.goto(url)
                timing = await page.wait_for(
                    "(() => { const p = performance.getEntriesByName('first-contentful-paint');"
                    " const n = performance.getEntriesByType('navigation')[0];"
                    " return p.length && {fcp: p[0].startTime, response: n.responseEnd,"
                    " cards: document.querySelectorAll('.card').length}; })()"
                )
                paints.append(timing["fcp"] / 1000)
                responses.append(timing["response"] / 1000)
                cards = timing["cards"]
            except Exception as exc:
                failures += 1
                progress(f"    first paint failed: {exc}")
            finally:
                await page.close()
    return {
        "first_contentful_paint_s": summary(paints),
        "response_end_s": summary(responses),
        "failures": failures,
        "cards": cards,
    }


async def read_stream(
    url: str, stop: asyncio.Event, counts: dict[str, Any], serial_counts: Counter[str] | None
) -> None:
    """One page: its HTML once, then its live stream until ``stop``."""
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        async with http.get(url) as resp:  # the page itself, as a browser would load it
            counts["html_bytes"] = len(await resp.read())
        async with http.get(f"{url}events") as resp:
            stopper = asyncio.ensure_future(stop.wait())
            buffer = b""
            while not stop.is_set():
                reader = asyncio.ensure_future(resp.content.readany())
                done, _ = await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if reader not in done:
                    reader.cancel()
                    break
                chunk = reader.result()
                if not chunk:
                    raise ConnectionError("the server ended the stream")
                buffer += chunk
                *blocks, buffer = buffer.split(b"\n\n")
                for block in blocks:
                    if not block.startswith(b"id:"):
                        continue  # retry / keepalive lines
                    counts["messages"] += 1
                    counts["bytes"] += len(block) + 2
                    if serial_counts is not None and counts["window"]:
                        data = json.loads(block.split(b"data: ", 1)[1])
                        serial_counts.update(list(data["cards"]))
                        counts["window_messages"] += 1
            stopper.cancel()


async def update_traffic(url: str, n: int, window: float) -> dict[str, Any]:
    stop = asyncio.Event()
    counts: dict[str, Any] = {
        "messages": 0,
        "bytes": 0,
        "window": False,
        "window_messages": 0,
        "html_bytes": 0,
    }
    per_serial: Counter[str] = Counter()
    task = asyncio.ensure_future(read_stream(url, stop, counts, per_serial))
    await asyncio.sleep(3.0)  # the catch-up message and the first ticks are not the steady state
    counts["window"] = True
    bytes_before = counts["bytes"]
    t0 = time.monotonic()
    await asyncio.sleep(window)
    counts["window"] = False
    elapsed = time.monotonic() - t0
    window_bytes = counts["bytes"] - bytes_before
    stop.set()
    await task
    patches = sum(per_serial.values())
    return {
        "printers": n,
        "window_s": elapsed,
        "events_per_s": counts["window_messages"] / elapsed,
        "card_updates_per_printer_per_s": patches / n / elapsed,
        "busiest_printer_updates_per_s": max(per_serial.values(), default=0) / elapsed,
        "bytes_per_s": window_bytes / elapsed,
        "html_bytes": counts["html_bytes"],
    }


async def cpu_with_pages(
    proc: ServeProcess, pages: int, window: float, rounds: int
) -> dict[str, Any]:
    without: list[float] = []
    with_pages: list[float] = []
    extra: list[float] = []
    failures = 0
    first_error = ""
    messages: list[float] = []
    html = 0
    for _ in range(rounds):
        await asyncio.sleep(2.0)
        c0, t0 = proc.cpu_seconds(), time.monotonic()
        await asyncio.sleep(window)
        idle = 100 * (proc.cpu_seconds() - c0) / (time.monotonic() - t0)
        stop = asyncio.Event()
        counters = [
            {"messages": 0, "bytes": 0, "window": False, "window_messages": 0, "html_bytes": 0}
            for _ in range(pages)
        ]
        tasks = [asyncio.ensure_future(read_stream(proc.url, stop, c, None)) for c in counters]
        await asyncio.sleep(3.0)  # pages loaded and caught up
        c0, t0 = proc.cpu_seconds(), time.monotonic()
        await asyncio.sleep(window)
        busy = 100 * (proc.cpu_seconds() - c0) / (time.monotonic() - t0)
        stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        failures += len(errors)
        if errors and not first_error:
            first_error = f"{type(errors[0]).__name__}: {errors[0]}"
        messages.append(sum(c["messages"] for c in counters) / len(counters))
        html = max(c["html_bytes"] for c in counters)
        without.append(idle)
        with_pages.append(busy)
        extra.append(busy - idle)
    return {
        "pages": pages,
        "window_s": window,
        "cpu_percent_without_pages": summary(without),
        "cpu_percent_with_pages": summary(with_pages),
        "extra_cpu_percent": summary(extra),
        "page_failures": failures,
        "first_page_error": first_error,
        "messages_per_page": summary(messages),
        "html_bytes": html,
    }


def run(ctx: Context) -> dict[str, Any]:
    paint_n = 20 if ctx.quick else BUDGET_PAINT_PRINTERS
    cpu_n = 30 if ctx.quick else BUDGET_CPU_PRINTERS
    out: dict[str, Any] = {
        "budget": {
            "paint_printers": BUDGET_PAINT_PRINTERS,
            "paint_seconds": BUDGET_PAINT_SECONDS,
            "messages_per_printer_per_s": BUDGET_MESSAGES_PER_PRINTER,
            "cpu_printers": BUDGET_CPU_PRINTERS,
            "cpu_pages": BUDGET_CPU_PAGES,
            "cpu_extra_percent": BUDGET_CPU_EXTRA_PERCENT,
        },
        "printing_share": PRINTING_SHARE,
    }
    progress(f"web: starting {cpu_n} simulated A1s ({PRINTING_SHARE:.0%} printing)")
    with running(
        Simulator(
            ctx,
            "--count",
            str(cpu_n),
            "--host",
            "127.0.6.1",
            "--printing",
            str(PRINTING_SHARE),
            name="sim_web",
        )
    ) as sim:
        assert isinstance(sim, Simulator)
        progress(f"  serve over {paint_n} printers: first paint and update traffic")
        with running(ServeProcess(ctx, sim.printers[:paint_n], "serve_web_paint")) as proc:
            assert isinstance(proc, ServeProcess)
            out["paint"] = {"printers": paint_n, "ready": proc.ready}
            out["paint"].update(asyncio.run(first_paints(proc.url, 3 if ctx.quick else 10)))
            out["traffic"] = asyncio.run(
                update_traffic(proc.url, paint_n, 2.0 if ctx.quick else 20.0)
            )
        progress(f"  serve over {cpu_n} printers: CPU without and with {BUDGET_CPU_PAGES} pages")
        with running(ServeProcess(ctx, sim.printers[:cpu_n], "serve_web_cpu")) as proc:
            assert isinstance(proc, ServeProcess)
            out["cpu"] = {"printers": cpu_n, "ready": proc.ready}
            out["cpu"].update(
                asyncio.run(
                    cpu_with_pages(
                        proc, BUDGET_CPU_PAGES, 2.0 if ctx.quick else 15.0, 1 if ctx.quick else 3
                    )
                )
            )
    out["bench_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        serve_child(sys.argv[2])
    else:
        sys.exit("usage: bench_web.py serve CONFIG.json (run the section with run.py --only web)")
