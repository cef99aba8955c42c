"""Printing a sliced file: check it locally, upload it, start it, and wait until it started.

``Printer.print_file`` is the way in::

    async with Printer(...) as printer:
        started = await printer.print_file("benchy.gcode.3mf", plate=1)
        print(started.name, started.state.job.state)

Nothing reaches the printer before the local checks pass (a 3MF sliced for this model, the
plate exists, a name the printer accepts, filaments it can map); the job is started only from
a file whose upload completed and whose size on the card matches (never a half file).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import posixpath
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bambu_lan.errors import (
    CommandRejected,
    CommandTimeout,
    DeveloperModeRequired,
    PrintFailed,
    PrintFileError,
)
from bambu_lan.protocol.commands import Command
from bambu_lan.protocol.errors_table import PRINT_ERROR_TEXTS
from bambu_lan.protocol.state import JobState, PrinterState, Tray
from bambu_lan.threemf import (
    MODEL_NAMES,
    Filament,
    name_problem,
    read_sliced_file,
    safe_name_suggestion,
)

if TYPE_CHECKING:
    from bambu_lan.files import Progress
    from bambu_lan.printer import Printer

log = logging.getLogger("bambu_lan.print")

EXTERNAL_SPOOL = 254
# Models whose firmware takes the project URL as ftp:/// (protocol.md §5.3).
_FTP_URL_MODELS = {"N7", "O1D", "O1S", "O1C", "O1C2", "N6"}
_INFO_WAIT = 3.0  # seconds to wait for the printer's model before checking without it
_BUSY = (JobState.PREPARE, JobState.RUNNING, JobState.PAUSE)
_STARTED = (JobState.PREPARE, JobState.RUNNING)

_SEE_THE_SCREEN = "see the printer's screen; `bambu-lan status`"
_REFUSAL_HINTS = {
    0x0500400A: "rename the file with plain letters, digits, '-', '_' and '.'",
    0x05004002: "the printer did not find the file: check it is on the card "
    "(`bambu-lan files ls`) and upload it again",
    0x05004004: "wait for the current job to end, or stop it with `bambu-lan send stop`",
}


@dataclass(frozen=True, slots=True)
class PrintOptions:
    """How to print, with the printer's (and Bambu Studio's) defaults."""

    plate: int = 1
    use_ams: bool | None = None  # None: when the printer has an AMS with filament in it
    ams_mapping: Sequence[int] | None = None  # tray per filament (ams*4+slot, 254 external)
    bed_leveling: bool = True
    flow_cali: bool = True
    vibration_cali: bool = True
    timelapse: bool = False
    layer_inspect: bool = False
    bed_type: str = "auto"


@dataclass(frozen=True, slots=True)
class PrintStarted:
    """A job the printer reports as started (PREPARE or RUNNING with this name)."""

    name: str  # the job name the printer shows (subtask_name)
    remote: str  # the file on the card
    plate: int
    uploaded: int  # bytes sent (0 without upload)
    state: PrinterState = field(repr=False)
    timings: dict[str, float] = field(default_factory=dict)  # check, upload, command (s)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "remote": self.remote,
            "plate": self.plate,
            "uploaded": self.uploaded,
            "state": self.state.job.state.value,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }


# --- commands (pure) ------------------------------------------------------------------------


def project_url(remote: str, model_code: str | None) -> str:
    """Where the printer finds the 3MF: ``file:///sdcard/x`` on A1/P1/X1, ``ftp:///x`` on
    the newer models (protocol.md §5.3)."""
    path = remote.lstrip("/")
    if model_code in _FTP_URL_MODELS:
        return f"ftp:///{path}"
    return f"file:///sdcard/{path}"


def job_name(remote: str) -> str:
    base = posixpath.basename(remote)
    for suffix in (".gcode.3mf", ".3mf", ".gcode"):
        if base.lower().endswith(suffix):
            return base[: -len(suffix)]
    return base


def project_file_command(
    remote: str,
    options: PrintOptions,
    *,
    use_ams: bool,
    ams_mapping: Sequence[int],
    model_code: str | None = None,
) -> Command:
    """``print.project_file`` for a 3MF on the card (protocol.md §5.3)."""
    params = {
        "param": f"Metadata/plate_{options.plate}.gcode",
        "url": project_url(remote, model_code),
        "file": "",
        "md5": "",
        "subtask_name": job_name(remote),
        "project_id": "0",
        "profile_id": "0",
        "task_id": "0",
        "subtask_id": "0",
        "bed_type": options.bed_type,
        "timelapse": options.timelapse,
        "bed_leveling": options.bed_leveling,
        "flow_cali": options.flow_cali,
        "vibration_cali": options.vibration_cali,
        "layer_inspect": options.layer_inspect,
        "use_ams": use_ams,
        "ams_mapping": list(ams_mapping),
    }
    return Command("print", "project_file", params, qos=1)


def gcode_file_command(remote: str) -> Command:
    """``print.gcode_file`` for a plain G-code file on the card."""
    return Command("print", "gcode_file", {"param": "/sdcard/" + remote.lstrip("/")}, qos=1)


# --- AMS mapping ----------------------------------------------------------------------------


def _trays(state: PrinterState) -> list[Tray]:
    return [t for unit in state.ams for t in unit.trays if not t.empty and t.type]


def auto_ams_mapping(filaments: Sequence[Filament], state: PrinterState) -> list[int] | None:
    """A tray for each filament: same type and colour first, then same type. None when the
    printer has no loaded AMS (print from the external spool). ``PrintFileError`` when a
    filament has no tray."""
    trays = _trays(state)
    if not trays:
        return None
    mapping: list[int] = []
    for filament in filaments:
        want = filament.color.lstrip("#").upper()[:6]
        same_type = [t for t in trays if t.type.upper() == filament.type.upper()]
        exact = [t for t in same_type if t.color.upper()[:6] == want]
        candidates = exact or same_type
        if not candidates:
            loaded = ", ".join(f"{t.tray_id}: {t.type} {t.color_hex}" for t in trays)
            raise PrintFileError(
                f"filament {filament.id} ({filament.type} {filament.color}) is in no AMS tray "
                f"(loaded: {loaded})",
                hint="load it, map it yourself with --ams-map (one tray per filament, e.g. "
                "--ams-map 0,2), or print from the external spool with --no-ams",
            )
        mapping.append(candidates[0].tray_id)
    return mapping


def check_ams_mapping(
    mapping: Sequence[int], filaments: Sequence[Filament], state: PrinterState
) -> None:
    if filaments and len(mapping) != len(filaments):
        raise PrintFileError(
            f"--ams-map has {len(mapping)} trays but the plate uses {len(filaments)} filaments",
            hint="give one tray per filament, in the slicer's filament order",
        )
    known = {t.tray_id for unit in state.ams for t in unit.trays} | {EXTERNAL_SPOOL, -1}
    for tray in mapping:
        if tray not in known:
            have = ", ".join(str(t) for t in sorted(known - {-1})) or "none"
            raise PrintFileError(
                f"tray {tray} is not on this printer (trays: {have})",
                hint="trays are numbered ams*4+slot from 0; 254 is the external spool",
            )


# --- the flow -------------------------------------------------------------------------------


def _refused(exc: CommandRejected) -> CommandRejected:
    """The printer's refusal with its error text and what to do."""
    code = exc.err_code or 0
    text = PRINT_ERROR_TEXTS.get(code)
    if text and not isinstance(exc, DeveloperModeRequired):
        better = CommandRejected(
            f"{exc.reason or 'refused'}: {text} (error {code >> 16:04X}_{code & 0xFFFF:04X})",
            code,
            command=exc.command,
        )
        better.hint = _REFUSAL_HINTS.get(code, "")
        return better
    return exc


