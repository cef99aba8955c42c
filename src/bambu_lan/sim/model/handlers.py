"""The simulated printer's command handlers: what it does with each ``/request`` payload.

Every payload is decoded leniently (§3.3); each ``{class: {"command": ...}}`` in it goes
through the Developer Mode check (§10: ``print.*`` refused with 84033543 and HMS
0500_0500_0001_0007 while it is off) and then to the one handler registered for
``(class, command)`` in the dispatch table (``@_command``). Unknown commands get no reply,
the safest guess about the real firmware (§5.9). Replies echo the request's fields under
its class with ``result`` and ``reason``.

To add a command: write a ``CommandHandlers`` method decorated with
``@_command("print", "name")``; change the printer only through ``ModelState``'s methods.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Final
from urllib.parse import unquote, urlsplit

import orjson

from bambu_lan.sim import report
from bambu_lan.sim.ftps_card import PrintFileRefused
from bambu_lan.sim.model.gcode import run_gcode
from bambu_lan.sim.model.pushes import Reports
from bambu_lan.sim.model.state import (
    BUSY_STATES,
    STAGE_FILAMENT_RUNOUT,
    STAGE_PAUSED_BY_USER,
    Job,
    LoggedRequest,
    ModelState,
    SdFile,
    file_stem,
    plan_stages,
)
from bambu_lan.sim.report import JsonObject

logger = logging.getLogger(__name__)

# print.* commands that pass without a signature (§10.3: queries); all others need one
# while Developer Mode is off.
_UNSIGNED_PRINT_COMMANDS: Final = frozenset({"extrusion_cali_get"})
_VERIFY_FAILED_REASON: Final = "mqtt message verify failed"
_LIGHT_MODES: Final = frozenset({"on", "off", "flashing"})
_STOP_ERROR_SECONDS: Final = 2.0  # print_error 50348044 shows this long after a stop (§5.2)
_JOB_PREPARE_SECONDS: Final = (1.0, 3.0)  # reading a file off the SD card takes a moment
_JOB_STAGE_SECONDS: Final = 4.0


@dataclass(frozen=True, slots=True)
class Request:
    """One command of a request payload: its class (``print``), name and whole body."""

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


_Handler = Callable[["CommandHandlers", Request], None]
_COMMANDS: dict[tuple[str, str], _Handler] = {}


def _command(klass: str, *names: str) -> Callable[[_Handler], _Handler]:
    """Register a request handler for ``klass``.``name`` in the dispatch table."""

    def register(handler: _Handler) -> _Handler:
        for name in names:
            _COMMANDS[(klass, name)] = handler
        return handler

    return register


def handled_commands() -> frozenset[tuple[str, str]]:
    """Every ``(class, command)`` the simulated printer answers."""
    return frozenset(_COMMANDS)


def decode_request(payload: bytes | bytearray | memoryview) -> JsonObject | None:
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


def _card_file_layers(file_name: str) -> int:
    """Layers of a card file whose G-code does not say: steady per name, 20-49."""
    return 20 + int.from_bytes(file_name.encode()[:4].ljust(4, b"\0"), "big") % 30


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


class CommandHandlers:
    """The firmware's answers to MQTT commands: one method per command, found by table."""

    def __init__(self, state: ModelState, reports: Reports) -> None:
        self._state = state
        self._reports = reports
        self.on_pushing_start: Callable[[], None] | None = None  # the broker ends a silence

    def handle(self, payload: bytes) -> None:
        """Decode one ``/request`` payload and run each command in it (may raise on a bug:
        the caller counts and logs that)."""
        state = self._state
        state.stats.requests += 1
        message = decode_request(payload)
        if message is None:
            state.stats.bad_payloads += 1
            logger.debug("simulated printer %s: ignoring a payload that is not JSON", state.serial)
            return
        state.request_log.append(LoggedRequest(time.time(), message))
        # A signature envelope we cannot verify is a malformed one (§6.3).
        signed = "header" in message
        for klass, body in message.items():
            if klass != "header":
                self._dispatch(klass, body, signed=signed)

    def _dispatch(self, klass: str, body: object, *, signed: bool) -> None:
        stats = self._state.stats
        command = body.get("command") if isinstance(body, dict) else None
        if not isinstance(body, dict) or not isinstance(command, str):
            stats.commands_ignored += 1
            return
        request = Request(klass, command, body)
        if (
            klass == "print"
            and not self._state.dev_mode
            and command not in _UNSIGNED_PRINT_COMMANDS
        ):
            # Verification comes before dispatch: unknown print commands are refused too.
            stats.commands_handled += 1
            self._refuse_unsigned(request, malformed_envelope=signed)
            return
        handler = _COMMANDS.get((klass, command))
        if handler is None:
            stats.commands_ignored += 1  # unknown: the safest guess is no reply (§5.9)
            logger.debug(
                "simulated printer %s: no handler for %s.%s", self._state.serial, klass, command
            )
            return
        stats.commands_handled += 1
        handler(self, request)

    def _reply(
        self, request: Request, *, error: str | None = None, err_code: int | None = None
    ) -> None:
        """Reply under the request's class: command, echoed id and fields, result, reason."""
        body: JsonObject = {"command": request.command}
        sequence_id = request.sequence_id
        if sequence_id is not None and request.command not in self._state.unsequenced_replies:
            body["sequence_id"] = sequence_id
        for key, value in request.body.items():
            if key not in ("command", "sequence_id"):
                body[key] = value
        body["result"] = "failed" if error is not None else "success"
        body["reason"] = error if error is not None else ""
        if err_code is not None:
            body["err_code"] = err_code
        self._reports.reply({request.klass: body})

    def _refuse_unsigned(self, request: Request, *, malformed_envelope: bool) -> None:
        """Developer Mode off: refuse, raise HMS 0500_0500_0001_0007, change nothing (§10.4)."""
        self._state.stats.verify_failures += 1
        code = report.ERR_ENVELOPE_MALFORMED if malformed_envelope else report.ERR_VERIFY_FAILED
        self._reply(request, error=_VERIFY_FAILED_REASON, err_code=code)
        self._state.add_hms(*report.HMS_VERIFY_FAILED)

    # pushing / info / system

    @_command("pushing", "pushall")
    def _on_pushall(self, request: Request) -> None:
        self._reports.push_full()

    @_command("pushing", "start")
    def _on_pushing_start(self, request: Request) -> None:
        self._state.pushing = True
        if self.on_pushing_start is not None:
            self.on_pushing_start()
        self._reports.push_full()

    @_command("pushing", "stop")
    def _on_pushing_stop(self, request: Request) -> None:
        self._state.pushing = False

    @_command("info", "get_version")
    def _on_get_version(self, request: Request) -> None:
        body: JsonObject = {"command": "get_version"}
        if request.sequence_id is not None:
            body["sequence_id"] = request.sequence_id
        body |= {"module": self._state.version_modules, "result": "success", "reason": ""}
        self._reports.reply({"info": body})

    @_command("system", "ledctrl")
    def _on_ledctrl(self, request: Request) -> None:
        state = self._state
        node = request.body.get("led_node", state.profile.light_nodes[0])
        mode = request.body.get("led_mode")
        if node not in state.profile.light_nodes:
            self._reply(request, error=f"unsupported led_node {node!r}")
            return
        if not isinstance(mode, str) or mode not in _LIGHT_MODES:
            self._reply(request, error=f"unsupported led_mode {mode!r}")
            return
        lights = [
            {"node": light["node"], "mode": mode if light["node"] == node else light["mode"]}
            for light in state.report["lights_report"]
        ]
        state.set("lights_report", lights)
        self._reply(request)

    # print: job control

    @_command("print", "pause")
    def _on_pause(self, request: Request) -> None:
        state = self._state
        if state.job is None:
            self._reply(request, error="no print job to pause")
            return
        if state.gcode_state != "PAUSE":
            state.pause_job(STAGE_PAUSED_BY_USER)
        self._reply(request)

    @_command("print", "resume")
    def _on_resume(self, request: Request) -> None:
        state = self._state
        job = state.job
        if job is None:
            self._reply(request, error="no print job to resume")
            return
        if state.gcode_state == "PAUSE":
            state.resume_job(job)
        self._reply(request)

    @_command("print", "stop")
    def _on_stop(self, request: Request) -> None:
        state = self._state
        if state.job is None:
            self._reply(request, error="no print job to stop")
            return
        state.end_job("FAILED", print_error=report.PRINT_ERROR_CANCELLED)
        state.clear_print_error_at = state.sim_time + _STOP_ERROR_SECONDS
        self._reply(request)

    @_command("print", "print_speed")
    def _on_print_speed(self, request: Request) -> None:
        param = request.body.get("param")
        level = None
        if isinstance(param, str) and param.strip().isascii() and param.strip().isdigit():
            level = int(param)
        elif isinstance(param, int) and not isinstance(param, bool):
            level = param
        if level not in report.SPEED_MAGNITUDES:
            self._reply(request, error=f"speed level must be 1-4, not {param!r}")
            return
        self._state.set("spd_lvl", level)
        self._state.set("spd_mag", report.SPEED_MAGNITUDES[level])
        self._state.update_remaining_time()
        self._reply(request)

    @_command("print", "skip_objects")
    def _on_skip_objects(self, request: Request) -> None:
        objects = request.body.get("obj_list")
        if not isinstance(objects, list) or not all(
            isinstance(o, int) and not isinstance(o, bool) for o in objects
        ):
            self._reply(request, error="obj_list must be a list of object ids")
            return
        if self._state.job is None:
            self._reply(request, error="no print job")
            return
        skipped: list[int] = list(self._state.report["s_obj"])
        skipped.extend(o for o in dict.fromkeys(objects) if o not in skipped)
        self._state.set("s_obj", skipped)
        self._reply(request)

    # print: starting a job

    @_command("print", "project_file")
    def _on_project_file(self, request: Request) -> None:
        body = request.body
        location = body.get("url") or body.get("file")
        file_name = _requested_file(body.get("url")) or _requested_file(body.get("file"))
        self._start_from_request(request, file_name, location, body.get("param"))

    @_command("print", "gcode_file")
    def _on_gcode_file(self, request: Request) -> None:
        param = request.body.get("param")
        self._start_from_request(request, _requested_file(param), param, None)

    def _refuse_start(self, request: Request, code: int, reason: str) -> None:
        state = self._state
        state.set_gcode_state("FAILED")
        state.set("print_error", code)
        state.set("print_type", "idle")
        self._reply(request, error=reason, err_code=code)

    def _start_from_request(
        self,
        request: Request,
        file_name: str | None,
        location: object = None,
        plate_param: object = None,
    ) -> None:
        state = self._state
        if state.gcode_state in BUSY_STATES:
            self._reply(request, error="device is busy", err_code=report.PRINT_ERROR_BUSY)
            return
        # A file on the card (uploaded over FTPS) first, then the built-in sample files.
        card_file = None
        if state.card_files is not None and isinstance(location, str) and location.strip():
            try:
                card_file = state.card_files.open(
                    location, plate_param if isinstance(plate_param, str) else None
                )
            except PrintFileRefused as refused:
                self._refuse_start(request, refused.code, refused.reason)
                return
        sd_file = state.sd_files.get(file_name) if file_name and card_file is None else None
        if card_file is not None:
            file_name = PurePosixPath(card_file.path).name
            sd_file = SdFile(
                layers=card_file.layers or _card_file_layers(file_name), layer_seconds=12.0
            )
        if file_name is None or sd_file is None:
            self._refuse_start(
                request, report.PRINT_ERROR_FILE_NOT_FOUND, "unsupported print file path or name"
            )
            return
        body = request.body
        tray = self._requested_tray(body)
        material = report.filament_type(state.tray_type(tray))
        subtask_name = body.get("subtask_name")
        job = Job(
            file=file_name,
            name=subtask_name
            if isinstance(subtask_name, str) and subtask_name
            else (card_file.name if card_file is not None and card_file.name else "")
            or file_stem(file_name),
            layers=sd_file.layers,
            layer_seconds=sd_file.layer_seconds,
            prepare_seconds=state.rng.uniform(*_JOB_PREPARE_SECONDS),
            stage_seconds=_JOB_STAGE_SECONDS,
            stages=plan_stages(
                bed_leveling=_bool_option(body, "bed_leveling", "bed_levelling", default=True),
                vibration_cali=_bool_option(body, "vibration_cali", default=False),
                flow_cali=_bool_option(body, "flow_cali", default=True),
            ),
            nozzle_target=material.print_nozzle,
            bed_target=material.print_bed,
            timelapse=_bool_option(body, "timelapse", default=False),
        )
        self._reply(request)
        ids = {
            key: _string_id(body, key)
            for key in ("project_id", "profile_id", "task_id", "subtask_id")
        }
        state.start_job(job, tray=tray, ids=ids)
        if state.pause_at_start is not None:  # the pause_next_start fault
            (print_error, hms), state.pause_at_start = state.pause_at_start, None
            state.pause_job(STAGE_FILAMENT_RUNOUT)  # the filament did not feed
            state.set("print_error", print_error)
            if hms is not None:
                state.add_hms(*hms)

    def _requested_tray(self, body: JsonObject) -> str:
        """``tray_now`` for a job: the first mapped AMS tray, else the external spool."""
        mapping = body.get("ams_mapping")
        use_ams = _bool_option(body, "use_ams", default=False)
        if use_ams and self._state.report["ams"]["ams"] and isinstance(mapping, list):
            for tray in mapping:
                if isinstance(tray, int) and not isinstance(tray, bool) and 0 <= tray < 16:
                    return str(tray)
        return report.EXTERNAL_SPOOL

    # print: G-code and filament

    @_command("print", "gcode_line")
    def _on_gcode_line(self, request: Request) -> None:
        param = request.body.get("param")
        if not isinstance(param, str):
            self._reply(request, error="param must be G-code text")
            return
        run_gcode(self._state, param)
        self._reply(request)

    @_command("print", "ams_filament_setting")
    def _on_ams_filament_setting(self, request: Request) -> None:
        state = self._state
        body = request.body
        ams_id = body.get("ams_id")
        slot = body.get("slot_id", body.get("tray_id"))
        color = body.get("tray_color")
        tray_type = body.get("tray_type")
        try:
            tray = state.tray(
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
        state.touch("vt_tray" if tray is state.report["vt_tray"] else "ams")
        self._reply(request)
