"""The simulated printer's firmware as MQTT sees it: state, pushes, commands, scenario verbs.

A ``PrinterModel`` knows nothing about sockets. Its owner (the broker side) hands it each
payload published on ``device/{SERIAL}/request`` through ``handle_request`` and gives it a
``publish`` callback that sends one payload on ``device/{SERIAL}/report``. ``run()`` drives the
periodic pushes; ``advance()`` does one tick by hand for deterministic tests.

Behaviour follows protocol.md §3.5-§3.6 (cadence, deltas, envelopes), §5.9 (per-command
effects), §10 (Developer Mode) and §12.3 (state model). The model is not thread-safe: call it
from the event loop that runs ``run()``.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from types import MappingProxyType
from typing import Any, Final, TypeVar, cast
from urllib.parse import unquote, urlsplit

import orjson

from bambu_lan.sim import report
from bambu_lan.sim.profiles import ModelProfile
from bambu_lan.sim.report import JsonObject

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

# gcode_state values the slicer treats as "busy" (§4.2).
BUSY_STATES: Final = frozenset({"PREPARE", "RUNNING", "PAUSE", "SLICING"})
_JOB_ADVANCING_STATES: Final = frozenset({"PREPARE", "RUNNING"})

# Stage ids (§4.5).
STAGE_PRINTING: Final = 0
STAGE_BED_LEVELING: Final = 1
STAGE_HEATBED_PREHEATING: Final = 2
STAGE_VIBRATION_COMPENSATION: Final = 3
STAGE_FILAMENT_RUNOUT: Final = 6
STAGE_EXTRUSION_CALIBRATION: Final = 8
STAGE_HOMING: Final = 13
STAGE_CLEANING_NOZZLE: Final = 14
STAGE_PAUSED_BY_USER: Final = 16

# print.* commands that pass without a signature (§10.3: queries); all others need one
# while Developer Mode is off.
_UNSIGNED_PRINT_COMMANDS: Final = frozenset({"extrusion_cali_get"})
_VERIFY_FAILED_REASON: Final = "mqtt message verify failed"
_LIGHT_MODES: Final = frozenset({"on", "off", "flashing"})
_NOZZLE_LIMITS: Final = (0, 300)
_BED_LIMITS: Final = (0, 120)
# M106 P<n>: report key of the 0-15 speed and the byte of fan_gear it owns (§4.2, §5.4).
_FAN_OUTPUTS: Final[dict[int, tuple[str, int]]] = {
    1: ("cooling_fan_speed", 0),
    2: ("big_fan1_speed", 8),
    3: ("big_fan2_speed", 16),
}
_STOP_ERROR_SECONDS: Final = 2.0  # print_error 50348044 shows this long after a stop (§5.2)
_HOTEND_FAN_ON_ABOVE: Final = 50.0  # °C; the heatbreak fan runs while the nozzle is hot
_GCODE_LINES_PER_SECOND: Final = 23
_HEATED_TOLERANCE: Final = 2.0  # °C; a heater this close to its target counts as "at target"
_REQUEST_LOG_SIZE: Final = 256
_STATE_HISTORY_SIZE: Final = 64


@dataclass(slots=True)
class ModelStats:
    """Counters of one simulated printer."""

    requests: int = 0  # payloads received on /request
    bad_payloads: int = 0  # not UTF-8 JSON objects: ignored
    commands_handled: int = 0  # commands with a handler (including refusals)
    commands_ignored: int = 0  # unknown class or command, or not an object: no reply
    verify_failures: int = 0  # print.* refused because Developer Mode is off
    pushes: int = 0  # push_status messages published
    replies: int = 0  # command replies published
    internal_errors: int = 0  # bugs caught so that handle_request/run never raise


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """One decoded request payload, as received."""

    received_at: float  # time.time()
    message: JsonObject


@dataclass(frozen=True, slots=True)
class SdFile:
    """A print file on the simulated SD card and how long its simulated job runs."""

    layers: int
    layer_seconds: float


class _Phase(enum.Enum):
    PREPARE = "prepare"  # gcode_state PREPARE: the file is being read
    STAGES = "stages"  # RUNNING, stg_cur walking the stg list
    PRINTING = "printing"  # RUNNING, stg_cur 0, layers advancing


@dataclass(slots=True)
class _Job:
    """The print in progress. Times are simulated seconds; ``printed`` is measured at 100 %."""

    file: str
    name: str
    layers: int
    layer_seconds: float
    prepare_seconds: float
    stage_seconds: float
    stages: list[int]
    nozzle_target: int
    bed_target: int
    phase: _Phase = _Phase.PREPARE
    phase_elapsed: float = 0.0
    stage_index: int = 0
    printed: float = 0.0

    @property
    def total_work(self) -> float:
        return self.layers * self.layer_seconds

    @property
    def current_stage(self) -> int:
        if self.phase is _Phase.STAGES:
            return self.stages[self.stage_index]
        return STAGE_PRINTING

    def seconds_left_at_full_speed(self) -> float:
        """Preparation still to do (speed-independent) and the print itself (at 100 %)."""
        fixed = 0.0
        if self.phase is _Phase.PREPARE:
            fixed = max(0.0, self.prepare_seconds - self.phase_elapsed)
            fixed += len(self.stages) * self.stage_seconds
        elif self.phase is _Phase.STAGES:
            stages_left = len(self.stages) - self.stage_index
            fixed = max(0.0, stages_left * self.stage_seconds - self.phase_elapsed)
        return fixed


@dataclass(slots=True)
class _Heater:
    """A heated part: it heats at a fixed rate and cools exponentially towards ambient."""

    reading_key: str
    target_key: str
    temperature: float
    heat_rate: float  # °C per simulated second at full power
    cool_tau: float  # seconds
    noise: float  # ± °C of sensor noise on each reading

    def step(self, seconds: float, target: float, ambient: float) -> None:
        t = self.temperature
        if target > t:
            self.temperature = min(target, t + self.heat_rate * seconds)
            return
        floor = max(target, ambient)  # holds its target; unpowered it drifts to ambient
        if abs(t - floor) > 1e-3:
            self.temperature = floor + (t - floor) * math.exp(-seconds / self.cool_tau)


@dataclass(frozen=True, slots=True)
class _Request:
    klass: str
    command: str
    body: JsonObject

    @property
    def sequence_id(self) -> str | None:
        """The request's id as the reply echoes it: always a string (§3.6)."""
        value = self.body.get("sequence_id")
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return None


