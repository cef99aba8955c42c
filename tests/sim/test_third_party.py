"""Third-party clients work against the simulator with nothing changed but trusting its CA.

Exactly what they need against a real printer: the CA file, TLS 1.2, user ``bblp`` and the
access code, and no host-name check (the certificate names the serial, not an address).
"""

from __future__ import annotations

import asyncio
import json
import shlex
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any

import aiomqtt
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from tests.sim.support import is_full_report, pushall

from bambu_lan.sim import SimThread, SimulatedPrinter

MOSQUITTO_SUB = shutil.which("mosquitto_sub")
needs_mosquitto_sub = pytest.mark.skipif(
    MOSQUITTO_SUB is None, reason="mosquitto_sub is not installed (apt install mosquitto-clients)"
)


async def run(*args: str, timeout: float = 20) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with asyncio.timeout(timeout):
            out, err = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace"), err.decode(errors="replace")


@needs_mosquitto_sub
async def test_mosquitto_sub_receives_reports(sim: SimulatedPrinter) -> None:
    assert MOSQUITTO_SUB is not None
    code, out, err = await run(
        MOSQUITTO_SUB,
        "-h", sim.host,
        "-p", str(sim.port),
        "--cafile", str(sim.ca_path),
        "--insecure",  # host-name check only; the chain is verified
        "--tls-version", "tlsv1.2",
        "-u", "bblp",
        "-P", sim.access_code,
        "-t", f"device/{sim.serial}/report",
        "-C", "1",
        "-W", "15",
    )  # fmt: skip
    assert code == 0, err
    report = json.loads(out.splitlines()[0])
    assert report["print"]["command"] == "push_status"
    assert sim.broker.closes.get("early_packet", 0) == 0


@needs_mosquitto_sub
async def test_the_printed_mosquitto_sub_line_works(sim: SimulatedPrinter) -> None:
    line = sim.mosquitto_sub_command()
    args = shlex.split(line)
    assert args[0] == "mosquitto_sub"
    for flag in ("--insecure", "--cafile", "--tls-version"):
        assert flag in args
    code, out, err = await run(*args, "-C", "1", "-W", "15")
    assert code == 0, err
    topic, _, payload = out.partition(" ")  # -v prints "topic payload"
    assert topic == f"device/{sim.serial}/report"
    assert json.loads(payload)["print"]["command"] == "push_status"


@needs_mosquitto_sub
async def test_mosquitto_sub_without_trusting_the_ca_fails(sim: SimulatedPrinter) -> None:
    assert MOSQUITTO_SUB is not None
    args = shlex.split(sim.mosquitto_sub_command())
    # Without --insecure the host-name check fails: 127.0.0.1 is not the serial, as with a
    # real printer; and TLS 1.3 only fails the handshake.
    no_insecure = [a for a in args if a != "--insecure"]
    code, _out, _err = await run(*no_insecure, "-C", "1", "-W", "5")
    assert code != 0
    tls13 = [("tlsv1.3" if a == "tlsv1.2" else a) for a in args]
    code, _out, _err = await run(*tls13, "-C", "1", "-W", "5")
    assert code != 0
    assert sim.broker.stats.connections == 0  # neither got as far as MQTT


def test_paho_script_gets_the_full_report(sim_thread: SimThread[SimulatedPrinter]) -> None:
    sim = sim_thread.target
    got_full = threading.Event()
    reports: list[dict[str, Any]] = []
    codes: list[Any] = []

    # A plain paho-mqtt 2.x script, as users write them for real printers.
    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        codes.append(reason)
        if reason.is_failure:
            return
        client.subscribe(f"device/{sim.serial}/report")
        client.publish(f"device/{sim.serial}/request", pushall())

    def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if is_full_report(message.payload):
            reports.append(json.loads(message.payload))
            got_full.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"paho-{uuid.uuid4()}")
    client.username_pw_set("bblp", sim.access_code)
    client.tls_set(ca_certs=str(sim.ca_path))
    client.tls_insecure_set(True)  # the certificate names the serial, not 127.0.0.1
    client.on_connect = on_connect
    client.on_message = on_message
    client.connect(sim.host, sim.port, keepalive=30)
    client.loop_start()
    try:
        assert got_full.wait(10), codes
    finally:
        client.disconnect()
        client.loop_stop()
    report = reports[0]["print"]
    assert report["msg"] == 0
    assert report["gcode_state"] == "IDLE"
    assert "ams" in report
    sim_thread.run(sim.broker.wait_for_sessions(0))
    assert sim_thread.call(lambda: sim.broker.closes) == {"disconnect": 1}


async def test_aiomqtt_gets_the_full_report(sim: SimulatedPrinter) -> None:
    async with aiomqtt.Client(
        sim.host,
        sim.port,
        username="bblp",
        password=sim.access_code,
        identifier=f"aiomqtt-{uuid.uuid4()}",
        tls_params=aiomqtt.TLSParameters(ca_certs=str(sim.ca_path)),
        tls_insecure=True,
    ) as client:
        await client.subscribe(f"device/{sim.serial}/report")
        await client.publish(f"device/{sim.serial}/request", pushall())
        async with asyncio.timeout(10):
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                if is_full_report(message.payload):
                    break
    await sim.broker.wait_for_close("disconnect")
    assert sim.broker.closes == {"disconnect": 1}


async def test_aiomqtt_with_a_wrong_code_sees_not_authorized(sim: SimulatedPrinter) -> None:
    client = aiomqtt.Client(
        sim.host,
        sim.port,
        username="bblp",
        password="wrong",
        tls_params=aiomqtt.TLSParameters(ca_certs=str(sim.ca_path)),
        tls_insecure=True,
    )
    with pytest.raises(aiomqtt.MqttError) as caught:
        async with client:
            pass
    assert "authori" in str(caught.value).lower()
    assert sim.broker.closes == {"bad_auth": 1}


@pytest.mark.filterwarnings("ignore:Callback API version 1 is deprecated:DeprecationWarning")
def test_paho_sees_code_7_when_the_session_limit_is_reached(sim_cert_dir: Path) -> None:
    # What ha-bambulab and other paho 1.x-style clients see on a full A1: rc 7, conn lost.
    disconnected = threading.Event()
    codes: list[int] = []

    def on_disconnect(client: mqtt.Client, userdata: Any, rc: int) -> None:
        codes.append(rc)
        disconnected.set()

    with SimThread(SimulatedPrinter(cert_dir=sim_cert_dir, max_sessions=0)) as st:
        sim = st.target
        client = mqtt.Client(CallbackAPIVersion.VERSION1, client_id=f"paho-{uuid.uuid4()}")
        client.username_pw_set("bblp", sim.access_code)
        client.tls_set(ca_certs=str(sim.ca_path))
        client.tls_insecure_set(True)
        client.on_disconnect = on_disconnect
        client.connect(sim.host, sim.port, keepalive=30)
        client.loop_start()
        try:
            assert disconnected.wait(10)
        finally:
            client.loop_stop()
        assert codes[0] == mqtt.MQTT_ERR_CONN_LOST == 7
        assert st.call(lambda: sim.broker.closes) == {"session_limit": 1}
