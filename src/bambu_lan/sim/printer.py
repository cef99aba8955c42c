"""The simulated printer's firmware as MQTT sees it: ``PrinterModel``.

A ``PrinterModel`` knows nothing about sockets. Its owner (the broker side) hands it each
payload published on ``device/{SERIAL}/request`` through ``handle_request`` and gives it a
``publish`` callback that sends one payload on ``device/{SERIAL}/report``. ``run()`` drives the
periodic pushes; ``advance()`` does one tick by hand for deterministic tests.

It is assembled from the parts in ``bambu_lan.sim.model`` (state, physics, reports, command
handlers, scenario verbs; see that package's docstring) and adds the clock and the waiting.
Behaviour follows protocol.md §3.5-§3.6 (cadence, deltas, envelopes), §5.9 (per-command
effects), §10 (Developer Mode) and §12.3 (state model). The model is not thread-safe: call it
from the event loop that runs ``run()``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final, TypeVar, cast

import orjson

from bambu_lan.sim.model.handlers import CommandHandlers
from bambu_lan.sim.model.physics import Physics
from bambu_lan.sim.model.pushes import Reports
from bambu_lan.sim.model.scenarios import ScenarioVerbs
from bambu_lan.sim.model.state import (
    BUSY_STATES,
    LoggedRequest,
    ModelState,
    ModelStats,
    SdFile,
)
from bambu_lan.sim.profiles import ModelProfile
from bambu_lan.sim.report import JsonObject

__all__ = ["BUSY_STATES", "LoggedRequest", "ModelStats", "PrinterModel", "SdFile"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")


class PrinterModel(ScenarioVerbs):
    """One simulated printer: its full report state and the firmware behaviour around it.

    Scenario verbs (``start_print``, ``run_out_of_filament``, ``raise_hms`` …, inherited from
    ``ScenarioVerbs``) change the state as the printer's own screen or hardware would, without
    MQTT; every change is published at once as a delta, like a command's effect.

    Await state instead of sleeping: ``await model.wait_for_state("FINISH")`` or
    ``await model.wait_until(lambda m: m.state["layer_num"] >= 3)``.
    """

    IDLE_INTERVAL: Final = 2.0  # seconds between pushes while idle (A1 field logs)
    ACTIVE_INTERVAL: Final = 1.0  # while a job runs; always on X1
    MIN_INTERVAL: Final = 0.02  # floor of the time-scaled interval

    def __init__(
        self,
        profile: ModelProfile,
        serial: str,
        *,
        dev_mode: bool = True,
        time_scale: float = 1.0,
        seed: int | None = None,
    ) -> None:
        if not time_scale > 0:
            raise ValueError(f"time_scale must be positive, not {time_scale!r}")
        self.profile = profile
        self.serial = serial
        self.time_scale = time_scale
        # The order matters for a seeded model: each part draws from the one random stream.
        self.data = ModelState(profile, serial, dev_mode=dev_mode, seed=seed)
        self.reports = Reports(self.data)
        self.physics = Physics(self.data)
        self.handlers = CommandHandlers(self.data, self.reports)
        super().__init__(self.data)
        self._waiters: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []

    # --- the owner's hooks ----------------------------------------------------------------

    @property
    def publish(self) -> Callable[[bytes], None]:
        """Sends one payload on ``device/{SERIAL}/report`` (set by the owner)."""
        return self.reports.publish

    @publish.setter
    def publish(self, publish: Callable[[bytes], None]) -> None:
        self.reports.publish = publish

    @property
    def on_pushing_start(self) -> Callable[[], None] | None:
        """Called on ``pushing.start`` (the broker ends a simulated silence)."""
        return self.handlers.on_pushing_start

    @on_pushing_start.setter
    def on_pushing_start(self, callback: Callable[[], None] | None) -> None:
        self.handlers.on_pushing_start = callback

    # --- read-only views ------------------------------------------------------------------

    @property
    def state(self) -> Mapping[str, Any]:
        """The live ``print`` object (read-only view; nested objects must not be mutated)."""
        return MappingProxyType(self.data.report)

    @property
    def gcode_state(self) -> str:
        return self.data.gcode_state

    @property
    def dev_mode(self) -> bool:
        return self.data.dev_mode

    @property
    def pushing(self) -> bool:
        """False after ``pushing.stop`` until ``pushing.start``: no periodic pushes."""
        return self.data.pushing

    @property
    def stats(self) -> ModelStats:
        return self.data.stats

    @property
    def request_log(self) -> deque[LoggedRequest]:
        return self.data.request_log

    @property
    def state_history(self) -> deque[str]:
        """The last ``gcode_state`` values, oldest first (starts with ``IDLE``)."""
        return self.data.state_history

    @property
    def sim_time(self) -> float:
        """Simulated seconds since the model was made."""
        return self.data.sim_time

    @property
    def sd_files(self) -> frozenset[str]:
        return frozenset(self.data.sd_files)

    @property
    def version_modules(self) -> list[JsonObject]:
        """The ``module`` list ``get_version`` answers with (a copy)."""
        modules: list[JsonObject] = orjson.loads(orjson.dumps(self.data.version_modules))
        return modules

    @property
    def waiting(self) -> int:
        """How many ``wait_until``/``wait_for_state`` calls are pending."""
        return len(self._waiters)

    @property
    def tick_interval(self) -> float:
        """Wall seconds until the next periodic push."""
        data = self.data
        active = (
            data.job is not None
            or data.clear_print_error_at is not None
            or not self.profile.delta_reports
        )
        base = self.ACTIVE_INTERVAL if active else self.IDLE_INTERVAL
        return max(self.MIN_INTERVAL, base / self.time_scale)

    def full_report(self) -> JsonObject:
        """A deep copy of the full report as ``pushall`` sends it (X1: without ``msg``).

        Each call takes the next push ``sequence_id``: the owner publishes what it gets.
        """
        snapshot: JsonObject = orjson.loads(self.full_report_payload())
        return snapshot

    def full_report_payload(self) -> bytes:
        """``full_report()`` encoded as this model publishes it (X1: pretty-printed JSON)."""
        return self.reports.full_report_payload()

    def logged_commands(self) -> list[tuple[str, str]]:
        """``(class, command)`` of every logged request, oldest first."""
        commands: list[tuple[str, str]] = []
        for entry in self.data.request_log:
            for klass, body in entry.message.items():
                if isinstance(body, dict) and isinstance(body.get("command"), str):
                    commands.append((klass, body["command"]))
        return commands

    # --- requests -------------------------------------------------------------------------

    def handle_request(self, payload: bytes) -> None:
        """Handle one PUBLISH payload from ``device/{SERIAL}/request``. Never raises."""
        try:
            self.handlers.handle(payload)
            self._changed()
        except Exception:
            self.data.stats.internal_errors += 1
            logger.exception("simulated printer %s: request handling failed", self.serial)

    # --- awaiting state -------------------------------------------------------------------

    async def wait_until(
        self, predicate: Callable[[PrinterModel], bool], *, timeout: float | None = None
    ) -> None:
        """Return once ``predicate(self)`` holds; checked after every change batch."""
        await self._wait(lambda: True if predicate(self) else None, timeout)

    async def wait_for_state(self, *states: str, timeout: float | None = None) -> str:
        """Return the first ``gcode_state`` among ``states`` that the printer is in."""
        wanted = frozenset(states)
        return await self._wait(
            lambda: self.gcode_state if self.gcode_state in wanted else None, timeout
        )

    async def _wait(self, probe: Callable[[], _T | None], timeout: float | None) -> _T:
        value = probe()
        if value is not None:
            return value
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        entry: tuple[Callable[[], Any], asyncio.Future[Any]] = (probe, future)
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(timeout):
                result = await future
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)
        return cast(_T, result)  # the probe's own non-None value

    def _wake_waiters(self) -> None:
        for entry in list(self._waiters):
            probe, future = entry
            if future.done():
                continue
            try:
                value = probe()
            except Exception as exc:  # a test's predicate failed: let its awaiter see it
                future.set_exception(exc)
                continue
            if value is not None:
                future.set_result(value)

    # --- time -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Advance simulated time and push reports until cancelled."""
        loop = asyncio.get_running_loop()
        last = loop.time()
        # A random first delay so that a farm's printers do not all tick in the same instant.
        delay = self.data.rng.uniform(0.0, self.tick_interval)
        while True:
            await asyncio.sleep(delay)
            now = loop.time()
            try:
                self.advance((now - last) * self.time_scale)
            except Exception:
                self.data.stats.internal_errors += 1
                logger.exception("simulated printer %s: tick failed", self.serial)
            last = now
            delay = self.tick_interval

    def advance(self, seconds: float) -> None:
        """One tick: move simulated time on by ``seconds`` and send the periodic push."""
        self.data.sim_time += seconds
        self.physics.step(seconds)
        if self.data.pushing:
            if self.reports.wants_filler:
                self.physics.jitter_wifi(force=True)
            self.reports.periodic_push()
        self._wake_waiters()

    def push_full(self) -> None:
        """Publish the complete report now (``msg: 0``; X1: the usual full push)."""
        self.reports.push_full()

    def _changed(self) -> None:
        """Publish what a command or verb changed right away, then wake waiters."""
        self.reports.flush()
        self._wake_waiters()
