"""Every model with a public capture, fed through the report pipeline (bytes in, typed state out).

The fixtures in ``captures/`` keep the shape and the numbers of real printers' reports
(captures/README.md says where each comes from and why the files are rebuilt by hand). The
expected values below were read by hand from the captures, not from our own output.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from bambu_lan.protocol.decode import decode_payload
from bambu_lan.protocol.events import EventTracker
from bambu_lan.protocol.merge import apply_push
from bambu_lan.protocol.state import (
    AmsKind,
    JobState,
    PrinterState,
    StateBuilder,
    info_from_version_reply,
)

CAPTURES = Path(__file__).parent / "captures"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CAPTURES / f"{name}.json").read_text(encoding="utf-8"))
    return data


class Pipeline:
    """What a client does with the report topic: decode, merge, build, derive events."""

    def __init__(self, serial: str) -> None:
        self.builder = StateBuilder(serial)
        self.tracker = EventTracker(serial)
        self.raw: dict[str, Any] = {}
        self.state: PrinterState | None = None

    def feed(self, message: dict[str, Any]) -> PrinterState | None:
        obj = decode_payload(orjson.dumps(message))
        assert obj is not None
        if "info" in obj:
            self.builder.set_info(info_from_version_reply(obj["info"], self.builder.serial))
            if self.raw:
                self.state = self.builder.build(self.raw, None, True)
            return self.state
        body = obj["print"]
        self.raw, full = apply_push(self.raw, body)
        self.state = self.builder.build(self.raw, None if full else body.keys(), True)
        self.tracker.update(self.state)
        return self.state


def run(name: str) -> tuple[dict[str, Any], PrinterState, Pipeline]:
    fixture = load(name)
    pipe = Pipeline(fixture["serial"])
    pipe.feed(fixture["pushall"])
    state = pipe.feed(fixture["get_version"])
    assert state is not None
    return fixture, state, pipe


@dataclass(frozen=True)
class Expected:
    model: str
    job: tuple[JobState, int, int | None, int, int]  # state, progress, remaining, layer, total
    nozzles: list[tuple[int, float, float, float, str, bool]]  # index, temp, target, mm, type, on
    bed: tuple[float, float]
    chamber: float | None
    fans: tuple[int | None, int | None, int | None, int | None]  # part, aux, chamber, heatbreak
    speed: tuple[int, int]
    lights: dict[str, str]
    # ams id, kind, humidity level, percent, temperature, drying, trays (id, type, colour, empty)
    ams: list[tuple[int, AmsKind, int | None, int | None, float, bool | None, list[Any]]]
    external: list[tuple[int, str, bool]]  # id, type, empty
    active_tray: int | None
    hms: list[str]


EXPECTED: dict[str, Expected] = {
    "p1p": Expected(
        model="P1P",
        job=(JobState.FAILED, 0, 759, 1, 70),
        nozzles=[(0, 21.25, 0.0, 0.4, "hardened_steel", True)],
        bed=(19.84375, 0.0),
        chamber=None,  # P1 reports a constant 5: no sensor
        fans=(0, 0, 0, 0),
        speed=(2, 100),
        lights={"chamber_light": "off"},
        ams=[
            (
                0,
                AmsKind.AMS,
                3,
                None,
                0.0,
                None,
                [(i, "PLA", "D357FEFF", False) for i in range(4)],
            )
        ],
        external=[(254, "PLA", False)],
        active_tray=0,
        hms=[],
    ),
    "p1p_no_ams": Expected(
        model="P1P",
        job=(JobState.FINISH, 100, 0, 124, 124),
        nozzles=[(0, 25.90625, 0.0, 0.4, "stainless_steel", True)],
        bed=(23.125, 0.0),
        chamber=None,
        fans=(0, 0, 0, 0),
        speed=(2, 100),
        lights={"chamber_light": "on"},
        ams=[],
        external=[(254, "PETG", False)],
        active_tray=254,
        hms=[],
    ),
    "x1c": Expected(
        model="X1 Carbon",
        job=(JobState.FINISH, 100, 0, 480, 480),
        nozzles=[(0, 26.0, 0.0, 0.4, "hardened_steel", True)],
        bed=(23.0, 0.0),
        chamber=25.0,  # device.ctc only: no chamber_temper in this firmware's report
        fans=(0, 0, 0, 0),
        speed=(2, 100),
        lights={"chamber_light": "on", "work_light": "flashing"},
        ams=[
            (
                0,
                AmsKind.AMS,
                5,
                8,
                26.2,
                False,
                [
                    (0, "PLA", "000000FF", False),
                    (1, "PLA", "7D6556FF", False),
                    (2, "PLA", "4D3324FF", False),
                    (3, "PLA", "AE835BFF", False),
                ],
            ),
            (
                1,
                AmsKind.AMS,
                5,
                4,
                25.4,
                False,
                [
                    (4, "ABS", "D32941FF", False),
                    (5, "ABS", "489FDFFF", False),
                    (6, "ABS", "FFFFFFFF", False),
                    (7, "ABS", "87909AFF", False),
                ],
            ),
            (
                2,
                AmsKind.AMS_2_PRO,
                4,
                9,
                65.0,
                True,  # drying: dry_time 583 minutes left
                [
                    (8, "", "", True),
                    (9, "ABS", "FF6A13FF", False),
                    (10, "ABS", "789D4AFF", False),
                    (11, "ABS", "000000FF", False),
                ],
            ),
            (128, AmsKind.AMS_HT, 5, 8, 45.2, False, [(128, "PA-CF", "000000FF", False)]),
        ],
        external=[(255, "", True)],  # vir_slot id 255, tray_type "", colour 00000000
        active_tray=None,
        hms=[],
    ),
    "p2s": Expected(
        model="P2S",
        job=(JobState.RUNNING, 64, 62, 170, 305),
        nozzles=[(0, 254.0, 255.0, 0.4, "hardened_steel", True)],
        bed=(70.0, 70.0),
        chamber=47.0,  # device.ctc.info.temp
        fans=(56, 0, 0, 100),  # fan_gear 142: part 142/255
        speed=(2, 100),
        lights={"chamber_light": "on", "work_light": "flashing"},
        ams=[
            (
                0,
                AmsKind.AMS_2_PRO,
                5,
                16,
                38.4,
                False,
                [
                    (0, "PLA", "FFFFFFFF", False),
                    (1, "PLA", "000000FF", False),
                    (2, "PLA", "000000FF", False),
                    (3, "PETG", "FFFFFFFF", False),
                ],
            )
        ],
        external=[(255, "", True)],
        active_tray=3,  # extruder snow 3: AMS 0 slot 3
        hms=[],
    ),
    "h2d": Expected(
        model="H2D",
        job=(JobState.RUNNING, 0, 115, 0, 26),
        nozzles=[
            (0, 264.0, 225.0, 0.4, "hardened_steel", True),  # temp 14745864 = 225 << 16 | 264
            (1, 40.0, 0.0, 0.4, "high_flow_hardened_steel", False),  # HH01
        ],
        bed=(100.0, 100.0),
        chamber=48.0,  # ctc 3932208 = 60 << 16 | 48
        fans=(7, 0, 0, 100),
        speed=(2, 100),
        lights={"chamber_light": "on", "work_light": "flashing", "chamber_light2": "on"},
        ams=[
            (
                0,
                AmsKind.AMS,
                4,
                24,
                26.2,
                False,
                [
                    (0, "PLA", "FFFFFFFF", False),
                    (1, "PLA", "000000FF", False),
                    (2, "PLA", "DE4343FF", False),
                    (3, "PETG", "000000FF", False),
                ],
            ),
            (128, AmsKind.AMS_HT, None, 6, 27.9, False, [(128, "PA-GF", "000000FF", False)]),
        ],
        external=[(254, "", True), (255, "", True)],
        active_tray=128,  # extruder 0 snow 32768 = 128 << 8: the AMS HT
        hms=[],
    ),
    "h2d_external_spool": Expected(
        model="H2D",
        job=(JobState.RUNNING, 58, 1620, 983, 1525),
        nozzles=[
            (0, 230.0, 230.0, 0.4, "hardened_steel", True),
            (1, 40.0, 40.0, 0.4, "hardened_steel", False),
        ],
        bed=(35.0, 35.0),
        chamber=27.0,
        fans=(100, 100, 30, 93),
        speed=(2, 100),
        lights={"chamber_light": "on", "work_light": "flashing", "chamber_light2": "on"},
        ams=[
            (
                0,
                AmsKind.AMS_2_PRO,
                5,
                14,
                29.5,
                False,
                [
                    (0, "PETG", "FFFFFFFF", False),
                    (1, "", "", True),
                    (2, "PETG", "2850E0FF", False),
                    (3, "PETG", "057748FF", False),
                ],
            ),
            (
                1,
                AmsKind.AMS,
                4,
                21,
                27.5,
                False,
                [
                    (4, "", "", True),
                    (5, "PLA", "FF6A13FF", False),
                    (6, "PLA", "7C4B00FF", False),
                    (7, "PLA", "D3B7A7FF", False),
                ],
            ),
            (
                2,
                AmsKind.AMS,
                5,
                14,
                27.1,
                False,
                [
                    (8, "PLA", "898989FF", False),
                    (9, "PLA", "000000FF", False),
                    (10, "", "", True),
                    (11, "PLA", "A03CF7FF", False),
                ],
            ),
            (
                3,
                AmsKind.AMS_2_PRO,
                5,
                13,
                27.2,
                False,
                [
                    (12, "PETG", "00000000", False),  # loaded (state 11), clear filament
                    (13, "PETG", "898989FF", False),
                    (14, "", "", True),
                    (15, "ASA", "000000FF", False),
                ],
            ),
            (128, AmsKind.AMS_HT, None, 31, 28.5, False, [(128, "PLA", "161616FF", False)]),
            (129, AmsKind.AMS_HT, None, 24, 27.2, False, [(129, "PETG", "000000FF", False)]),
        ],
        external=[(254, "PLA", False), (255, "TPU", False)],
        active_tray=255,  # snow 65280 = 255 << 8: the external spool with vir_slot id 255
        hms=[],
    ),
    "h2d_pro": Expected(
        model="H2D Pro",
        job=(JobState.IDLE, 0, 0, 0, 0),
        nozzles=[
            (0, 23.0, 0.0, 0.4, "tungsten_carbide", False),  # HS05
            (1, 23.0, 0.0, 0.4, "tungsten_carbide", True),  # extruder state 274: left active
        ],
        bed=(24.0, 0.0),
        chamber=23.0,
        fans=(0, 0, 0, 0),
        speed=(2, 100),
        lights={"chamber_light": "on", "work_light": "flashing", "chamber_light2": "on"},
        ams=[
            (0, AmsKind.AMS_2_PRO, 5, 18, 27.6, False, [(i, "", "", True) for i in range(4)]),
            (128, AmsKind.AMS_HT, None, 21, 24.9, False, [(128, "PLA", "C12E1FFF", False)]),
        ],
        external=[(254, "", True), (255, "TPU", False)],
        active_tray=None,
        hms=[],
    ),
    "h2s": Expected(
        model="H2S",
        job=(JobState.RUNNING, 42, 78, 24, 75),
        nozzles=[(0, 275.0, 275.0, 0.4, "hardened_steel", True)],
        bed=(105.0, 105.0),
        chamber=60.0,  # ctc 3932220 = 60 << 16 | 60
        fans=(10, 0, 0, 100),
        speed=(2, 100),
        lights={"chamber_light": "on", "work_light": "flashing", "chamber_light2": "on"},
        ams=[
            (
                0,
                AmsKind.AMS_2_PRO,
                1,
                36,
                42.7,
                False,
                [
                    (0, "ABS", "FFFFFFFF", False),
                    (1, "", "", True),
                    (2, "", "", True),
                    (3, "", "", True),
                ],
            )
        ],
        external=[(255, "", True)],
        active_tray=0,
        hms=[],
    ),
    "h2c": Expected(
        model="H2C",
        job=(JobState.FAILED, 0, 0, 0, 332),
        nozzles=[
            (0, 44.0, 0.0, 0.4, "hardened_steel", True),
            (1, 40.0, 0.0, 0.4, "hardened_steel", False),
        ],
        bed=(53.0, 0.0),
        chamber=35.0,
        fans=(0, 0, 0, 0),
        speed=(2, 100),
        lights={"chamber_light": "off", "work_light": "flashing", "chamber_light2": "off"},
        ams=[(0, AmsKind.AMS_2_PRO, 1, 29, 44.0, True, [(i, "", "", True) for i in range(4)])],
        external=[(254, "", True), (255, "", True)],
        active_tray=None,
        hms=[],
    ),
    "x2d": Expected(
        model="X2D",
        job=(JobState.RUNNING, 98, 2, 129, 140),
        nozzles=[
            (0, 50.0, 0.0, 0.4, "hardened_steel", False),
            (1, 250.0, 250.0, 0.4, "hardened_steel", True),  # state 33042: extruder 1
        ],
        bed=(70.0, 70.0),
        chamber=38.0,
        fans=(73, 13, 75, 47),  # fan_gear 12460475
        speed=(2, 100),
        lights={"chamber_light": "on", "work_light": "flashing"},
        ams=[
            (
                0,
                AmsKind.AMS_2_PRO,
                5,
                12,
                27.1,
                False,
                [
                    (0, "PLA", "161616FF", False),
                    (1, "PETG", "161616FF", False),
                    (2, "PLA", "FFFFFFFF", False),
                    (3, "ABS", "161616FF", False),
                ],
            )
        ],
        external=[(254, "", True), (255, "", True)],
        active_tray=1,  # extruder 1 snow 1: AMS 0 slot 1
        hms=["HMS_0500_0600_0002_0070"],
    ),
    "a2l": Expected(
        model="A2L",
        job=(JobState.IDLE, 0, 0, 0, 0),
        nozzles=[(0, 22.0, 0.0, 0.4, "stainless_steel", True)],  # HA00
        bed=(22.28125, 0.0),
        chamber=None,
        fans=(0, 0, 0, 0),
        speed=(2, 100),
        lights={"chamber_light": "off"},
        ams=[
            (
                16,  # the A2L's AMS Lite is unit 16
                AmsKind.AMS_LITE,
                5,
                None,  # humidity_raw "0": not reported
                0.0,
                False,
                [
                    (64, "", "", True),
                    (65, "PETG", "0ACC38FF", False),
                    (66, "", "", True),
                    (67, "", "", True),
                ],
            )
        ],
        external=[(255, "", True)],
        active_tray=None,
        hms=[],
    ),
}


def check(state: PrinterState, want: Expected) -> None:
    assert state.model == want.model
    job = state.job
    assert (job.state, job.progress, job.remaining_minutes, job.layer, job.total_layers) == want.job
    nozzles = [
        (n.index, n.temperature, n.target, n.diameter, n.type, n.active) for n in state.nozzles
    ]
    assert nozzles == want.nozzles
    (active,) = [n for n in state.nozzles if n.active]
    t = state.temperatures
    assert (t.nozzle, t.nozzle_target) == (active.temperature, active.target)
    assert (t.bed, t.bed_target) == want.bed
    assert t.chamber == want.chamber
    assert t.chamber_sensor is (want.chamber is not None)
    f = state.fans
    assert (f.part, f.aux, f.chamber, f.heatbreak) == want.fans
    assert (state.speed.level, state.speed.percent) == want.speed
    assert dict(state.lights) == want.lights
    units = [
        (
            u.ams_id,
            u.kind,
            u.humidity,
            u.humidity_percent,
            u.temperature,
            u.drying,
            [(tr.tray_id, tr.type, tr.color, tr.empty) for tr in u.trays],
        )
        for u in state.ams
    ]
    assert units == want.ams
    assert [(s.tray_id, s.type, s.empty) for s in state.external_spools] == want.external
    assert state.external_spool == (state.external_spools[0] if state.external_spools else None)
    assert state.active_tray == want.active_tray
    if state.active_tray is not None:
        loaded = state.tray(state.active_tray)
        assert loaded is not None, "active_tray points at no tray"
        assert not loaded.empty
    assert [a.code for a in state.hms] == want.hms


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_capture_reads_right(name: str) -> None:
    fixture, state, _ = run(name)
    source = fixture["_source"]
    assert {"repository", "path", "commit", "licence"} <= source.keys()
    check(state, EXPECTED[name])
    assert state.to_dict()["nozzles"][0]["index"] == 0
    orjson.dumps(state.to_dict())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_capture_reads_right_before_get_version(name: str) -> None:
    """The serial prefix alone names the model; nothing else depends on get_version except
    AMS kinds that only the module list tells."""
    fixture = load(name)
    pipe = Pipeline(fixture["serial"])
    state = pipe.feed(fixture["pushall"])
    assert state is not None
    assert state.model == EXPECTED[name].model
    assert state.active_tray == EXPECTED[name].active_tray


def test_h2d_real_deltas_switch_the_active_extruder_and_nozzles() -> None:
    fixture, state, pipe = run("h2d")
    left, nozzles, door = fixture["deltas"]
    job = state.job  # read, so built: later snapshots share it while no delta touches it
    switched = pipe.feed(left)  # device.extruder.state 274: the left extruder (1) is active
    assert switched is not None
    assert [n.active for n in switched.nozzles] == [False, True]
    assert switched.temperatures.nozzle == 40.0
    assert switched.active_tray is None  # extruder 1 snow 65279: nothing loaded
    assert switched.ams == state.ams  # same units and trays, only the loaded one changed
    assert switched.job is job  # untouched sections are shared
    changed = pipe.feed(nozzles)  # new nozzle list: 0.2 mm HS00 and 0.6 mm HX05
    assert changed is not None
    assert [(n.diameter, n.type) for n in changed.nozzles] == [
        (0.2, "stainless_steel"),
        (0.6, "tungsten_carbide"),
    ]
    after_door = pipe.feed(door)
    assert after_door is not None
    assert after_door.nozzles is changed.nozzles
    assert after_door.temperatures is changed.temperatures


def test_x1c_hyphenated_product_name_without_project_name_names_the_model() -> None:
    fixture = load("x1c")
    info = info_from_version_reply(fixture["get_version"]["info"], "ZZZ00A000000001")
    assert (info.model, info.model_code) == ("X1 Carbon", "BL-P001")


def test_get_version_modules_name_every_ams_kind() -> None:
    """x1c: ams/0, ams/1, n3f/2, n3s/128; the unit's own `info` says the same."""
    fixture = load("x1c")
    pipe = Pipeline("ZZZ00A000000001")  # unknown serial: no model default either
    pipe.feed(fixture["pushall"])
    before = pipe.state
    assert before is not None
    assert [u.kind for u in before.ams] == [
        AmsKind.AMS,
        AmsKind.AMS,
        AmsKind.AMS_2_PRO,
        AmsKind.AMS_HT,
    ]
    after = pipe.feed(fixture["get_version"])
    assert after is not None
    assert [u.kind for u in after.ams] == [u.kind for u in before.ams]
