"""The MQTT bridge against a real mosquitto: Home Assistant discovery, state, availability,
commands from Home Assistant, refusals published back, broker restarts and bad passwords."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bambu_lan.protocol.events import EventKind
from bambu_lan.serve.daemon import Daemon
from bambu_lan.serve.mqtt_bridge import MqttBridge
from bambu_lan.serve.settings import BrokerURL
from bambu_lan.sim import SimulatedPrinter

from .broker import PASSWORD, USER, Mosquitto, Recorder
from .support import RecordingSink
from .test_daemon import daemon_for, write_config


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    (tmp_path / "broker").mkdir()
    mosquitto = Mosquitto(tmp_path / "broker")
    mosquitto.start()
    yield mosquitto
    mosquitto.stop()


@pytest.fixture
def recorder(broker: Mosquitto) -> Iterator[Recorder]:
    rec = Recorder(broker.port)
    yield rec
    rec.close()


def bridge(broker: Mosquitto, **kwargs: object) -> MqttBridge:
    return MqttBridge(BrokerURL.parse(broker.url), **kwargs)  # type: ignore[arg-type]


@pytest.fixture
async def served(
    sim: SimulatedPrinter, broker: Mosquitto, recorder: Recorder, tmp_path: Path
) -> AsyncIterator[tuple[Daemon, RecordingSink]]:
    config = write_config(tmp_path / "c.toml", {"workshop": sim})
    rec = RecordingSink()
    daemon = daemon_for(config, bridge(broker), rec)
    await daemon.start()
    yield daemon, rec
    await daemon.stop()


def discovery_done(recorder: Recorder, serial: str) -> bool:
    """The last config the bridge sends for a printer has arrived (QoS 1, in order)."""
    return f"homeassistant/select/bambu_lan_{serial}/speed/config" in recorder.last


def discovery(recorder: Recorder, serial: str) -> dict[str, dict[str, object]]:
    with recorder.cond:
        items = list(recorder.last.items())
    import orjson

    return {
        topic: orjson.loads(payload)
        for topic, payload in items
        if topic.startswith("homeassistant/") and f"bambu_lan_{serial}/" in topic
    }


async def test_discovery_configs_state_and_availability(
    served: tuple[Daemon, RecordingSink], sim: SimulatedPrinter, recorder: Recorder
) -> None:
    serial = sim.serial
    base = f"bambu-lan/{serial}"
    await recorder.wait(lambda r: f"{base}/state" in r.last and discovery_done(r, serial))
    await recorder.wait(lambda r: r.last.get(f"{base}/availability") == b"online")
    assert recorder.last["bambu-lan/bridge/availability"] == b"online"
    configs = discovery(recorder, serial)
    unique_ids = [c["unique_id"] for c in configs.values()]
    assert len(unique_ids) == len(set(unique_ids))  # unique
    components = {topic.split("/")[1] for topic in configs}
    assert {"sensor", "button", "switch", "select"} <= components
    for topic, config in configs.items():
        assert topic.endswith("/config")
        device = config["device"]
        assert isinstance(device, dict)
        assert device["identifiers"] == [f"bambu_lan_{serial}"]
        assert device["serial_number"] == serial and device["model"] == "A1"
        assert device["name"] == "workshop" and device["manufacturer"] == "Bambu Lab"
        assert device.get("sw_version")
        availability = config["availability"]
        assert isinstance(availability, list)
        # Every topic a config names exists: the ones we publish, or our command topics.
        for entry in availability:
            assert entry["topic"] in recorder.last  # type: ignore[index]
        state_topic = config.get("state_topic")
        if state_topic is not None:
            assert state_topic in recorder.last
        command_topic = config.get("command_topic")
        if command_topic is not None:
            assert str(command_topic).startswith(f"{base}/command/")
    names = {c["unique_id"] for c in configs.values()}
    for key in ("progress", "nozzle_temp", "bed_target", "wifi", "pause", "light", "speed"):
        assert f"bambu_lan_{serial}_{key}" in names
    # AMS trays: type, colour and remaining per tray of the simulated AMS Lite.
    assert f"bambu_lan_{serial}_tray_0_remain" in names
    state = recorder.json(f"{base}/state")
    assert state["serial"] == serial and state["state"] == "IDLE"
    assert state["speed"] == "standard" and isinstance(state["nozzle_temperature"], float)
    assert state["tray_0_type"]
    # Every value template names a key that the state document has.
    for config in configs.values():
        template = str(config.get("value_template", ""))
        if config.get("state_topic") == f"{base}/state" and "value_json." in template:
            field = template.split("value_json.")[1].split(maxsplit=1)[0]
            assert field in state, field
    assert sim.access_code not in b"".join(p for _, p in recorder.messages).decode(errors="replace")


async def test_state_is_published_at_most_once_a_second_and_only_on_change(
    served: tuple[Daemon, RecordingSink], sim: SimulatedPrinter, recorder: Recorder
) -> None:
    daemon, rec = served
    topic = f"bambu-lan/{sim.serial}/state"
    await recorder.wait(lambda r: topic in r.last)
    sim.model.start_print(layers=50, name="long", layer_seconds=20)
    await rec.wait_for(lambda: len([e for e in rec.events if e.kind is EventKind.JOB_STARTED]) > 0)
    recorder.clear()
    count_before = len(rec.states) and daemon.hub.printers[sim.serial].states_seen
    await recorder.wait(lambda r: sum(1 for t, _ in r.messages if t == topic) >= 3, timeout=30)
    states_seen = daemon.hub.printers[sim.serial].states_seen - count_before
    with recorder.cond:
        payloads = [p for t, p in recorder.messages if t == topic]
    # The printer (time x20) reports far more often than once a second; the bridge does not.
    assert states_seen > 2 * len(payloads)
    assert all(a != b for a, b in itertools.pairwise(payloads))  # only changes


async def test_home_assistant_buttons_and_switches_drive_the_printer(
    served: tuple[Daemon, RecordingSink], sim: SimulatedPrinter, recorder: Recorder
) -> None:
    base = f"bambu-lan/{sim.serial}"
    await recorder.wait(lambda r: r.last.get(f"{base}/availability") == b"online")
    sim.model.start_print(layers=50, name="long", layer_seconds=20)
    await recorder.wait(lambda r: r.json(f"{base}/state").get("state") == "RUNNING")
    recorder.publish(f"{base}/command/pause", "PRESS")  # Home Assistant's pause button
    await recorder.wait(lambda r: r.json(f"{base}/command_result").get("action") == "pause")
    result = recorder.json(f"{base}/command_result")
    assert result["ok"] is True and result["action"] == "pause"
    assert sim.model.gcode_state == "PAUSE"
    await recorder.wait(lambda r: r.json(f"{base}/state").get("state") == "PAUSE")
    recorder.publish(f"{base}/command/light", "on")
    await recorder.wait(lambda r: r.json(f"{base}/state").get("light") == "on")
    recorder.publish(f"{base}/command/speed", "sport")
    await recorder.wait(lambda r: r.json(f"{base}/state").get("speed") == "sport")
    # A refusal is published back with the reason: Developer Mode off.
    sim.model.set_dev_mode(False)
    recorder.publish(f"{base}/command/resume", "PRESS")
    await recorder.wait(lambda r: r.json(f"{base}/command_result").get("action") == "resume")
    refused = recorder.json(f"{base}/command_result")
    assert refused["ok"] is False and "Developer Mode" in refused["message"]
    assert sim.model.gcode_state == "PAUSE"
    # Nonsense from the broker is refused too, with the reason.
    recorder.publish(f"{base}/command/speed", "warp")
    await recorder.wait(lambda r: r.json(f"{base}/command_result").get("payload") == "warp")
    assert "speed takes" in recorder.json(f"{base}/command_result").get("message")


async def test_broker_restart_gets_everything_back(
    served: tuple[Daemon, RecordingSink],
    sim: SimulatedPrinter,
    broker: Mosquitto,
    recorder: Recorder,
) -> None:
    daemon, _ = served
    base = f"bambu-lan/{sim.serial}"
    await recorder.wait(lambda r: f"{base}/state" in r.last and discovery_done(r, sim.serial))
    count = len(discovery(recorder, sim.serial))
    broker.stop()
    recorder.clear()
    # While the broker is away the printer starts a job: the state must not be lost.
    sim.model.start_print(layers=50, name="during-outage", layer_seconds=20)
    await served[1].wait_for(lambda: EventKind.JOB_STARTED in served[1].kinds(sim.serial))
    assert daemon.health()["sinks"]["mqtt"]["ok"] is False
    broker.start()  # same port, no persistence: nothing retained survived
    await recorder.wait(lambda r: discovery_done(r, sim.serial), timeout=40)
    assert len(discovery(recorder, sim.serial)) == count
    await recorder.wait(lambda r: r.last.get(f"{base}/availability") == b"online")
    await recorder.wait(lambda r: r.json(f"{base}/state").get("job_name") == "during-outage")
    assert recorder.last["bambu-lan/bridge/availability"] == b"online"
    assert daemon.health()["sinks"]["mqtt"]["connects"] == 2


async def test_stop_marks_printers_and_bridge_offline(
    sim: SimulatedPrinter, broker: Mosquitto, recorder: Recorder, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.toml", {"workshop": sim})
    daemon = daemon_for(config, bridge(broker))
    await daemon.start()
    base = f"bambu-lan/{sim.serial}"
    await recorder.wait(lambda r: r.last.get(f"{base}/availability") == b"online")
    await daemon.stop()
    await recorder.wait(lambda r: r.last.get(f"{base}/availability") == b"offline")
    await recorder.wait(lambda r: r.last.get("bambu-lan/bridge/availability") == b"offline")


async def test_wrong_password_and_broker_down_at_start_are_logged_and_survived(
    sim: SimulatedPrinter,
    broker: Mosquitto,
    recorder: Recorder,
    tmp_path: Path,
    serve_logs: pytest.LogCaptureFixture,
) -> None:
    config = write_config(tmp_path / "c.toml", {"workshop": sim})
    wrong = MqttBridge(BrokerURL.parse(f"mqtt://{USER}:not-the-pw@127.0.0.1:{broker.port}"))
    rec = RecordingSink()
    daemon = daemon_for(config, wrong, rec)
    await daemon.start()
    try:
        await rec.wait_for(lambda: EventKind.CONNECTED in rec.kinds(sim.serial))
        await rec.wait_for(lambda: "refused" in wrong.last_error)
        health = daemon.health()
        assert health["ok"] is False and health["sinks"]["mqtt"]["ok"] is False
        assert daemon.hub.printers[sim.serial].online  # the farm goes on
    finally:
        await daemon.stop()
    errors = [r.getMessage() for r in serve_logs.records if r.levelno >= logging.ERROR]
    assert any("refused the bridge" in e and "password" in e for e in errors), errors
    assert not any("not-the-pw" in r.getMessage() for r in serve_logs.records)
    assert PASSWORD not in "".join(r.getMessage() for r in serve_logs.records)

    # Broker down at start: the bridge waits for it, then publishes everything.
    broker.stop()
    rec2 = RecordingSink()
    daemon = daemon_for(config, bridge(broker), rec2)
    await daemon.start()
    try:
        await rec2.wait_for(lambda: EventKind.CONNECTED in rec2.kinds(sim.serial))
        broker.start()
        base = f"bambu-lan/{sim.serial}"
        await recorder.wait(lambda r: r.last.get(f"{base}/availability") == b"online", 40)
        await recorder.wait(lambda r: f"{base}/state" in r.last)
    finally:
        await daemon.stop()


async def test_two_instances_of_one_shard_warn(
    sim: SimulatedPrinter, broker: Mosquitto, tmp_path: Path, serve_logs: pytest.LogCaptureFixture
) -> None:
    config = write_config(tmp_path / "c.toml", {"workshop": sim})
    first = daemon_for(config, bridge(broker, instance_group="1/2"))
    second = daemon_for(config, bridge(broker, instance_group="1/2"))
    await first.start()
    await second.start()
    try:
        sinks = [d.hub.sinks[0] for d in (first, second)]
        async with asyncio.timeout(20):
            for sink in sinks:
                assert isinstance(sink, MqttBridge)
                await sink.other_instance_seen.wait()
    finally:
        await second.stop()
        await first.stop()
    warnings = [
        r.getMessage() for r in serve_logs.records if "another bambu-lan serve" in r.getMessage()
    ]
    assert len(warnings) == 2 and "shard 1/2" in warnings[0]


async def test_camera_pictures_become_a_home_assistant_image_entity(
    sim_factory, broker: Mosquitto, recorder: Recorder, tmp_path: Path, serve_logs
) -> None:
    """A printer whose camera answers gets an ``image`` entity fed with JPEGs; one whose
    camera does not gets none (and one log line, not one per attempt)."""
    cam = await sim_factory(serial="01S00A000000071", camera_port=0)
    blind = await sim_factory(serial="01S00A000000072")  # no camera listening
    config = write_config(tmp_path / "c.toml", {"cam": cam, "blind": blind})
    config.write_text(  # the profile says where the camera listens, as for any printer
        config.read_text().replace(
            f'serial = "{cam.serial}"\n',
            f'serial = "{cam.serial}"\ncamera_port = {cam.camera_port}\n',
        )
    )
    daemon = daemon_for(config, bridge(broker, camera_interval=0.5), RecordingSink())
    await daemon.start()
    picture = f"bambu-lan/{cam.serial}/camera"
    entity = f"homeassistant/image/bambu_lan_{cam.serial}/camera/config"
    try:
        await recorder.wait(lambda r: entity in r.last and picture in r.last, timeout=30)
        image = recorder.json(entity)
        recorder.clear()
        await recorder.wait(lambda r: picture in r.last, timeout=30)  # again, at the interval
    finally:
        await daemon.stop()
    assert image["image_topic"] == picture and image["content_type"] == "image/jpeg"
    assert image["unique_id"] == f"bambu_lan_{cam.serial}_camera"
    assert image["device"]["identifiers"] == [f"bambu_lan_{cam.serial}"]
    jpeg = recorder.last[picture]
    assert jpeg.startswith(b"\xff\xd8") and jpeg.endswith(b"\xff\xd9")
    with recorder.cond:
        topics = {t for t, _ in recorder.messages}
    assert f"bambu-lan/{blind.serial}/camera" not in topics
    assert not any(t.startswith(f"homeassistant/image/bambu_lan_{blind.serial}") for t in topics)
    failures = [r for r in serve_logs.records if "no camera picture" in r.getMessage()]
    assert len(failures) == 1 and blind.serial in failures[0].getMessage()
