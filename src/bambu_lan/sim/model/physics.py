"""What changes by itself as simulated time passes: temperatures, fans, Wi-Fi, job progress.

``Physics.step(seconds)`` moves the printer on by that many simulated seconds: heaters heat
at a fixed rate and cool exponentially, the chamber follows the bed, a job walks PREPARE →
stages → layers → FINISH at the current speed, and a stop's ``print_error`` clears after a
while. Readings carry sensor noise in the A1's 1/32 °C steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from bambu_lan.sim import report
from bambu_lan.sim.model.state import (
    JOB_ADVANCING_STATES,
    STAGE_HEATBED_PREHEATING,
    STAGE_HOMING,
    STAGE_PRINTING,
    Job,
    JobPhase,
    ModelState,
)

_HOTEND_FAN_ON_ABOVE: Final = 50.0  # °C; the heatbreak fan runs while the nozzle is hot
_GCODE_LINES_PER_SECOND: Final = 23
_HEATED_TOLERANCE: Final = 2.0  # °C; a heater this close to its target counts as "at target"
_CHAMBER_TAU: Final = 600.0  # seconds for the chamber to follow the bed
_CHAMBER_NOISE: Final = 0.05


@dataclass(slots=True)
class Heater:
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


class Physics:
    """The continuous side of one printer; it writes its readings into ``state``."""

    def __init__(self, state: ModelState) -> None:
        self._state = state
        rng = state.rng
        # A warm-ish printer in a room somewhere between 20 and 27 °C.
        self.ambient = round(rng.uniform(20.0, 27.0), 2)
        self.nozzle = Heater(
            "nozzle_temper", "nozzle_target_temper", self.ambient + 3.0, 5.0, 90.0, 0.08
        )
        self.bed = Heater("bed_temper", "bed_target_temper", self.ambient + 1.5, 1.2, 600.0, 0.06)
        self._heaters = (self.nozzle, self.bed)
        self.chamber = self.ambient + 0.5
        self._wifi_center = rng.randint(-62, -40)
        self._wifi_dbm = self._wifi_center
        printed = state.report
        printed["wifi_signal"] = report.format_wifi_signal(self._wifi_dbm)
        for heater in self._heaters:
            printed[heater.reading_key] = self._reading(heater.temperature, heater.noise)
        if state.profile.has_chamber_sensor:
            printed["chamber_temper"] = self._reading(self.chamber, _CHAMBER_NOISE)

    def step(self, seconds: float) -> None:
        """Move everything on by ``seconds`` simulated seconds."""
        state = self._state
        if state.clear_print_error_at is not None and state.sim_time >= state.clear_print_error_at:
            state.clear_print_error_at = None
            state.set("print_error", 0)
        for heater in self._heaters:
            heater.step(seconds, state.report[heater.target_key], self.ambient)
            state.set(heater.reading_key, self._reading(heater.temperature, heater.noise))
        if state.profile.has_chamber_sensor:
            goal = self.ambient + 0.25 * max(0.0, self.bed.temperature - self.ambient)
            self.chamber = goal + (self.chamber - goal) * math.exp(-seconds / _CHAMBER_TAU)
            state.set("chamber_temper", self._reading(self.chamber, _CHAMBER_NOISE))
        hot = self.nozzle.temperature > _HOTEND_FAN_ON_ABOVE
        state.set("heatbreak_fan_speed", "15" if hot else "0")
        job = state.job
        if job is not None and state.gcode_state in JOB_ADVANCING_STATES:
            self._advance_job(job, seconds)
        self.jitter_wifi()

    def jitter_wifi(self, *, force: bool = False) -> None:
        """The RSSI wanders by a few dBm around its centre (forced: always a change)."""
        rng = self._state.rng
        if not force and rng.random() > 0.4:
            return
        step = rng.choice((-2, -1, 1, 2))
        dbm = self._wifi_dbm + step
        if abs(dbm - self._wifi_center) > 4:
            dbm = self._wifi_dbm - step
        self._wifi_dbm = dbm
        self._state.set("wifi_signal", report.format_wifi_signal(dbm))

    def _reading(self, temperature: float, noise: float) -> float:
        """A sensor reading: the A1 reports temperatures in 1/32 °C steps."""
        noisy = temperature + (self._state.rng.random() * 2.0 - 1.0) * noise
        return round(noisy * 32.0) / 32.0

    # --- job progress ---------------------------------------------------------------------

    def _advance_job(self, job: Job, seconds: float) -> None:
        """Move the job on. A phase or stage change ends the tick's progress, so that every
        phase shows in at least one push however coarse the time scale is."""
        state = self._state
        job.phase_elapsed += seconds
        if job.phase is JobPhase.PREPARE:
            done = job.phase_elapsed >= job.prepare_seconds
            percent = 100 if done else int(100 * job.phase_elapsed / job.prepare_seconds)
            state.set("gcode_file_prepare_percent", str(percent))
            if done:
                self._enter_stage(job, 0)
        elif job.phase is JobPhase.STAGES:
            if job.phase_elapsed >= job.stage_seconds and self._stage_done(job):
                if job.stage_index + 1 < len(job.stages):
                    self._enter_stage(job, job.stage_index + 1)
                else:
                    self._enter_printing(job)
        else:
            speed = state.report["spd_mag"] / 100.0
            job.printed += seconds * speed
            if job.printed >= job.total_work:
                state.finish_job()
                return
            self._show_print_progress(job)
        state.update_remaining_time()

    def _stage_done(self, job: Job) -> bool:
        """Heating waits for the heaters; every other stage is done when its time is up."""
        if job.current_stage != STAGE_HEATBED_PREHEATING:
            return True
        printed = self._state.report
        return all(
            printed[h.target_key] == 0
            or abs(h.temperature - printed[h.target_key]) < _HEATED_TOLERANCE
            for h in self._heaters
        )

    def _enter_stage(self, job: Job, index: int) -> None:
        state = self._state
        job.phase = JobPhase.STAGES
        job.stage_index = index
        job.phase_elapsed = 0.0
        stage = job.stages[index]
        if index == 0:
            state.set_gcode_state("RUNNING")
            state.set("gcode_file_prepare_percent", "100")
            state.set("stg", list(job.stages))
        if stage == STAGE_HEATBED_PREHEATING:
            state.set("bed_target_temper", job.bed_target)
            state.set("nozzle_target_temper", job.nozzle_target)
        elif stage == STAGE_HOMING:
            state.set("home_flag", state.report["home_flag"] | report.HOME_XYZ)
        state.set("stg_cur", stage)

    def _enter_printing(self, job: Job) -> None:
        state = self._state
        job.phase = JobPhase.PRINTING
        job.phase_elapsed = 0.0
        state.set("stg_cur", STAGE_PRINTING)
        state.set("mc_print_sub_stage", 1)
        state.set("nozzle_target_temper", job.nozzle_target)
        state.set("bed_target_temper", job.bed_target)
        self._show_print_progress(job)

    def _show_print_progress(self, job: Job) -> None:
        state = self._state
        layer = min(job.layers, 1 + int(job.printed / job.layer_seconds))
        if layer >= 2 and state.report["layer_num"] < 2:
            state.set_fan(1, 255)  # the part fan comes on after the first layer
        state.set("layer_num", layer)
        state.set("mc_percent", min(99, int(100 * job.printed / job.total_work)))
        state.set("mc_print_line_number", str(int(job.printed * _GCODE_LINES_PER_SECOND)))