_CommandHandler = Callable[["PrinterModel", _Request], None]
_COMMANDS: dict[tuple[str, str], _CommandHandler] = {}
_GcodeHandler = Callable[["PrinterModel", dict[str, str]], None]
_GCODES: dict[str, _GcodeHandler] = {}


def _command(klass: str, *names: str) -> Callable[[_CommandHandler], _CommandHandler]:
    """Register a request handler for ``klass``.``name`` in the dispatch table."""

    def register(handler: _CommandHandler) -> _CommandHandler:
        for name in names:
            _COMMANDS[(klass, name)] = handler
        return handler

    return register


def _gcode(*words: str) -> Callable[[_GcodeHandler], _GcodeHandler]:
    """Register an interpreter for G-code ``words`` (``"M104"``) in the G-code table."""

    def register(handler: _GcodeHandler) -> _GcodeHandler:
        for word in words:
            _GCODES[word] = handler
        return handler

    return register


def _discard(payload: bytes) -> None:
    """Default ``publish``: nobody is listening yet."""


def _decode_request(payload: bytes | bytearray | memoryview) -> JsonObject | None:
    """Lenient decoding (§3.3): trailing NULs and whitespace are fine; anything else that is
    not a UTF-8 JSON object is not a request."""
    data = bytes(payload).rstrip(b"\x00 \t\r\n")
    try:
        message = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return message if isinstance(message, dict) else None