def _model_code(printer: Printer) -> str | None:
    return printer.info.model_code if printer.info is not None else None


def _check_model(model_id: str, printer: Printer, file_name: str) -> None:
    code = _model_code(printer)
    if not model_id or code is None or model_id == code:
        return
    sliced_for = MODEL_NAMES.get(model_id, model_id)
    this = MODEL_NAMES.get(code, code)
    raise PrintFileError(
        f"{file_name} was sliced for the {sliced_for}, this printer is a {this}",
        hint=f"in the slicer, choose the {this} as the printer, slice again and export",
    )


async def print_file(
    printer: Printer,
    path: str | Path,
    *,
    options: PrintOptions | None = None,
    upload: bool = True,
    progress: Progress | None = None,
    start_timeout: float = 60.0,
) -> PrintStarted:
    """Check ``path``, upload it to the card's top folder, start it, and return once the
    printer reports the job started. See ``Printer.print_file``."""
    from bambu_lan.files import Storage

    options = options or PrintOptions()
    timings: dict[str, float] = {}
    began = time.perf_counter()
    local = Path(path)
    exists = await asyncio.to_thread(local.is_file)
    on_card_only = not upload and not exists
    remote = str(path) if on_card_only else "/" + local.name
    if not remote.startswith("/"):
        remote = "/" + remote
    name = posixpath.basename(remote)
    problem = name_problem(name)
    if problem:
        raise PrintFileError(
            f"the printer would refuse the file name {name!r}: {problem} (error 0500_400A)",
            hint=f"rename it, e.g. to {safe_name_suggestion(name)!r}",
        )
    is_gcode = name.lower().endswith(".gcode")
    if not is_gcode and not name.lower().endswith(".3mf"):
        raise PrintFileError(
            f"{name} is neither a sliced .gcode.3mf nor a .gcode file",
            hint="export a sliced file from the slicer (File > Export > Export plate sliced file)",
        )
    state = await printer.wait_for_state()
    if _model_code(printer) is None:  # the model comes with get_version's answer
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_INFO_WAIT):
                async for _ in printer.states():
                    if _model_code(printer) is not None:
                        break
    filaments: tuple[Filament, ...] = ()
    size: int | None = None
    if not on_card_only:
        if is_gcode:
            if not exists:
                raise PrintFileError(f"no such file: {local}", hint="check the path")
            size = (await asyncio.to_thread(local.stat)).st_size
        else:
            sliced = await asyncio.to_thread(read_sliced_file, local)
            plate = sliced.plate(options.plate)
            _check_model(plate.model_id, printer, name)
            filaments = plate.filaments
            size = sliced.size
    if state.job.state in _BUSY:
        what = state.job.name or "a job"
        raise PrintFailed(
            f"{printer.config.label} is busy ({state.job.state.value}: {what})",
            hint="wait for the job to end, or stop it with `bambu-lan send stop`",
        )
    use_ams, mapping = _ams_choice(options, filaments, state)
    timings["check"] = time.perf_counter() - began

    began = time.perf_counter()
    sent = 0
    async with Storage(printer.config) as storage:
        if upload:
            sent = await storage.upload(local, remote, progress=progress)
        on_card = await storage.size(remote)
    if on_card is None:
        raise PrintFileError(
            f"{remote} is not on the printer's card",
            hint="upload it (drop --no-upload), or list the card with `bambu-lan files ls`",
        )
    if size is not None and on_card != size:
        raise PrintFileError(
            f"{remote} on the card has {on_card} bytes, the local file {size}: not printing "
            "a different or incomplete copy",
            hint="upload it again (drop --no-upload)",
        )
    timings["upload"] = time.perf_counter() - began

    began = time.perf_counter()
    if is_gcode:
        command = gcode_file_command(remote)
    else:
        command = project_file_command(
            remote, options, use_ams=use_ams, ams_mapping=mapping, model_code=_model_code(printer)
        )
    before = printer.state or state
    try:
        await printer.send(command)
    except DeveloperModeRequired:
        raise
    except CommandRejected as exc:
        raise _refused(exc) from None
    started = await _wait_started(printer, name, job_name(remote), before, start_timeout)
    timings["command"] = time.perf_counter() - began
    return PrintStarted(
        name=started.job.name or job_name(remote),
        remote=remote,
        plate=options.plate,
        uploaded=sent,
        state=started,
        timings=timings,
    )


