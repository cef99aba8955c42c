"""The simulated printer's state: the ``print`` object, what changed since the last push, and
the transitions that keep it consistent (a job starting, pausing, ending).

``ModelState`` is plain data plus the mutations every other part shares: the command handlers,
the physics and the scenario verbs all change the printer through these methods, so that a
key changed anywhere lands in the next delta. Nothing here publishes, sleeps or reads a clock
other than ``time.time()`` for the report's own wall-clock fields.
"""

from __future__ import annotations

import enum
import math
import random
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from bambu_lan.sim import report
from bambu_lan.sim.ftps_card import PrintFileReader
from bambu_lan.sim.profiles import ModelProfile
from bambu_lan.sim.report import JsonObject

# gcode_state values the slicer treats as "busy" (§4.2).
BUSY_STATES: Final = frozenset({"PREPARE", "RUNNING", "PAUSE", "SLICING"})
JOB_ADVANCING_STATES: Final = frozenset({"PREPARE", "RUNNING"})

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

# M106 P<n>: report key of the 0-15 speed and the byte of fan_gear it owns (§4.2, §5.4).
FAN_OUTPUTS: Final[dict[int, tuple[str, int]]] = {
    1: ("cooling_fan_speed", 0),
    2: ("big_fan1_speed", 8),
    3: ("big_fan2_speed", 16),
}
_REQUEST_LOG_SIZE: Final = 256
_STATE_HISTORY_SIZE: Final = 64
_JOB_ID_KEYS: Final = ("project_id", "profile_id", "task_id", "subtask_id")


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


class JobPhase(enum.Enum):
    PREPARE = "prepare"  # gcode_state PREPARE: the file is being read
    STAGES = "stages"  # RUNNING, stg_cur walking the stg list
    PRINTING = "printing"  # RUNNING, stg_cur 0, layers advancing


@dataclass(slots=True)
class Job:
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
    timelapse: bool = False  # a finished job leaves a video on the card
    phase: JobPhase = JobPhase.PREPARE
    phase_elapsed: float = 0.0
    stage_index: int = 0
    printed: float = 0.0

    @property
    def total_work(self) -> float:
        return self.layers * self.layer_seconds

    @property
    def current_stage(self) -> int:
        if self.phase is JobPhase.STAGES:
            return self.stages[self.stage_index]
        return STAGE_PRINTING

    def seconds_left_at_full_speed(self) -> float:
        """Preparation still to do (speed-independent) and the print itself (at 100 %)."""
        fixed = 0.0
        if self.phase is JobPhase.PREPARE:
            fixed = max(0.0, self.prepare_seconds - self.phase_elapsed)
            fixed += len(self.stages) * self.stage_seconds
        elif self.phase is JobPhase.STAGES:
            stages_left = len(self.stages) - self.stage_index
            fixed = max(0.0, stages_left * self.stage_seconds - self.phase_elapsed)
        return fixed


def plan_stages(*, bed_leveling: bool, vibration_cali: bool, flow_cali: bool) -> list[int]:
    """The ``stg`` list of a job: preheat, wipe, home, then the calibrations asked for."""
    stages = [STAGE_HEATBED_PREHEATING, STAGE_CLEANING_NOZZLE, STAGE_HOMING]
    if bed_leveling:
        stages.append(STAGE_BED_LEVELING)
    if vibration_cali:
        stages.append(STAGE_VIBRATION_COMPENSATION)
    if flow_cali:
        stages.append(STAGE_EXTRUSION_CALIBRATION)
    return stages


def file_stem(file_name: str) -> str:
    """The job name a file gets by default: ``benchy.gcode.3mf`` -> ``benchy``."""
    for suffix in (".gcode.3mf", ".3mf", ".gcode"):
        if file_name.lower().endswith(suffix):
            return file_name[: -len(suffix)]
    return file_name


