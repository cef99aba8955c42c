"""Scenario verbs: what a person or the hardware does to the printer, without MQTT.

``start_print``, ``run_out_of_filament``, ``raise_hms``, ``set_tray`` … change the state as the
printer's own screen or sensors would; each change is published at once as a delta, like a
command's effect. Tests, the demo and ``bambu-lan sim --print`` use them; ``PrinterModel``
inherits them, so they are called as ``sim.model.start_print(...)``.

To add a verb: a public method here that changes the printer through ``ModelState`` and ends
with ``self._changed()`` (publishes the delta and wakes whoever awaits the state).
"""

from __future__ import annotations

from pathlib import PurePosixPath

from bambu_lan.sim import report
from bambu_lan.sim.model.state import (
    BUSY_STATES,
    JOB_ADVANCING_STATES,
    STAGE_FILAMENT_RUNOUT,
    Job,
    ModelState,
    SdFile,
    file_stem,
    plan_stages,
)


class ScenarioVerbs:
    """Test and demo verbs over one printer's ``ModelState``.

    A subclass provides ``_changed()``: publish what the verb changed and wake waiters.
    """

    def __init__(self, state: ModelState) -> None:
        self._state = state

    def _changed(self) -> None:
        raise NotImplementedError

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
        state = self._state
        if state.gcode_state in BUSY_STATES:
            raise RuntimeError(f"printer {state.serial} is busy ({state.gcode_state})")
        if layers < 1 or layer_seconds <= 0 or prepare_seconds < 0 or stage_seconds < 0:
            raise ValueError("layers and layer_seconds must be positive, other times >= 0")
        file_name = PurePosixPath(file).name
        state.sd_files.setdefault(file_name, SdFile(layers, layer_seconds))
        tray_id = report.EXTERNAL_SPOOL if tray is None else str(tray)
        material = report.filament_type(state.tray_type(tray_id))
        job = Job(
            file=file_name,
            name=name if name is not None else file_stem(file_name),
            layers=layers,
            layer_seconds=layer_seconds,
            prepare_seconds=prepare_seconds,
            stage_seconds=stage_seconds,
            stages=plan_stages(
                bed_leveling=bed_leveling, vibration_cali=vibration_cali, flow_cali=flow_cali
            ),
            nozzle_target=material.print_nozzle,
            bed_target=material.print_bed,
        )
        state.start_job(job, tray=tray_id)
        self._changed()

    def finish_now(self) -> None:
        """Complete the current job at once (FINISH)."""
        state = self._state
        if state.job is None:
            raise RuntimeError(f"printer {state.serial} has no print job")
        state.finish_job()
        self._changed()

    def fail(self, print_error: int = report.PRINT_ERROR_CANCELLED) -> None:
        """End the current job as FAILED with ``print_error`` (it stays until the next job)."""
        state = self._state
        if state.job is None:
            raise RuntimeError(f"printer {state.serial} has no print job")
        state.end_job("FAILED", print_error=print_error)
        self._changed()

    def run_out_of_filament(self) -> None:
        """The extruder's filament sensor goes empty; a running job pauses (stage 6)."""
        state = self._state
        state.set("hw_switch_state", 0)
        if state.job is not None and state.gcode_state in JOB_ADVANCING_STATES:
            state.pause_job(STAGE_FILAMENT_RUNOUT)
            state.set("print_error", report.PRINT_ERROR_FILAMENT_RUNOUT)
        self._changed()

    def pause_next_start(
        self,
        print_error: int = report.PRINT_ERROR_FEED_FAILED,
        hms: str | tuple[int, int] | None = None,
    ) -> None:
        """The next job started by a request goes straight to PAUSE with ``print_error`` (and
        the HMS alert ``hms``), as when its AMS mapping names a tray that does not feed; the
        start's reply is still a success (protocol.md §5.3: "a wrong mapping makes the
        printer pause rather than start")."""
        attr_code = None if hms is None else report.parse_hms_code(hms)
        self._state.pause_at_start = (print_error, attr_code)

    def raise_hms(self, code: str | tuple[int, int]) -> None:
        """Add an HMS alert: ``"0300_0100_0001_0007"``, ``"HMS_…"`` or ``(attr, code)``."""
        self._state.add_hms(*report.parse_hms_code(code))
        self._changed()

    def clear_hms(self, code: str | tuple[int, int] | None = None) -> None:
        """Remove one HMS alert, or all of them."""
        state = self._state
        if code is None:
            state.set("hms", [])
        else:
            attr, value = report.parse_hms_code(code)
            kept = [e for e in state.report["hms"] if (e["attr"], e["code"]) != (attr, value)]
            state.set("hms", kept)
        self._changed()

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
        state = self._state
        tray = state.tray(ams, slot)
        if not report.tray_is_loaded(tray) or not tray["tray_type"]:
            spool = report.Spool(
                tray_type=tray_type or "PLA",
                color=color or "FFFFFFFF",
                remain=100 if remain is None else remain,
            )
            state.replace_tray(ams, slot, spool)
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
            state.touch("vt_tray" if ams in report.EXTERNAL_AMS_IDS else "ams")
        self._changed()

    def empty_tray(self, ams: int, slot: int) -> None:
        """Take the spool out of a tray (the external spool: no filament type any more)."""
        state = self._state
        if ams in report.EXTERNAL_AMS_IDS:
            empty = report.build_external_tray(
                state.serial, report.Spool(tray_type="", color="00000000", remain=0)
            )
            empty["tray_info_idx"] = ""
            state.set("vt_tray", empty)
        else:
            state.tray(ams, slot)  # validates
            state.replace_tray(ams, slot, None)
        self._changed()

    def set_ams_attached(self, attached: bool) -> None:
        """Plug or unplug the AMS (Lite). The module list changes, so ``online.version`` too."""
        state = self._state
        block = state.report["ams"]
        if attached == bool(block["ams"]):
            return
        if attached:
            block["ams"], state.detached_ams_units = state.detached_ams_units, []
        else:
            state.detached_ams_units, block["ams"] = block["ams"], []
            state.set_tray_now(report.NO_TRAY)
        report.refresh_ams_bits(block)
        state.touch("ams")
        state.version_modules = report.build_version_modules(
            state.profile, state.serial, with_ams=attached
        )
        state.report["online"]["version"] += 1
        state.touch("online")
        self._changed()

    def reply_without_sequence_id(self, *commands: str) -> None:
        """Replies to these commands (``"print_speed"``) leave out the request's sequence_id,
        as an A1 was seen to do (protocol.md §3.6); no arguments: echo it again."""
        self._state.unsequenced_replies = frozenset(commands)

    def set_dev_mode(self, enabled: bool) -> None:
        """Developer Mode on (unsigned control works) or off (``print.*`` refused)."""
        self._state.dev_mode = enabled

    def add_sd_file(
        self, name: str, *, layers: int | None = None, layer_seconds: float | None = None
    ) -> None:
        """Put a print file on the simulated SD card (by base name)."""
        file_name = PurePosixPath(name).name
        if not file_name:
            raise ValueError(f"not a file name: {name!r}")
        default_layers = 20 + int.from_bytes(file_name.encode()[:4].ljust(4, b"\0"), "big") % 30
        self._state.sd_files[file_name] = SdFile(
            layers=layers if layers is not None else default_layers,
            layer_seconds=layer_seconds if layer_seconds is not None else 12.0,
        )

    def remove_sd_file(self, name: str) -> None:
        self._state.sd_files.pop(PurePosixPath(name).name, None)

    def set_ip_address(self, address: str) -> None:
        """The IPv4 address ``net.info`` reports (the owner knows where it listens)."""
        state = self._state
        info = state.report["net"]["info"][0]
        ip = report.ipv4_little_endian(address)
        if info["ip"] != ip:
            info["ip"] = ip
            state.touch("net")
            self._changed()

    def set_live_view(self, url: str | None) -> None:
        """The LAN live view switched on (``ipcam.rtsp_url`` carries its ``rtsps://``
        address) or off (None: ``"disable"``), as on the X1/P2S/H2 screen."""
        state = self._state
        ipcam = state.report.get("ipcam")
        if not isinstance(ipcam, dict):
            return
        value = url or "disable"
        if ipcam.get("rtsp_url") != value:
            ipcam["rtsp_url"] = value
            state.touch("ipcam")
            self._changed()
