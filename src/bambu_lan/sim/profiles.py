"""Per-model behaviour of the simulated printer: identity, broker rules and report style.

One profile per model, as the field reports describe them (protocol.md §3.2, §3.4, §3.5, §11).
The broker reads the rules; the printer model reads the identity and report style.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ModelProfile:
    key: str  # CLI name: "a1", "a1mini", "p1s", "x1c", "p2s", "h2d"
    product_name: str  # "Bambu Lab A1"
    model_code: str  # SSDP DevModel / get_version project_name: "N2S"
    serial_prefix: str  # first 3 characters of the serial: "039"
    esp32_hw: str  # get_version hw_ver of the network module
    firmware: str  # ota sw_ver
    # Broker rules.
    drop_on_wildcard_subscribe: bool  # A1 / A1 mini close the socket on '#', '+'
    drop_on_foreign_subscribe: bool  # any other filter than device/{SERIAL}/report
    drop_on_request_subscribe: bool  # P1 closes on a device/{SERIAL}/request subscription
    max_sessions: int
    # Report style.
    delta_reports: bool  # A1/P1: deltas with msg:1; X1: the full object every push, no msg
    has_chamber_sensor: bool
    light_nodes: tuple[str, ...]
    has_ams_lite: bool  # AMS Lite (A1 family) vs AMS (P1/X1)
    # Newer printers (P2S, H2 family): the ``device`` block (nozzles, chamber, bed), external
    # spools in ``vir_slot``, AMS 2 Pro and AMS HT units (protocol.md §4.2, §4.3).
    device_report: bool = False
    extruders: int = 1  # the H2D has two: index 0 right, 1 left
    external_spool_ids: tuple[int, ...] = (254,)  # vir_slot ids; P2S: 255, H2D: 254 and 255
    ams_ht: bool = False  # an AMS HT (unit 128, one tray) beside the AMS 2 Pro
    top_level_chamber: bool = True  # P2S reports the chamber only in device.ctc
    top_level_vt_tray: bool = True  # P2S has no vt_tray, only vir_slot

    def default_serial(self, index: int = 0) -> str:
        """A 15-character upper-case serial with this model's prefix: ``039SIM000000001``."""
        return f"{self.serial_prefix}SIM{index:09d}"


A1 = ModelProfile(
    key="a1",
    product_name="Bambu Lab A1",
    model_code="N2S",
    serial_prefix="039",
    esp32_hw="AP05",
    firmware="01.05.00.00",
    drop_on_wildcard_subscribe=True,
    drop_on_foreign_subscribe=True,
    drop_on_request_subscribe=True,
    max_sessions=4,
    delta_reports=True,
    has_chamber_sensor=False,
    light_nodes=("chamber_light",),
    has_ams_lite=True,
)

# The A1 mini is an A1 with another name: the same board, broker and reports.
A1_MINI = dataclasses.replace(
    A1, key="a1mini", product_name="Bambu Lab A1 mini", model_code="N1", serial_prefix="030"
)

P1S = ModelProfile(
    key="p1s",
    product_name="Bambu Lab P1S",
    model_code="C12",
    serial_prefix="01P",
    esp32_hw="AP04",
    firmware="01.08.02.00",
    drop_on_wildcard_subscribe=False,
    drop_on_foreign_subscribe=False,
    drop_on_request_subscribe=True,
    max_sessions=4,
    delta_reports=True,
    has_chamber_sensor=False,
    light_nodes=("chamber_light",),
    has_ams_lite=False,
)

X1C = ModelProfile(
    key="x1c",
    product_name="Bambu Lab X1 Carbon",
    model_code="BL-P001",
    serial_prefix="00M",
    esp32_hw="AP05",
    firmware="01.08.05.00",
    drop_on_wildcard_subscribe=False,
    drop_on_foreign_subscribe=False,
    drop_on_request_subscribe=False,
    max_sessions=16,
    delta_reports=False,
    has_chamber_sensor=True,
    light_nodes=("chamber_light", "work_light"),
    has_ams_lite=False,
)

# Shaped on public captures of a P2S and an H2D (tests/protocol/captures/README.md): the X1's
# Linux broker and full reports, plus the ``device`` block of the newer printers.
P2S = dataclasses.replace(
    X1C,
    key="p2s",
    product_name="Bambu Lab P2S",
    model_code="N7",
    serial_prefix="22E",
    esp32_hw="AP04",
    firmware="01.01.00.00",
    device_report=True,
    external_spool_ids=(255,),
    top_level_chamber=False,
    top_level_vt_tray=False,
)

H2D = dataclasses.replace(
    X1C,
    key="h2d",
    product_name="Bambu Lab H2D",
    model_code="O1D",
    serial_prefix="094",
    firmware="01.01.02.07",
    light_nodes=("chamber_light", "work_light", "chamber_light2"),
    device_report=True,
    extruders=2,
    external_spool_ids=(254, 255),
    ams_ht=True,
)

PROFILES: dict[str, ModelProfile] = {p.key: p for p in (A1, A1_MINI, P1S, X1C, P2S, H2D)}


def get_profile(key: str) -> ModelProfile:
    """The profile for a CLI model name (case-insensitive; 'a1-mini' and 'a1_mini' accepted)."""
    normalized = key.lower().replace("-", "").replace("_", "").replace(" ", "")
    try:
        return PROFILES[normalized]
    except KeyError:
        known = ", ".join(PROFILES)
        raise ValueError(f"unknown printer model {key!r}; known models: {known}") from None
