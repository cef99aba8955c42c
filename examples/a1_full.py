#!/usr/bin/env python3
"""Follow a Bambu Lab printer from a plain (blocking) script, with bambu_lan's ``SyncPrinter``.

    python examples/a1_full.py --host 192.168.1.50 --serial 03919A3B1200123 \\
        --access-code 12345678 --ca-dir ~/bambu_certs

(or set BAMBU_HOST, BAMBU_PORT, BAMBU_SERIAL, BAMBU_ACCESS_CODE, BAMBU_CA_FILE / BAMBU_CA_DIR).

What the library does for you, and this script shows:

* trust: --ca-file / --ca-dir (Bambu's CA files, e.g. a bambu_certs/ folder) verify the
  printer's certificate and that it names the serial; without them the certificate is pinned
  on first use (like SSH) and a different one later is refused. Either way the check happens
  before the access code is sent.
* status: one line whenever something that matters changes (job, progress, layer, stage,
  temperatures in whole degrees, speed, light, alerts).
* watchdog and reconnects: a printer that goes silent is asked for data, then reconnected;
  a dropped connection comes back by itself. Both show up as events and in the counters.
* clean shutdown: Ctrl-C (or --seconds N) leaves the ``with`` block, which sends DISCONNECT
  so that the printer frees the session at once (the A1 has only about four).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from bambu_lan import (
    BambuError,
    ConnectionStatus,
    PrinterOptions,
    PrinterState,
    SessionOptions,
    SyncPrinter,
)


def summary(state: PrinterState | None, status: ConnectionStatus) -> str:
    """One line about what matters; printed when it changes."""
    if state is None:
        return f"{status.state.value}: waiting for the first report"
    job, t = state.job, state.temperatures
    parts = [job.state.value]
    if job.active:
        parts.append(f"{job.name or job.file} {job.progress}%")
        parts.append(f"layer {job.layer}/{job.total_layers}")
        if job.stage:
            parts.append(job.stage)
        if job.remaining_minutes is not None:
            parts.append(f"{job.remaining_minutes} min left")
    parts.append(f"nozzle {t.nozzle or 0:.0f}/{t.nozzle_target or 0:.0f} °C")
    parts.append(f"bed {t.bed or 0:.0f}/{t.bed_target or 0:.0f} °C")
    parts.append(f"speed {state.speed.name or '?'}")
    parts.append(f"light {state.lights.get('chamber_light', '?')}")
    for alert in state.hms:
        parts.append(f"HMS {alert.short} {alert.text or alert.wiki_url}")
    if state.print_error:
        parts.append(f"error {state.print_error.hex} {state.print_error.text}")
    if status.state.value != "connected":
        parts.append(f"[{status.state.value}: {status.last_error}]")
    return " | ".join(parts)


def main() -> int:
    env = os.environ.get
    parser = argparse.ArgumentParser(description="Follow a Bambu Lab printer (Ctrl-C to stop).")
    parser.add_argument("--host", default=env("BAMBU_HOST"), help="printer IP (BAMBU_HOST)")
    parser.add_argument("--port", type=int, default=int(env("BAMBU_PORT") or 8883))
    parser.add_argument("--serial", default=env("BAMBU_SERIAL"), help="(BAMBU_SERIAL)")
    parser.add_argument("--access-code", default=env("BAMBU_ACCESS_CODE"))
    parser.add_argument("--ca-file", default=env("BAMBU_CA_FILE"), help="a CA bundle")
    parser.add_argument("--ca-dir", default=env("BAMBU_CA_DIR"), help="a bambu_certs/ folder")
    parser.add_argument("--watchdog", type=float, default=30.0, help="seconds of silence")
    parser.add_argument("--seconds", type=float, default=0, help="stop after N seconds")
    args = parser.parse_args()

    # The library's watchdog: after --watchdog seconds without a message it sends
    # pushing.start + pushall; still nothing 10 s later, it reconnects.
    options = PrinterOptions(session=SessionOptions(watchdog=args.watchdog))
    deadline = time.monotonic() + args.seconds if args.seconds else None
    try:
        with SyncPrinter(
            args.host or "",
            args.serial or "",
            args.access_code or "",
            port=args.port,
            ca_file=args.ca_file,
            ca_dir=args.ca_dir,
            options=options,
        ) as printer:
            state = printer.wait_for_state()
            info = printer.info
            print(f"connected to {state.model or 'printer'} {printer.config.serial}", end="")
            print(f", firmware {info.firmware}" if info else "", flush=True)
            last = ""
            reconnects = 0

            def show() -> None:
                nonlocal last, reconnects
                status = printer.status
                if status.connects - 1 > reconnects:
                    reconnects = status.connects - 1
                    print(f"reconnected ({reconnects} so far)", flush=True)
                line = summary(printer.state, status)
                if line != last:
                    print(line, flush=True)
                    last = line

            while deadline is None or time.monotonic() < deadline:
                # Events as they come (job started/finished, HMS, disconnected/connected);
                # after half a second without one the loop comes round again.
                for event in printer.events(timeout=0.5):
                    print(f"event: {event.message}", flush=True)
                    show()
                    if deadline is not None and time.monotonic() >= deadline:
                        break
                show()
    except KeyboardInterrupt:
        pass
    except BambuError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 2
    print("disconnected cleanly", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
