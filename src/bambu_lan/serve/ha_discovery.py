"""Home Assistant MQTT discovery: one device per printer, its entities and their topics.

Pure: ``discovery_messages`` returns (topic, config) pairs; the bridge publishes them
retained. Entities read the printer's flat JSON state (``state_json``) and are available only
when both the bridge and the printer are (``availability_mode: all``). Unique ids are
``bambu_lan_<serial>_<key>``, stable across restarts and machines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bambu_lan.serve.state_json import SPEED_NAMES, tray_key


@dataclass(frozen=True, slots=True)
class Topics:
    """Where the bridge publishes a printer, under ``prefix`` (default ``bambu-lan``)."""

    prefix: str
    serial: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.serial}"

    @property
    def state(self) -> str:
        return f"{self.base}/state"

    @property
    def event(self) -> str:
        return f"{self.base}/event"

    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    @property
    def camera(self) -> str:
        """A camera picture now and then (JPEG bytes, not retained)."""
        return f"{self.base}/camera"

    @property
    def command_result(self) -> str:
        return f"{self.base}/command_result"

    def command(self, action: str) -> str:
        return f"{self.base}/command/{action}"


def bridge_availability(prefix: str) -> str:
    return f"{prefix}/bridge/availability"


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    serial: str
    name: str
    model: str
    firmware: str
    chamber_sensor: bool = False
    trays: tuple[int, ...] = ()
    ams_units: tuple[int, ...] = ()
    camera: bool = False  # a picture has been taken: Home Assistant gets an image entity


# key, name, value key in the state JSON, unit, device_class, state_class, icon
_SENSORS: tuple[tuple[str, str, str, str | None, str | None, str | None, str | None], ...] = (
    ("state", "State", "state", None, None, None, "mdi:printer-3d"),
    ("stage", "Stage", "stage", None, None, None, "mdi:progress-wrench"),
    ("progress", "Progress", "progress", "%", None, "measurement", "mdi:progress-clock"),
    ("remaining", "Remaining time", "remaining_minutes", "min", "duration", None, None),
    ("layer", "Layer", "layer", None, None, "measurement", "mdi:layers-triple"),
    ("total_layers", "Total layers", "total_layers", None, None, None, "mdi:layers-triple"),
    ("job", "Job", "job_name", None, None, None, "mdi:file-cad"),
    ("nozzle_temp", "Nozzle temperature", "nozzle_temperature", "°C", "temperature",
     "measurement", None),
    ("nozzle_target", "Nozzle target", "nozzle_target", "°C", "temperature", None, None),
    ("bed_temp", "Bed temperature", "bed_temperature", "°C", "temperature", "measurement", None),
    ("bed_target", "Bed target", "bed_target", "°C", "temperature", None, None),
    ("part_fan", "Part fan", "part_fan", "%", None, "measurement", "mdi:fan"),
    ("aux_fan", "Aux fan", "aux_fan", "%", None, "measurement", "mdi:fan"),
    ("chamber_fan", "Chamber fan", "chamber_fan", "%", None, "measurement", "mdi:fan"),
    ("heatbreak_fan", "Heatbreak fan", "heatbreak_fan", "%", None, "measurement", "mdi:fan"),
    ("speed_level", "Speed level", "speed_level", None, None, None, "mdi:speedometer"),
    ("wifi", "Wi-Fi signal", "wifi_signal_dbm", "dBm", "signal_strength", "measurement", None),
    ("hms", "HMS alerts", "hms_count", None, None, "measurement", "mdi:alert"),
    ("print_error", "Print error", "print_error", None, None, None, "mdi:alert-circle"),
)  # fmt: skip


def _device(info: DeviceInfo) -> dict[str, Any]:
    device: dict[str, Any] = {
        "identifiers": [f"bambu_lan_{info.serial}"],
        "name": info.name,
        "manufacturer": "Bambu Lab",
        "serial_number": info.serial,
    }
    if info.model:
        device["model"] = info.model
    if info.firmware:
        device["sw_version"] = info.firmware
    return device


def discovery_messages(
    info: DeviceInfo, *, prefix: str, discovery_prefix: str, version: str = ""
) -> list[tuple[str, dict[str, Any]]]:
    """(topic, config) for every entity of one printer."""
    topics = Topics(prefix, info.serial)
    node = f"bambu_lan_{info.serial}"
    common: dict[str, Any] = {
        "device": _device(info),
        "origin": {"name": "bambu-lan", "sw_version": version}
        if version
        else {"name": "bambu-lan"},
        "availability": [
            {"topic": bridge_availability(prefix)},
            {"topic": topics.availability},
        ],
        "availability_mode": "all",
    }
    out: list[tuple[str, dict[str, Any]]] = []

    def add(component: str, key: str, name: str, **config: Any) -> None:
        entity = {
            **common,
            "name": name,
            "unique_id": f"{node}_{key}",
            "object_id": f"{info.name}_{key}".lower().replace(" ", "_").replace("-", "_"),
            **{k: v for k, v in config.items() if v is not None},
        }
        out.append((f"{discovery_prefix}/{component}/{node}/{key}/config", entity))

    def sensor(key: str, name: str, field: str, **config: Any) -> None:
        add(
            "sensor",
            key,
            name,
            state_topic=topics.state,
            value_template=f"{{{{ value_json.{field} }}}}",
            **config,
        )

    for key, name, field, unit, device_class, state_class, icon in _SENSORS:
        sensor(
            key, name, field,
            unit_of_measurement=unit, device_class=device_class, state_class=state_class,
            icon=icon,
        )  # fmt: skip
    if info.chamber_sensor:
        sensor(
            "chamber_temp", "Chamber temperature", "chamber_temperature",
            unit_of_measurement="°C", device_class="temperature", state_class="measurement",
        )  # fmt: skip
    for _, entity in out:  # the HMS sensor carries the alert list as attributes
        if entity["unique_id"] == f"{node}_hms":
            entity["json_attributes_topic"] = topics.state
            entity["json_attributes_template"] = "{{ {'alerts': value_json.hms} | tojson }}"
    for ams in info.ams_units:
        sensor(f"ams_{ams}_humidity", f"AMS {ams + 1} humidity", f"ams_{ams}_humidity",
               icon="mdi:water-percent", state_class="measurement")  # fmt: skip
    for tray in info.trays:
        key = tray_key(tray)
        label = (
            "External spool" if key == "tray_ext" else f"AMS {tray // 4 + 1} tray {tray % 4 + 1}"
        )
        sensor(f"{key}_type", f"{label} type", f"{key}_type", icon="mdi:printer-3d-nozzle")
        sensor(f"{key}_color", f"{label} colour", f"{key}_color", icon="mdi:palette")
        sensor(f"{key}_remain", f"{label} remaining", f"{key}_remain",
               unit_of_measurement="%", state_class="measurement", icon="mdi:percent")  # fmt: skip
    if info.camera:
        add("image", "camera", "Camera", image_topic=topics.camera,
            content_type="image/jpeg", icon="mdi:camera")  # fmt: skip
    add(
        "sensor", "last_command", "Last command",
        state_topic=topics.command_result, value_template="{{ value_json.message }}",
        icon="mdi:console",
    )  # fmt: skip
    for action, name, icon in (
        ("pause", "Pause", "mdi:pause"),
        ("resume", "Resume", "mdi:play"),
        ("stop", "Stop", "mdi:stop"),
    ):
        add("button", action, name, command_topic=topics.command(action),
            payload_press="PRESS", icon=icon)  # fmt: skip
    add(
        "switch", "light", "Light",
        command_topic=topics.command("light"), state_topic=topics.state,
        value_template="{{ value_json.light }}", payload_on="on", payload_off="off",
        state_on="on", state_off="off", icon="mdi:lightbulb",
    )  # fmt: skip
    add(
        "select", "speed", "Speed",
        command_topic=topics.command("speed"), state_topic=topics.state,
        value_template="{{ value_json.speed }}", options=list(SPEED_NAMES),
        icon="mdi:speedometer",
    )  # fmt: skip
    return out


def removal_topics(messages: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Publishing an empty retained payload to these removes the entities from HA."""
    return [topic for topic, _ in messages]