class ModelState:
    """Everything one simulated printer remembers, and the changes to it.

    ``report`` is the live ``print`` object; ``set``/``touch`` record which top-level keys a
    change touched so that the next delta carries exactly those (``take_changes``).
    """

    def __init__(self, profile: ModelProfile, serial: str, *, dev_mode: bool, seed: int | None):
        self.profile = profile
        self.serial = serial
        self.rng = random.Random(seed)  # one stream: a seed reproduces the whole printer
        self.dev_mode = dev_mode
        self.pushing = True  # False after pushing.stop until pushing.start
        self.report: JsonObject = report.build_print_object(profile, serial)
        self.version_modules: list[JsonObject] = report.build_version_modules(profile, serial)
        self.sd_files: dict[str, SdFile] = {
            "benchy.gcode.3mf": SdFile(layers=48, layer_seconds=12.0),
            "calibration_cube.gcode.3mf": SdFile(layers=20, layer_seconds=10.0),
        }
        self.job: Job | None = None
        self.card_files: PrintFileReader | None = None  # the storage card, when FTPS runs
        self.sim_time = 0.0  # simulated seconds since the model was made
        self.clear_print_error_at: float | None = None  # sim_time when a stop's error goes
        self.detached_ams_units: list[JsonObject] = []  # the AMS while unplugged
        # Commands whose replies carry no sequence_id (an A1 answered print_speed so, §3.6).
        self.unsequenced_replies: frozenset[str] = frozenset()
        #: The next job started by a request pauses at once: (print_error, HMS (attr, code)).
        self.pause_at_start: tuple[int, tuple[int, int] | None] | None = None
        self.stats = ModelStats()
        self.request_log: deque[LoggedRequest] = deque(maxlen=_REQUEST_LOG_SIZE)
        self.state_history: deque[str] = deque(["IDLE"], maxlen=_STATE_HISTORY_SIZE)
        self._key_rank = {key: rank for rank, key in enumerate(self.report)}
        self._changed: dict[str, None] = {}  # changed top-level keys, in insertion order

    @property
    def gcode_state(self) -> str:
        state: str = self.report["gcode_state"]
        return state

    # --- recording changes ----------------------------------------------------------------

    def set(self, key: str, value: Any) -> None:
        """Change one top-level key; only real changes go into the next delta."""
        if self.report[key] != value:
            self.report[key] = value
            self._changed[key] = None

    def touch(self, key: str) -> None:
        """Mark a nested object changed in place (it is sent whole)."""
        self._changed[key] = None

    @property
    def has_changes(self) -> bool:
        return bool(self._changed)

    def take_changes(self) -> list[str]:
        """The changed top-level keys in the report's own key order; forgets them."""
        keys = sorted(self._changed, key=self._key_rank.__getitem__)
        self._changed = {}
        return keys

    def forget_changes(self) -> None:
        """A full report went out: nothing is pending any more."""
        self._changed = {}

    def set_gcode_state(self, gcode_state: str) -> None:
        if self.report["gcode_state"] != gcode_state:
            self.set("gcode_state", gcode_state)
            self.state_history.append(gcode_state)

    def set_fan(self, fan: int, value: int) -> None:
        """Fan ``fan`` (M106 P<fan>) to ``value`` 0-255: the 0-15 string and ``fan_gear``."""
        key, shift = FAN_OUTPUTS[fan]
        self.set(key, str(round(value * 15 / 255)))
        gear = (self.report["fan_gear"] & ~(0xFF << shift)) | (value << shift)
        self.set("fan_gear", gear)

    def published_report(self) -> JsonObject:
        """The full ``print`` object as this model sends it: P2S and H2 add the ``device`` block
        and ``vir_slot`` made from the same readings (and the P2S leaves out what it does not
        report at the top level)."""
        body = dict(self.report)
        profile = self.profile
        if profile.device_report:
            chamber = float(body["chamber_temper"])
            body["device"] = report.build_device(
                profile, body, chamber=chamber, idle_nozzle=chamber
            )
            body["vir_slot"] = report.build_vir_slot(profile, self.serial, body["vt_tray"])
            if not profile.top_level_vt_tray:
                del body["vt_tray"]
            if not profile.top_level_chamber:
                del body["chamber_temper"]
        return body

    # --- trays and alerts -----------------------------------------------------------------

    def set_tray_now(self, tray: str) -> None:
        ams = self.report["ams"]
        if ams["tray_now"] != tray:
            ams["tray_pre"] = ams["tray_now"]
            ams["tray_now"] = tray
            ams["tray_tar"] = tray
            self.touch("ams")

    def tray(self, ams_id: int, slot: int) -> JsonObject:
        """The tray object of AMS ``ams_id`` slot ``slot``, or ``vt_tray`` for 254/255."""
        if ams_id in report.EXTERNAL_AMS_IDS:
            vt_tray: JsonObject = self.report["vt_tray"]
            return vt_tray
        for unit in self.report["ams"]["ams"]:
            if unit["id"] == str(ams_id):
                if 0 <= slot < len(unit["tray"]):
                    tray: JsonObject = unit["tray"][slot]
                    return tray
                raise ValueError(f"AMS {ams_id} has no slot {slot}")
        raise ValueError(f"no AMS {ams_id} attached")

    def tray_type(self, tray: str) -> str:
        """The filament type in ``tray`` (an absolute tray id or the external spool)."""
        if tray == report.EXTERNAL_SPOOL:
            found: object = self.report["vt_tray"].get("tray_type")
        else:
            found = None
            unit_id, slot = divmod(int(tray), 4)
            if int(tray) >= report.AMS_HT_FIRST_ID:
                unit_id, slot = int(tray), 0  # an AMS HT: the tray id is the unit id
            for unit in self.report["ams"]["ams"]:
                if unit["id"] == str(unit_id) and slot < len(unit["tray"]):
                    found = unit["tray"][slot].get("tray_type")
        return found if isinstance(found, str) and found else "PLA"

    def replace_tray(self, ams: int, slot: int, spool: report.Spool | None) -> None:
        """Put ``spool`` (None: nothing) into a tray, rebuilding the tray object."""
        if ams in report.EXTERNAL_AMS_IDS:
            if spool is None:
                raise ValueError("the external spool holder needs a spool")
            self.set("vt_tray", report.build_external_tray(self.serial, spool))
            return
        block = self.report["ams"]
        for unit in block["ams"]:
            if unit["id"] == str(ams):
                unit["tray"][slot] = report.build_tray(self.serial, ams * 4 + slot, spool)
                unit["tray"][slot]["id"] = str(slot)
        report.refresh_ams_bits(block)
        self.touch("ams")

    def add_hms(self, attr: int, code: int) -> None:
        entries: list[JsonObject] = self.report["hms"]
        if any((e["attr"], e["code"]) == (attr, code) for e in entries):
            return
        self.set("hms", [*entries, report.hms_entry(attr, code, int(time.time()))])

    # --- the job lifecycle ----------------------------------------------------------------

    def start_job(self, job: Job, *, tray: str, ids: Mapping[str, str] | None = None) -> None:
        """PREPARE a new job: the report shows its file, name and layer count at once."""
        self.job = job
        self.clear_print_error_at = None
        self.set_gcode_state("PREPARE")
        for key in _JOB_ID_KEYS:
            self.set(key, (ids or {}).get(key, "0"))
        self.set("print_type", "local")
        self.set("gcode_file", job.file)
        self.set("subtask_name", job.name)
        self.set("gcode_file_prepare_percent", "0")
        self.set("mc_print_stage", "2")
        self.set("mc_print_sub_stage", 0)
        self.set("mc_percent", 0)
        self.set("mc_print_line_number", "0")
        self.set("layer_num", 0)
        self.set("total_layer_num", job.layers)
        self.set("stg", [])
        self.set("stg_cur", report.idle_stage(self.profile))
        self.set("s_obj", [])
        self.set("print_error", 0)
        self.set("hw_switch_state", 1)
        if "gcode_start_time" in self.report:
            self.set("gcode_start_time", str(int(time.time())))
        self.set_tray_now(tray)
        self.update_remaining_time()

    def update_remaining_time(self) -> None:
        job = self.job
        if job is None:
            return
        speed = self.report["spd_mag"] / 100.0
        seconds = job.seconds_left_at_full_speed() + (job.total_work - job.printed) / speed
        self.set("mc_remaining_time", math.ceil(max(0.0, seconds) / 60.0))

    def finish_job(self) -> None:
        job = self.job
        if job is not None:
            self.set("layer_num", job.layers)
        self.set("mc_percent", 100)
        self.set("mc_remaining_time", 0)
        self.end_job("FINISH")

    def end_job(self, final_state: str, *, print_error: int = 0) -> None:
        """FINISH or FAILED: heaters and fans off, back to an idle print type."""
        job, self.job = self.job, None
        if final_state == "FINISH" and job is not None and self.card_files is not None:
            self.card_files.record_finished(job.name, timelapse=job.timelapse)
        self.set_gcode_state(final_state)
        self.set("print_error", print_error)
        self.set("print_type", "idle")
        self.set("mc_print_stage", "1")
        self.set("mc_print_sub_stage", 0)
        self.set("stg_cur", report.idle_stage(self.profile))
        self.set("nozzle_target_temper", 0)
        self.set("bed_target_temper", 0)
        for fan in FAN_OUTPUTS:
            self.set_fan(fan, 0)

    def pause_job(self, stage: int) -> None:
        self.set_gcode_state("PAUSE")
        self.set("stg_cur", stage)
        self.set("mc_print_stage", "3")

    def resume_job(self, job: Job) -> None:
        self.set_gcode_state("PREPARE" if job.phase is JobPhase.PREPARE else "RUNNING")
        self.set(
            "stg_cur",
            job.current_stage
            if job.phase is not JobPhase.PREPARE
            else report.idle_stage(self.profile),
        )
        self.set("mc_print_stage", "2")
        self.set("print_error", 0)
        self.set("hw_switch_state", 1)