def _ams_choice(
    options: PrintOptions, filaments: Sequence[Filament], state: PrinterState
) -> tuple[bool, list[int]]:
    if options.use_ams is False:
        return False, []
    if options.ams_mapping is not None:
        check_ams_mapping(options.ams_mapping, filaments, state)
        return any(t not in (EXTERNAL_SPOOL, -1) for t in options.ams_mapping), list(
            options.ams_mapping
        )
    auto = auto_ams_mapping(filaments, state) if filaments else None
    if auto is None:
        if options.use_ams and not _trays(state):
            raise PrintFileError(
                "no AMS with filament on this printer", hint="print from the external spool"
            )
        if options.use_ams:
            return True, [t.tray_id for t in _trays(state)][:1]
        return False, []
    return True, auto


async def _wait_started(
    printer: Printer, file_name: str, name: str, before: PrinterState, timeout: float
) -> PrinterState:
    """The first state showing this job PREPARE/RUNNING; PrintFailed on a new FAILED, or
    when the job pauses at its start (a wrong AMS mapping, a filament that does not feed)."""
    old_error = before.print_error.value if before.print_error else 0

    def verdict(state: PrinterState) -> PrinterState | None:
        job = state.job
        ours = job.name == name or posixpath.basename(job.file) == file_name
        if job.state in _STARTED and ours:
            return state
        if job.state is JobState.PAUSE and ours:
            raise PrintFailed(
                f"{file_name} paused at its start: {_pause_reason(state)}",
                hint="see the printer's screen; when the cause is cleared, `bambu-lan send "
                "resume`, or `bambu-lan send stop` to drop the job",
            )
        error = state.print_error
        if job.state is JobState.FAILED and error is not None and error.value != old_error:
            raise PrintFailed(
                f"the printer did not start {file_name}: {error.text or 'error'} "
                f"(error {error.hex})",
                hint=_REFUSAL_HINTS.get(error.value, _SEE_THE_SCREEN),
            )
        return None

    current = printer.state
    if current is not None and (found := verdict(current)) is not None:
        return found
    try:
        async with asyncio.timeout(timeout):
            async for state in printer.states():
                if (found := verdict(state)) is not None:
                    return found
    except TimeoutError:
        pass
    raise CommandTimeout(
        f"the printer accepted the job but did not start {file_name} within {timeout:g} s",
        hint="check the printer's screen (a prompt may wait for you) and `bambu-lan status`",
    )


def _pause_reason(state: PrinterState) -> str:
    """What the printer says about a pause: its print_error and HMS alerts."""
    reasons = []
    if state.print_error is not None:
        text = state.print_error.text or "error"
        reasons.append(f"{text} (error {state.print_error.hex})")
    reasons.extend(f"{a.text or 'HMS'} ({a.short})" for a in state.hms)
    return "; ".join(reasons) or "the printer gave no reason"
