"""HMS alerts and ``print_error`` codes: decoding and the texts we know (protocol.md §6).

Only a small table ships with bambu-lan; every code still gets its canonical form and the
wiki link, where Bambu documents all of them.
"""

from __future__ import annotations

from bambu_lan.protocol.records import Record, record

SEVERITIES = {1: "fatal", 2: "serious", 3: "common", 4: "info"}

MODULES = {
    0x03: "motion controller",
    0x05: "mainboard",
    0x07: "AMS",
    0x08: "toolhead",
    0x0C: "camera / lidar",
    0x12: "AMS Lite",
}

# Canonical HMS code (AAAA_BBBB_CCCC_DDDD) -> text.
HMS_TEXTS = {
    "0500_0500_0001_0007": (
        "MQTT command verification failed: the printer needs Developer Mode for third-party control"
    ),
    "0300_0100_0001_0007": (
        "The heatbed temperature is abnormal; the sensor may have an open circuit"
    ),
    "0300_0200_0001_0001": "The nozzle temperature is abnormal; the heater may be short-circuited",
    "0700_2000_0002_0001": "AMS slot 1 filament has run out",
    "0700_2100_0002_0001": "AMS slot 2 filament has run out",
    "0700_2200_0002_0001": "AMS slot 3 filament has run out",
    "0700_2300_0002_0001": "AMS slot 4 filament has run out",
    "0C00_0300_0003_000B": "Inspecting the first layer: the result may be unreliable",
    "0300_1000_0002_0001": "The hotend cooling fan speed is too slow or stopped",
    "0300_0D00_0001_000B": "The Z axis homing failed; the toolhead may be blocked",
}

PRINT_ERROR_TEXTS = {
    0x0300400C: "The task was canceled",
    0x03008001: "Printing was paused by the user",
    0x03008015: "The filament on the external spool has run out; load new filament",
    0x07008006: "Unable to feed filament into the extruder",
    0x0500C011: "SD card performance has degraded; consider replacing it",
    0x0500400A: "The file name is not supported; rename it with plain letters and digits",
    0x05004002: "Unsupported print file path or name",
    0x05004004: "The device is busy and cannot start a new task",
    0x05024007: "MQTT command verification failed (Developer Mode is off)",
}

WIKI_SERIES_DEFAULT = "x1"


@record(slots=True)
class HmsAlert(Record):
    """One entry of the printer's ``hms`` list."""

    code: str  # "HMS_0500_0500_0001_0007"
    attr: int
    code_int: int
    severity: str  # fatal, serious, common, info, unknown
    module: str
    text: str  # known text, or "" when bambu-lan does not ship it
    wiki_url: str

    @property
    def short(self) -> str:
        """The code without its ``HMS_`` prefix, as the wiki writes it."""
        return self.code[4:]


def hms_in_range(value: int) -> bool:
    """An HMS ``attr`` or ``code`` is an unsigned 32-bit number; anything else is malformed."""
    return type(value) is int and 0 <= value <= 0xFFFFFFFF


def hms_code(attr: int, code: int) -> str:
    """The canonical ``HMS_AAAA_BBBB_CCCC_DDDD`` form (ValueError outside 32 bits)."""
    if not (hms_in_range(attr) and hms_in_range(code)):
        raise ValueError(f"HMS attr/code outside 32 bits: {attr!r}, {code!r}")
    return f"HMS_{attr >> 16:04X}_{attr & 0xFFFF:04X}_{code >> 16:04X}_{code & 0xFFFF:04X}"


def decode_hms(attr: int, code: int, wiki_series: str = WIKI_SERIES_DEFAULT) -> HmsAlert:
    canonical = hms_code(attr, code)
    short = canonical[4:]
    return HmsAlert(
        code=canonical,
        attr=attr,
        code_int=code,
        severity=SEVERITIES.get(code >> 16, "unknown"),
        module=MODULES.get((attr >> 24) & 0xFF, f"module 0x{(attr >> 24) & 0xFF:02X}"),
        text=HMS_TEXTS.get(short, ""),
        wiki_url=f"https://wiki.bambulab.com/en/{wiki_series}/troubleshooting/hmscode/{short}",
    )


_HEX = frozenset("0123456789ABCDEF")


def parse_hms_code(text: str) -> tuple[int, int]:
    """``(attr, code)`` from ``HMS_0500_0500_0001_0007`` or ``0500_0500_0001_0007``."""
    parts = text.upper().removeprefix("HMS_").replace("-", "_").split("_")
    if len(parts) != 4 or not all(len(p) == 4 and _HEX.issuperset(p) for p in parts):
        raise ValueError(f"not an HMS code: {text!r} (expected AAAA_BBBB_CCCC_DDDD)")
    a, b, c, d = (int(p, 16) for p in parts)
    return (a << 16) | b, (c << 16) | d


@record(slots=True)
class PrintError(Record):
    """The printer's single ``print_error`` value, when it is not 0."""

    value: int
    text: str

    @property
    def hex(self) -> str:
        """``MMMM_EEEE``, as Bambu's tables and wiki write it."""
        return f"{self.value >> 16:04X}_{self.value & 0xFFFF:04X}"


def decode_print_error(value: int) -> PrintError | None:
    if not value:
        return None
    return PrintError(value=value, text=PRINT_ERROR_TEXTS.get(value, ""))


# print_error value that means "the user cancelled the job" (after print.stop).
TASK_CANCELED = 0x0300400C
# err_code of a reply refused for want of Developer Mode (protocol.md §6.3).
ERR_VERIFY_FAILED = 84033543
ERR_VERIFY_MALFORMED = 84033545
