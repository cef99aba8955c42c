"""Per-model behaviour of the simulated printer: identity, broker rules and report style.

One profile per model, as the field reports describe them (protocol.md §3.2, §3.4, §3.5, §11).
The broker reads the rules; the printer model reads the identity and report style.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ModelProfile:
    key: str  # CLI name: "a1", "a1mini", "p1s", "x1c"
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

A1_MINI = ModelProfile(
    key="a1mini",
    product_name="Bambu Lab A1 mini",
    model_code="N1",
    serial_prefix="030",
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

PROFILES: dict[str, ModelProfile] = {p.key: p for p in (A1, A1_MINI, P1S, X1C)}


def get_profile(key: str) -> ModelProfile:
    """The profile for a CLI model name (case-insensitive; 'a1-mini' and 'a1_mini' accepted)."""
    normalized = key.lower().replace("-", "").replace("_", "").replace(" ", "")
    try:
        return PROFILES[normalized]
    except KeyError:
        known = ", ".join(PROFILES)
        raise ValueError(f"unknown printer model {key!r}; known models: {known}") from None
