"""Camera pictures now and then, for Home Assistant's MQTT ``image`` entity.

One printer after another, spread over the interval, and never more than ``MAX_RATE``
pictures a second for the whole farm: a picture costs a few milliseconds of CPU (a TLS
connection and a 30-100 KB JPEG), so 1,000 printers at a minute each would cost about 5 % of a
core; at the cap they get one every 500 s. Each goes through the library's camera (the A1/P1
JPEG stream, or one RTSPS frame through ffmpeg). A camera that fails (switched off, not
reachable, no ffmpeg) is tried again after ``retry`` seconds; its failure is logged once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from bambu_lan.camera import camera_kind
from bambu_lan.serve.hub import WatchedPrinter
from bambu_lan.serve.text import safe

log = logging.getLogger("bambu_lan.serve.camera")

CONCURRENCY = 2
MAX_RATE = 2.0  # pictures a second, the whole farm
TIMEOUT = 20.0
RETRY = 600.0


class PictureTaker:
    """Takes the pictures; ``deliver(printer, jpeg)`` publishes each."""

    def __init__(
        self,
        interval: float,
        printers: Callable[[], Iterable[WatchedPrinter]],
        deliver: Callable[[WatchedPrinter, bytes], None],
        *,
        retry: float = RETRY,
    ) -> None:
        self.interval = interval
        self.printers = printers  # those to take now: online, and the broker reachable
        self.deliver = deliver
        self.retry = retry
        self.taken = 0
        self._failed_at: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        slots = asyncio.Semaphore(CONCURRENCY)
        try:
            while True:
                printers = [p for p in self.printers() if _has_camera(p)]
                if not printers:  # none up yet (serve starting, the broker away)
                    await asyncio.sleep(min(self.interval, 5.0))
                period = max(self.interval, len(printers) / MAX_RATE)
                for printer in printers:
                    await asyncio.sleep(period / len(printers))
                    failed = self._failed_at.get(printer.serial)
                    if failed is not None and time.monotonic() - failed < self.retry:
                        continue
                    await slots.acquire()
                    task = asyncio.get_running_loop().create_task(self._take(printer, slots))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        finally:
            for task in list(self._tasks):
                task.cancel()

    async def _take(self, printer: WatchedPrinter, slots: asyncio.Semaphore) -> None:
        try:
            frame = await printer.camera_picture(TIMEOUT)
        except Exception as exc:  # a camera's trouble never stops the others
            if printer.serial not in self._failed_at:
                log.info(
                    "%s (%s): no camera picture for Home Assistant: %s (trying again every %d min)",
                    safe(printer.name),
                    printer.serial,
                    safe(exc),
                    self.retry // 60,
                )
            self._failed_at[printer.serial] = time.monotonic()
            return
        finally:
            slots.release()
        self._failed_at.pop(printer.serial, None)
        self.taken += 1
        self.deliver(printer, frame.jpeg)


def _has_camera(printer: WatchedPrinter) -> bool:
    info = printer.printer.info
    return camera_kind(printer.serial, info.model_code if info else "") is not None