def _requested_file(value: object) -> str | None:
    """The file name a ``url``/``file``/``param`` names: ``file:///sdcard/x.gcode.3mf``,
    ``ftp:///x.gcode.3mf``, ``file:///mnt/sdcard/x.3mf`` or a bare path -> ``x.gcode.3mf``."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        path = urlsplit(value).path if "://" in value else value
    except ValueError:  # e.g. a broken IPv6 host: not a name the printer could open
        return None
    return PurePosixPath(unquote(path)).name or None


def _bool_option(body: JsonObject, *names: str, default: bool) -> bool:
    """The first of ``names`` present in ``body`` (spelling variants), as a bool."""
    for name in names:
        value = body.get(name)
        if isinstance(value, bool | int):
            return bool(value)
    return default


def _string_id(body: JsonObject, name: str) -> str:
    """A cloud id field (``project_id`` …): ``"0"`` for LAN jobs and anything unusable."""
    value = body.get(name)
    return value if isinstance(value, str) and value else "0"


def _gcode_number(args: dict[str, str], letter: str) -> float | None:
    text = args.get(letter)
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _file_stem(file_name: str) -> str:
    for suffix in (".gcode.3mf", ".3mf", ".gcode"):
        if file_name.lower().endswith(suffix):
            return file_name[: -len(suffix)]
    return file_name


class PrinterModel:
    """One simulated printer: its full report state and the firmware behaviour around it.

    Scenario verbs (``start_print``, ``run_out_of_filament``, ``raise_hms`` …) change the
    state as the printer's own screen or hardware would, without MQTT; every change is
    published at once as a delta, like a command's effect.

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
        self.publish: Callable[[bytes], None] = _discard
        self.on_pushing_start: Callable[[], None] | None = None
        self.stats = ModelStats()
        self.request_log: deque[LoggedRequest] = deque(maxlen=_REQUEST_LOG_SIZE)
        self.state_history: deque[str] = deque(["IDLE"], maxlen=_STATE_HISTORY_SIZE)

        self._rng = random.Random(seed)
        self._dev_mode = dev_mode
        self._pushing = True
        self._dump_options = 0 if profile.delta_reports else orjson.OPT_INDENT_2  # X1: pretty
        self._push_sequence = self._rng.randint(100, 9000)
        self._print = report.build_print_object(profile, serial)
        self._key_rank = {key: rank for rank, key in enumerate(self._print)}
        self._dirty: dict[str, None] = {}  # changed top-level keys, in insertion order
        self._last_tick_quiet = False
        self._detached_ams_units: list[JsonObject] = []
        self._modules = report.build_version_modules(profile, serial)
        self._sd_files: dict[str, SdFile] = {
            "benchy.gcode.3mf": SdFile(layers=48, layer_seconds=12.0),
            "calibration_cube.gcode.3mf": SdFile(layers=20, layer_seconds=10.0),
        }
        self._job: _Job | None = None
        self._sim_time = 0.0
        self._clear_print_error_at: float | None = None
        self._waiters: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []

        # Readings: a warm-ish printer in a room somewhere between 20 and 27 °C.
        self._ambient = round(self._rng.uniform(20.0, 27.0), 2)
        self._heaters = (
            _Heater("nozzle_temper", "nozzle_target_temper", self._ambient + 3.0, 5.0, 90.0, 0.08),
            _Heater("bed_temper", "bed_target_temper", self._ambient + 1.5, 1.2, 600.0, 0.06),
        )
        self._chamber = self._ambient + 0.5
        self._wifi_center = self._rng.randint(-62, -40)
        self._wifi_dbm = self._wifi_center
        self._print["wifi_signal"] = report.format_wifi_signal(self._wifi_dbm)
        for heater in self._heaters:
            self._print[heater.reading_key] = self._reading(heater.temperature, heater.noise)
        if profile.has_chamber_sensor:
            self._print["chamber_temper"] = self._reading(self._chamber, 0.05)

    # --- read-only views ------------------------------------------------------------------

    @property
    def state(self) -> Mapping[str, Any]:
        """The live ``print`` object (read-only view; nested objects must not be mutated)."""
        return MappingProxyType(self._print)

    @property
    def gcode_state(self) -> str:
        state: str = self._print["gcode_state"]
        return state

    @property
    def dev_mode(self) -> bool:
        return self._dev_mode

    @property
    def pushing(self) -> bool:
        """False after ``pushing.stop`` until ``pushing.start``: no periodic pushes."""
        return self._pushing

    @property
    def sd_files(self) -> frozenset[str]:
        return frozenset(self._sd_files)

    @property
    def version_modules(self) -> list[JsonObject]:
        """The ``module`` list ``get_version`` answers with (a copy)."""
        modules: list[JsonObject] = orjson.loads(orjson.dumps(self._modules))
        return modules

    @property
    def tick_interval(self) -> float:
        """Wall seconds until the next periodic push."""
        active = (
            self._job is not None
            or self._clear_print_error_at is not None
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
        return orjson.dumps(self._full_message(self._next_sequence_id()), option=self._dump_options)

    def logged_commands(self) -> list[tuple[str, str]]:
        """``(class, command)`` of every logged request, oldest first."""
        commands: list[tuple[str, str]] = []
        for entry in self.request_log:
            for klass, body in entry.message.items():
                if isinstance(body, dict) and isinstance(body.get("command"), str):
                    commands.append((klass, body["command"]))
        return commands

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

    # --- periodic pushes ------------------------------------------------------------------

    async def run(self) -> None:
        """Advance simulated time and push reports until cancelled."""
        loop = asyncio.get_running_loop()
        last = loop.time()
        # A random first delay so that a farm's printers do not all tick in the same instant.
        delay = self._rng.uniform(0.0, self.tick_interval)
        while True:
            await asyncio.sleep(delay)
            now = loop.time()
            try:
                self.advance((now - last) * self.time_scale)
            except Exception:
                self.stats.internal_errors += 1
                logger.exception("simulated printer %s: tick failed", self.serial)
            last = now
            delay = self.tick_interval

    def advance(self, seconds: float) -> None:
        """One tick: move simulated time on by ``seconds`` and send the periodic push."""
        self._sim_time += seconds
        self._simulate(seconds)
        if self._pushing:
            self._periodic_push()
        self._wake_waiters()

    def push_full(self) -> None:
        """Publish the complete report now (``msg: 0``; X1: the usual full push)."""
        self._send(self._full_message(self._next_sequence_id()), push=True)
        self._dirty = {}

    def _periodic_push(self) -> None:
        if not self.profile.delta_reports:
            self.push_full()
            return
        if not self._dirty:
            # Idle A1s send a delta every 2-4 s (§3.5): one quiet tick is fine, two are not.
            if not self._last_tick_quiet:
                self._last_tick_quiet = True
                return
            self._jitter_wifi(force=True)
        self._last_tick_quiet = False
        self._push_delta()

    def _push_delta(self) -> None:
        rank = self._key_rank
        state = self._print
        body = {key: state[key] for key in sorted(self._dirty, key=rank.__getitem__)}
        self._dirty = {}
        body["command"] = "push_status"
        body["msg"] = 1
        body["sequence_id"] = self._next_sequence_id()
        self._send({"print": body}, push=True)

    def _flush(self) -> None:
        """Publish what a command or verb changed right away, then wake waiters."""
        if self._dirty and self._pushing:
            if self.profile.delta_reports:
                self._push_delta()
            else:
                self.push_full()
        self._wake_waiters()

    def _full_message(self, sequence_id: str) -> JsonObject:
        body = dict(self._print)
        body["command"] = "push_status"
        if self.profile.delta_reports:
            body["msg"] = 0
        body["sequence_id"] = sequence_id
        return {"print": body}

    def _next_sequence_id(self) -> str:
        self._push_sequence += 1
        return str(self._push_sequence)

    def _send(self, message: JsonObject, *, push: bool) -> None:
        if push:
            self.stats.pushes += 1
        else:
            self.stats.replies += 1
        self.publish(orjson.dumps(message, option=self._dump_options))

    # --- state changes --------------------------------------------------------------------

    def _set(self, key: str, value: Any) -> None:
        """Change one top-level key; only real changes go into the next delta."""
        if self._print[key] != value:
            self._print[key] = value
            self._dirty[key] = None

    def _touch(self, key: str) -> None:
        """Mark a nested object changed in place (it is sent whole)."""
        self._dirty[key] = None

    def _set_state(self, gcode_state: str) -> None:
        if self._print["gcode_state"] != gcode_state:
            self._set("gcode_state", gcode_state)
            self.state_history.append(gcode_state)

    def _reading(self, temperature: float, noise: float) -> float:
        """A sensor reading: the A1 reports temperatures in 1/32 °C steps."""
        noisy = temperature + (self._rng.random() * 2.0 - 1.0) * noise
        return round(noisy * 32.0) / 32.0

    def _jitter_wifi(self, *, force: bool = False) -> None:
        if not force and self._rng.random() > 0.4:
            return
        step = self._rng.choice((-2, -1, 1, 2))
        dbm = self._wifi_dbm + step
        if abs(dbm - self._wifi_center) > 4:
            dbm = self._wifi_dbm - step
        self._wifi_dbm = dbm
        self._set("wifi_signal", report.format_wifi_signal(dbm))

    def _simulate(self, seconds: float) -> None:
        if self._clear_print_error_at is not None and self._sim_time >= self._clear_print_error_at:
            self._clear_print_error_at = None
            self._set("print_error", 0)
        state = self._print
        for heater in self._heaters:
            heater.step(seconds, state[heater.target_key], self._ambient)
            self._set(heater.reading_key, self._reading(heater.temperature, heater.noise))
        if self.profile.has_chamber_sensor:
            bed = self._heaters[1].temperature
            goal = self._ambient + 0.25 * max(0.0, bed - self._ambient)
            self._chamber = goal + (self._chamber - goal) * math.exp(-seconds / 600.0)
            self._set("chamber_temper", self._reading(self._chamber, 0.05))
        hot = self._heaters[0].temperature > _HOTEND_FAN_ON_ABOVE
        self._set("heatbreak_fan_speed", "15" if hot else "0")
        job = self._job
        if job is not None and state["gcode_state"] in _JOB_ADVANCING_STATES:
            self._advance_job(job, seconds)
        self._jitter_wifi()

    # --- the job lifecycle ----------------------------------------------------------------

    def _start_job(self, job: _Job, *, tray: str, ids: Mapping[str, str] | None = None) -> None:
        self._job = job
        self._clear_print_error_at = None
        self._set_state("PREPARE")
        for key in ("project_id", "profile_id", "task_id", "subtask_id"):
            self._set(key, (ids or {}).get(key, "0"))
        self._set("print_type", "local")
        self._set("gcode_file", job.file)
        self._set("subtask_name", job.name)
        self._set("gcode_file_prepare_percent", "0")
        self._set("mc_print_stage", "2")
        self._set("mc_print_sub_stage", 0)
        self._set("mc_percent", 0)
        self._set("mc_print_line_number", "0")
        self._set("layer_num", 0)
        self._set("total_layer_num", job.layers)
        self._set("stg", [])
        self._set("stg_cur", report.idle_stage(self.profile))
        self._set("s_obj", [])
        self._set("print_error", 0)
        self._set("hw_switch_state", 1)
        if "gcode_start_time" in self._print:
            self._set("gcode_start_time", str(int(time.time())))
        self._set_tray_now(tray)
        self._update_remaining_time()

    def _advance_job(self, job: _Job, seconds: float) -> None:
        """Move the job on. A phase or stage change ends the tick's progress, so that every
        phase shows in at least one push however coarse the time scale is."""
        job.phase_elapsed += seconds
        if job.phase is _Phase.PREPARE:
            done = job.phase_elapsed >= job.prepare_seconds
            percent = 100 if done else int(100 * job.phase_elapsed / job.prepare_seconds)
            self._set("gcode_file_prepare_percent", str(percent))
            if done:
                self._enter_stage(job, 0)
        elif job.phase is _Phase.STAGES:
            if job.phase_elapsed >= job.stage_seconds and self._stage_done(job):
                if job.stage_index + 1 < len(job.stages):
                    self._enter_stage(job, job.stage_index + 1)
                else:
                    self._enter_printing(job)
        else:
            speed = self._print["spd_mag"] / 100.0
            job.printed += seconds * speed
            if job.printed >= job.total_work:
                self._finish_job()
                return
            self._show_print_progress(job)
        self._update_remaining_time()

    def _stage_done(self, job: _Job) -> bool:
        if job.current_stage != STAGE_HEATBED_PREHEATING:
            return True
        state = self._print
        return all(
            state[h.target_key] == 0 or abs(h.temperature - state[h.target_key]) < _HEATED_TOLERANCE
            for h in self._heaters
        )

    def _enter_stage(self, job: _Job, index: int) -> None:
        job.phase = _Phase.STAGES
        job.stage_index = index
        job.phase_elapsed = 0.0
        stage = job.stages[index]
        if index == 0:
            self._set_state("RUNNING")
            self._set("gcode_file_prepare_percent", "100")
            self._set("stg", list(job.stages))
        if stage == STAGE_HEATBED_PREHEATING:
            self._set("bed_target_temper", job.bed_target)
            self._set("nozzle_target_temper", job.nozzle_target)
        elif stage == STAGE_HOMING:
            self._set("home_flag", self._print["home_flag"] | report.HOME_XYZ)
        self._set("stg_cur", stage)

    def _enter_printing(self, job: _Job) -> None:
        job.phase = _Phase.PRINTING
        job.phase_elapsed = 0.0
        self._set("stg_cur", STAGE_PRINTING)
        self._set("mc_print_sub_stage", 1)
        self._set("nozzle_target_temper", job.nozzle_target)
        self._set("bed_target_temper", job.bed_target)
        self._show_print_progress(job)

    def _show_print_progress(self, job: _Job) -> None:
        layer = min(job.layers, 1 + int(job.printed / job.layer_seconds))
        if layer >= 2 and self._print["layer_num"] < 2:
            self._set_fan(1, 255)  # the part fan comes on after the first layer
        self._set("layer_num", layer)
        self._set("mc_percent", min(99, int(100 * job.printed / job.total_work)))
        self._set("mc_print_line_number", str(int(job.printed * _GCODE_LINES_PER_SECOND)))

    def _update_remaining_time(self) -> None:
        job = self._job
        if job is None:
            return
        speed = self._print["spd_mag"] / 100.0
        seconds = job.seconds_left_at_full_speed() + (job.total_work - job.printed) / speed
        self._set("mc_remaining_time", math.ceil(max(0.0, seconds) / 60.0))

    def _finish_job(self) -> None:
        job = self._job
        if job is not None:
            self._set("layer_num", job.layers)
        self._set("mc_percent", 100)
        self._set("mc_remaining_time", 0)
        self._end_job("FINISH")

    def _end_job(self, final_state: str, *, print_error: int = 0) -> None:
        """FINISH or FAILED: heaters and fans off, back to an idle print type."""
        self._job = None
        self._set_state(final_state)
        self._set("print_error", print_error)
        self._set("print_type", "idle")
        self._set("mc_print_stage", "1")
        self._set("mc_print_sub_stage", 0)
        self._set("stg_cur", report.idle_stage(self.profile))
        self._set("nozzle_target_temper", 0)
        self._set("bed_target_temper", 0)
        for fan in _FAN_OUTPUTS:
            self._set_fan(fan, 0)

    def _pause_job(self, stage: int) -> None:
        self._set_state("PAUSE")
        self._set("stg_cur", stage)
        self._set("mc_print_stage", "3")

    def _resume_job(self, job: _Job) -> None:
        self._set_state("PREPARE" if job.phase is _Phase.PREPARE else "RUNNING")
        self._set(
            "stg_cur",
            job.current_stage
            if job.phase is not _Phase.PREPARE
            else report.idle_stage(self.profile),
        )
        self._set("mc_print_stage", "2")
        self._set("print_error", 0)
        self._set("hw_switch_state", 1)

    def _set_fan(self, fan: int, value: int) -> None:
        """Fan ``fan`` (M106 P<fan>) to ``value`` 0-255: the 0-15 string and ``fan_gear``."""
        key, shift = _FAN_OUTPUTS[fan]
        self._set(key, str(round(value * 15 / 255)))
        gear = (self._print["fan_gear"] & ~(0xFF << shift)) | (value << shift)
        self._set("fan_gear", gear)

    def _set_tray_now(self, tray: str) -> None:
        ams = self._print["ams"]
        if ams["tray_now"] != tray:
            ams["tray_pre"] = ams["tray_now"]
            ams["tray_now"] = tray
            ams["tray_tar"] = tray
            self._touch("ams")

    # --- requests -------------------------------------------------------------------------

    def handle_request(self, payload: bytes) -> None:
        """Handle one PUBLISH payload from ``device/{SERIAL}/request``. Never raises."""
        try:
            self._handle_request(payload)
        except Exception:
            self.stats.internal_errors += 1
            logger.exception("simulated printer %s: request handling failed", self.serial)

    def _handle_request(self, payload: bytes) -> None:
        self.stats.requests += 1
        message = _decode_request(payload)
        if message is None:
            self.stats.bad_payloads += 1
            logger.debug("simulated printer %s: ignoring a payload that is not JSON", self.serial)
            return
        self.request_log.append(LoggedRequest(time.time(), message))
        # A signature envelope we cannot verify is a malformed one (§6.3).
        signed = "header" in message
        for klass, body in message.items():
            if klass != "header":
                self._handle_command(klass, body, signed=signed)
        self._flush()

    def _handle_command(self, klass: str, body: object, *, signed: bool) -> None:
        command = body.get("command") if isinstance(body, dict) else None
        if not isinstance(body, dict) or not isinstance(command, str):
            self.stats.commands_ignored += 1
            return
        request = _Request(klass, command, body)
        if klass == "print" and not self._dev_mode and command not in _UNSIGNED_PRINT_COMMANDS:
            # Verification comes before dispatch: unknown print commands are refused too.
            self.stats.commands_handled += 1
            self._refuse_unsigned(request, malformed_envelope=signed)
            return
        handler = _COMMANDS.get((klass, command))
        if handler is None:
            self.stats.commands_ignored += 1  # unknown: the safest guess is no reply (§5.9)
            logger.debug("simulated printer %s: no handler for %s.%s", self.serial, klass, command)
            return
        self.stats.commands_handled += 1
        handler(self, request)

    def _reply(
        self, request: _Request, *, error: str | None = None, err_code: int | None = None
    ) -> None:
        """Reply under the request's class: command, echoed id and fields, result, reason."""
        body: JsonObject = {"command": request.command}
        sequence_id = request.sequence_id
        if sequence_id is not None:
            body["sequence_id"] = sequence_id
        for key, value in request.body.items():
            if key not in ("command", "sequence_id"):
                body[key] = value
        body["result"] = "failed" if error is not None else "success"
        body["reason"] = error if error is not None else ""
        if err_code is not None:
            body["err_code"] = err_code
        self._send({request.klass: body}, push=False)

    def _refuse_unsigned(self, request: _Request, *, malformed_envelope: bool) -> None:
        """Developer Mode off: refuse, raise HMS 0500_0500_0001_0007, change nothing (§10.4)."""
        self.stats.verify_failures += 1
        code = report.ERR_ENVELOPE_MALFORMED if malformed_envelope else report.ERR_VERIFY_FAILED
        self._reply(request, error=_VERIFY_FAILED_REASON, err_code=code)
        self._add_hms(*report.HMS_VERIFY_FAILED)

    # pushing / info / system

    @_command("pushing", "pushall")
    def _on_pushall(self, request: _Request) -> None:
        self.push_full()

    @_command("pushing", "start")
    def _on_pushing_start(self, request: _Request) -> None:
        self._pushing = True
        if self.on_pushing_start is not None:
            self.on_pushing_start()
        self.push_full()

    @_command("pushing", "stop")
    def _on_pushing_stop(self, request: _Request) -> None:
        self._pushing = False

    @_command("info", "get_version")
    def _on_get_version(self, request: _Request) -> None:
        body: JsonObject = {"command": "get_version"}
        if request.sequence_id is not None:
            body["sequence_id"] = request.sequence_id
        body |= {"module": self._modules, "result": "success", "reason": ""}
        self._send({"info": body}, push=False)

    @_command("system", "ledctrl")
    def _on_ledctrl(self, request: _Request) -> None:
        node = request.body.get("led_node", self.profile.light_nodes[0])
        mode = request.body.get("led_mode")
        if node not in self.profile.light_nodes:
            self._reply(request, error=f"unsupported led_node {node!r}")
            return
        if not isinstance(mode, str) or mode not in _LIGHT_MODES:
            self._reply(request, error=f"unsupported led_mode {mode!r}")
            return
        lights = [
            {"node": light["node"], "mode": mode if light["node"] == node else light["mode"]}
            for light in self._print["lights_report"]
        ]
        self._set("lights_report", lights)
        self._reply(request)

    # print: job control

    @_command("print", "pause")
    def _on_pause(self, request: _Request) -> None:
        if self._job is None:
            self._reply(request, error="no print job to pause")
            return
        if self.gcode_state != "PAUSE":
            self._pause_job(STAGE_PAUSED_BY_USER)
        self._reply(request)

    @_command("print", "resume")
    def _on_resume(self, request: _Request) -> None:
        job = self._job
        if job is None:
            self._reply(request, error="no print job to resume")
            return
        if self.gcode_state == "PAUSE":
            self._resume_job(job)
        self._reply(request)

    @_command("print", "stop")
    def _on_stop(self, request: _Request) -> None:
        if self._job is None:
            self._reply(request, error="no print job to stop")
            return
        self._end_job("FAILED", print_error=report.PRINT_ERROR_CANCELLED)
        self._clear_print_error_at = self._sim_time + _STOP_ERROR_SECONDS
        self._reply(request)

    @_command("print", "print_speed")
    def _on_print_speed(self, request: _Request) -> None:
        param = request.body.get("param")
        level = None
        if isinstance(param, str) and param.strip().isascii() and param.strip().isdigit():
            level = int(param)
        elif isinstance(param, int) and not isinstance(param, bool):
            level = param
        if level not in report.SPEED_MAGNITUDES:
            self._reply(request, error=f"speed level must be 1-4, not {param!r}")
            return
        self._set("spd_lvl", level)
        self._set("spd_mag", report.SPEED_MAGNITUDES[level])
        self._update_remaining_time()
        self._reply(request)

    @_command("print", "skip_objects")
    def _on_skip_objects(self, request: _Request) -> None:
        objects = request.body.get("obj_list")
        if not isinstance(objects, list) or not all(
            isinstance(o, int) and not isinstance(o, bool) for o in objects
        ):
            self._reply(request, error="obj_list must be a list of object ids")
            return
        if self._job is None:
            self._reply(request, error="no print job")
            return
        skipped: list[int] = list(self._print["s_obj"])
        skipped.extend(o for o in dict.fromkeys(objects) if o not in skipped)
        self._set("s_obj", skipped)
        self._reply(request)

    # print: starting a job

    @_command("print", "project_file")
    def _on_project_file(self, request: _Request) -> None:
        body = request.body
        file_name = _requested_file(body.get("url")) or _requested_file(body.get("file"))
        self._start_from_request(request, file_name)

    @_command("print", "gcode_file")
    def _on_gcode_file(self, request: _Request) -> None:
        self._start_from_request(request, _requested_file(request.body.get("param")))

    def _start_from_request(self, request: _Request, file_name: str | None) -> None:
        if self.gcode_state in BUSY_STATES:
            self._reply(request, error="device is busy", err_code=report.PRINT_ERROR_BUSY)
            return
        sd_file = self._sd_files.get(file_name) if file_name else None
        if file_name is None or sd_file is None:
            self._set_state("FAILED")
            self._set("print_error", report.PRINT_ERROR_FILE_NOT_FOUND)
            self._set("print_type", "idle")
            self._reply(
                request,
                error="unsupported print file path or name",
                err_code=report.PRINT_ERROR_FILE_NOT_FOUND,
            )
            return
        body = request.body
        tray = self._requested_tray(body)
        material = report.filament_type(self._tray_type(tray))
        subtask_name = body.get("subtask_name")
        job = _Job(
            file=file_name,
            name=subtask_name
            if isinstance(subtask_name, str) and subtask_name
            else _file_stem(file_name),
            layers=sd_file.layers,
            layer_seconds=sd_file.layer_seconds,
            prepare_seconds=self._rng.uniform(1.0, 3.0),
            stage_seconds=4.0,
            stages=_plan_stages(
                bed_leveling=_bool_option(body, "bed_leveling", "bed_levelling", default=True),
                vibration_cali=_bool_option(body, "vibration_cali", default=False),
                flow_cali=_bool_option(body, "flow_cali", default=True),
            ),
            nozzle_target=material.print_nozzle,
            bed_target=material.print_bed,
        )
        self._reply(request)
        ids = {
            key: _string_id(body, key)
            for key in ("project_id", "profile_id", "task_id", "subtask_id")
        }
        self._start_job(job, tray=tray, ids=ids)

    def _requested_tray(self, body: JsonObject) -> str:
        """``tray_now`` for a job: the first mapped AMS tray, else the external spool."""
        mapping = body.get("ams_mapping")
        use_ams = _bool_option(body, "use_ams", default=False)
        if use_ams and self._print["ams"]["ams"] and isinstance(mapping, list):
            for tray in mapping:
                if isinstance(tray, int) and not isinstance(tray, bool) and 0 <= tray < 16:
                    return str(tray)
        return report.EXTERNAL_SPOOL

    def _tray_type(self, tray: str) -> str:
        if tray == report.EXTERNAL_SPOOL:
            found: object = self._print["vt_tray"].get("tray_type")
        else:
            found = None
            unit_id, slot = divmod(int(tray), 4)
            for unit in self._print["ams"]["ams"]:
                if unit["id"] == str(unit_id) and slot < len(unit["tray"]):
                    found = unit["tray"][slot].get("tray_type")
        return found if isinstance(found, str) and found else "PLA"

    # print: G-code and filament

    @_command("print", "gcode_line")
    def _on_gcode_line(self, request: _Request) -> None:
        param = request.body.get("param")
        if not isinstance(param, str):
            self._reply(request, error="param must be G-code text")
            return
        for line in param.splitlines():
            words = line.split(";", 1)[0].upper().split()
            if not words:
                continue
            interpret = _GCODES.get(words[0])
            if interpret is not None:
                interpret(self, {word[0]: word[1:] for word in words[1:]})
        self._reply(request)

    @_gcode("M104", "M109")
    def _gcode_nozzle_target(self, args: dict[str, str]) -> None:
        celsius = _gcode_number(args, "S")
        if celsius is not None:
            low, high = _NOZZLE_LIMITS
            self._set("nozzle_target_temper", round(min(max(celsius, low), high)))

    @_gcode("M140", "M190")
    def _gcode_bed_target(self, args: dict[str, str]) -> None:
        celsius = _gcode_number(args, "S")
        if celsius is not None:
            low, high = _BED_LIMITS
            self._set("bed_target_temper", round(min(max(celsius, low), high)))

    @_gcode("M106")
    def _gcode_fan(self, args: dict[str, str]) -> None:
        fan = _gcode_number(args, "P")
        speed = _gcode_number(args, "S")
        index = 1 if fan is None else int(fan)
        if speed is None or index not in _FAN_OUTPUTS:
            return
        if index != 1 and not report.has_aux_fans(self.profile):
            return  # the A1 family has no aux or chamber fan
        self._set_fan(index, round(min(max(speed, 0.0), 255.0)))

    @_gcode("M107")
    def _gcode_fan_off(self, args: dict[str, str]) -> None:
        self._set_fan(1, 0)

    @_gcode("G28")
    def _gcode_home(self, args: dict[str, str]) -> None:
        axes = {"X": report.HOME_X, "Y": report.HOME_Y, "Z": report.HOME_Z}
        mask = 0
        for letter, bit in axes.items():
            if letter in args:
                mask |= bit
        self._set("home_flag", self._print["home_flag"] | (mask or report.HOME_XYZ))

    @_command("print", "ams_filament_setting")
    def _on_ams_filament_setting(self, request: _Request) -> None:
        body = request.body
        ams_id = body.get("ams_id")
        slot = body.get("slot_id", body.get("tray_id"))
        color = body.get("tray_color")
        tray_type = body.get("tray_type")
        try:
            tray = self._tray(
                ams_id if isinstance(ams_id, int) else -1, slot if isinstance(slot, int) else -1
            )
            normalized = report.normalize_color(color) if isinstance(color, str) else None
        except ValueError as exc:
            self._reply(request, error=str(exc))
            return
        if not report.tray_is_loaded(tray):
            self._reply(request, error="the tray is empty")
            return
        if normalized is not None:
            tray["tray_color"] = normalized
            if "cols" in tray:
                tray["cols"] = [normalized]
        if isinstance(tray_type, str) and tray_type:
            tray["tray_type"] = tray_type.upper()
        preset = body.get("tray_info_idx")
        if isinstance(preset, str) and preset:
            tray["tray_info_idx"] = preset
        for key in ("nozzle_temp_min", "nozzle_temp_max"):
            value = body.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                tray[key] = str(round(value))
        self._touch("vt_tray" if tray is self._print["vt_tray"] else "ams")
        self._reply(request)

    def _tray(self, ams_id: int, slot: int) -> JsonObject:
        """The tray object of AMS ``ams_id`` slot ``slot``, or ``vt_tray`` for 254/255."""
        if ams_id in report.EXTERNAL_AMS_IDS:
            vt_tray: JsonObject = self._print["vt_tray"]
            return vt_tray
        for unit in self._print["ams"]["ams"]:
            if unit["id"] == str(ams_id):
                if 0 <= slot < len(unit["tray"]):
                    tray: JsonObject = unit["tray"][slot]
                    return tray
                raise ValueError(f"AMS {ams_id} has no slot {slot}")
        raise ValueError(f"no AMS {ams_id} attached")

    # --- scenario verbs -------------------------------------------------------------------

    def start_print(
        self,
        *,
        layers: int = 10,
        name: str | None = None,
        file: str = "benchy.gcode.3mf",
        layer_seconds: float = 6.0,
        prepare_seconds: float = 2.0,
        stage_seconds: float = 3.0,
        bed_leveling: bool = True,
        flow_cali: bool = True,
        vibration_cali: bool = False,
        tray: int | None = None,
    ) -> None:
        """Start a job as the printer's screen would (no MQTT); times are simulated seconds.

        ``tray`` is an absolute AMS tray id (``ams*4 + slot``); None prints from the
        external spool. The file is put on the SD card if it is not there.
        """
        if self.gcode_state in BUSY_STATES:
            raise RuntimeError(f"printer {self.serial} is busy ({self.gcode_state})")
        if layers < 1 or layer_seconds <= 0 or prepare_seconds < 0 or stage_seconds < 0:
            raise ValueError("layers and layer_seconds must be positive, other times >= 0")
        file_name = PurePosixPath(file).name
        self._sd_files.setdefault(file_name, SdFile(layers, layer_seconds))
        tray_id = report.EXTERNAL_SPOOL if tray is None else str(tray)
        material = report.filament_type(self._tray_type(tray_id))
        job = _Job(
            file=file_name,
            name=name if name is not None else _file_stem(file_name),
            layers=layers,
            layer_seconds=layer_seconds,
            prepare_seconds=prepare_seconds,
            stage_seconds=stage_seconds,
            stages=_plan_stages(
                bed_leveling=bed_leveling, vibration_cali=vibration_cali, flow_cali=flow_cali
            ),
            nozzle_target=material.print_nozzle,
            bed_target=material.print_bed,
        )
        self._start_job(job, tray=tray_id)
        self._flush()

    def finish_now(self) -> None:
        """Complete the current job at once (FINISH)."""
        if self._job is None:
            raise RuntimeError(f"printer {self.serial} has no print job")
        self._finish_job()
        self._flush()

    def fail(self, print_error: int = report.PRINT_ERROR_CANCELLED) -> None:
        """End the current job as FAILED with ``print_error`` (it stays until the next job)."""
        if self._job is None:
            raise RuntimeError(f"printer {self.serial} has no print job")
        self._end_job("FAILED", print_error=print_error)
        self._flush()

    def run_out_of_filament(self) -> None:
        """The extruder's filament sensor goes empty; a running job pauses (stage 6)."""
        self._set("hw_switch_state", 0)
        if self._job is not None and self.gcode_state in _JOB_ADVANCING_STATES:
            self._pause_job(STAGE_FILAMENT_RUNOUT)
            self._set("print_error", report.PRINT_ERROR_FILAMENT_RUNOUT)
        self._flush()

    def raise_hms(self, code: str | tuple[int, int]) -> None:
        """Add an HMS alert: ``"0300_0100_0001_0007"``, ``"HMS_…"`` or ``(attr, code)``."""
        self._add_hms(*report.parse_hms_code(code))
        self._flush()

    def clear_hms(self, code: str | tuple[int, int] | None = None) -> None:
        """Remove one HMS alert, or all of them."""
        if code is None:
            self._set("hms", [])
        else:
            attr, value = report.parse_hms_code(code)
            kept = [e for e in self._print["hms"] if (e["attr"], e["code"]) != (attr, value)]
            self._set("hms", kept)
        self._flush()

    def _add_hms(self, attr: int, code: int) -> None:
        entries: list[JsonObject] = self._print["hms"]
        if any((e["attr"], e["code"]) == (attr, code) for e in entries):
            return
        self._set("hms", [*entries, report.hms_entry(attr, code, int(time.time()))])

    def set_tray(
        self,
        ams: int,
        slot: int,
        *,
        tray_type: str | None = None,
        color: str | None = None,
        remain: int | None = None,
    ) -> None:
        """Load or change a tray. ``ams`` 254/255 is the external spool (``vt_tray``).

        ``color`` is ``RRGGBB`` or ``RRGGBBAA``; ``remain`` a percentage (-1: unknown).
        """
        if remain is not None and not -1 <= remain <= 100:
            raise ValueError(f"remain must be -1..100, not {remain}")
        tray = self._tray(ams, slot)
        if not report.tray_is_loaded(tray) or not tray["tray_type"]:
            spool = report.Spool(
                tray_type=tray_type or "PLA",
                color=color or "FFFFFFFF",
                remain=100 if remain is None else remain,
            )
            self._replace_tray(ams, slot, spool)
        else:
            if tray_type is not None:
                material = report.filament_type(tray_type)
                tray["tray_type"] = tray_type.upper()
                tray["tray_info_idx"] = material.preset_id
                tray["nozzle_temp_min"] = str(material.nozzle_min)
                tray["nozzle_temp_max"] = str(material.nozzle_max)
            if color is not None:
                tray["tray_color"] = report.normalize_color(color)
                if "cols" in tray:
                    tray["cols"] = [tray["tray_color"]]
            if remain is not None:
                tray["remain"] = remain
            self._touch("vt_tray" if ams in report.EXTERNAL_AMS_IDS else "ams")
        self._flush()

    def empty_tray(self, ams: int, slot: int) -> None:
        """Take the spool out of a tray (the external spool: no filament type any more)."""
        if ams in report.EXTERNAL_AMS_IDS:
            empty = report.build_external_tray(
                self.serial, report.Spool(tray_type="", color="00000000", remain=0)
            )
            empty["tray_info_idx"] = ""
            self._set("vt_tray", empty)
        else:
            self._tray(ams, slot)  # validates
            self._replace_tray(ams, slot, None)
        self._flush()

    def _replace_tray(self, ams: int, slot: int, spool: report.Spool | None) -> None:
        if ams in report.EXTERNAL_AMS_IDS:
            assert spool is not None
            self._set("vt_tray", report.build_external_tray(self.serial, spool))
            return
        block = self._print["ams"]
        for unit in block["ams"]:
            if unit["id"] == str(ams):
                unit["tray"][slot] = report.build_tray(self.serial, ams * 4 + slot, spool)
                unit["tray"][slot]["id"] = str(slot)
        report.refresh_ams_bits(block)
        self._touch("ams")

    def set_ams_attached(self, attached: bool) -> None:
        """Plug or unplug the AMS (Lite). The module list changes, so ``online.version`` too."""
        block = self._print["ams"]
        if attached == bool(block["ams"]):
            return
        if attached:
            block["ams"], self._detached_ams_units = self._detached_ams_units, []
        else:
            self._detached_ams_units, block["ams"] = block["ams"], []
            self._set_tray_now(report.NO_TRAY)
        report.refresh_ams_bits(block)
        self._touch("ams")
        self._modules = report.build_version_modules(self.profile, self.serial, with_ams=attached)
        self._print["online"]["version"] += 1
        self._touch("online")
        self._flush()

    def set_dev_mode(self, enabled: bool) -> None:
        """Developer Mode on (unsigned control works) or off (``print.*`` refused)."""
        self._dev_mode = enabled

    def add_sd_file(
        self, name: str, *, layers: int | None = None, layer_seconds: float | None = None
    ) -> None:
        """Put a print file on the simulated SD card (by base name)."""
        file_name = PurePosixPath(name).name
        if not file_name:
            raise ValueError(f"not a file name: {name!r}")
        default_layers = 20 + int.from_bytes(file_name.encode()[:4].ljust(4, b"\0"), "big") % 30
        self._sd_files[file_name] = SdFile(
            layers=layers if layers is not None else default_layers,
            layer_seconds=layer_seconds if layer_seconds is not None else 12.0,
        )

    def remove_sd_file(self, name: str) -> None:
        self._sd_files.pop(PurePosixPath(name).name, None)

    def set_ip_address(self, address: str) -> None:
        """The IPv4 address ``net.info`` reports (the owner knows where it listens)."""
        info = self._print["net"]["info"][0]
        ip = report.ipv4_little_endian(address)
        if info["ip"] != ip:
            info["ip"] = ip
            self._touch("net")
            self._flush()


def _plan_stages(*, bed_leveling: bool, vibration_cali: bool, flow_cali: bool) -> list[int]:
    """The ``stg`` list of a job: preheat, wipe, home, then the calibrations asked for."""
    stages = [STAGE_HEATBED_PREHEATING, STAGE_CLEANING_NOZZLE, STAGE_HOMING]
    if bed_leveling:
        stages.append(STAGE_BED_LEVELING)
    if vibration_cali:
        stages.append(STAGE_VIBRATION_COMPENSATION)
    if flow_cali:
        stages.append(STAGE_EXTRUSION_CALIBRATION)
    return stages
