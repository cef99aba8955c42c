"""A real mosquitto broker configured like a printer, plus a scripted "printer" publisher.

TLS 1.2 only, a password file with ``bblp``, and an ACL that lets ``bblp`` read only the report
topic and write only the request topic. The publisher (user ``printer``) answers pushall and
get_version the way an A1 does, so the client is tested against a broker that is not ours.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from tests.processes import dies_with_the_tests

from bambu_lan.sim.certs import CertAuthority
from bambu_lan.sim.profiles import A1
from bambu_lan.sim.report import build_print_object, build_version_modules

PRINTER_USER = "printer"
PRINTER_PASSWORD = "printer-side-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class MosquittoPrinter:
    host: str
    port: int
    serial: str
    access_code: str
    ca_path: Path
    process: subprocess.Popen[bytes]
    full_report: dict[str, Any]
    requests: list[dict[str, Any]] = field(default_factory=list)
    publisher: mqtt.Client | None = None
    requests_seen: threading.Condition = field(default_factory=threading.Condition)

    def publish_report(self, body: dict[str, Any]) -> None:
        assert self.publisher is not None
        info = self.publisher.publish(
            f"device/{self.serial}/report", orjson.dumps({"print": body}), qos=1
        )
        info.wait_for_publish(5)

    def _on_request(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        request = orjson.loads(message.payload)
        with self.requests_seen:
            self.requests.append(request)
            self.requests_seen.notify_all()
        if "pushing" in request and request["pushing"].get("command") == "pushall":
            body = {**self.full_report, "command": "push_status", "msg": 0, "sequence_id": "1"}
            client.publish(f"device/{self.serial}/report", orjson.dumps({"print": body}))
        if "info" in request and request["info"].get("command") == "get_version":
            reply = {
                "info": {
                    "command": "get_version",
                    "sequence_id": request["info"]["sequence_id"],
                    "module": build_version_modules(A1, self.serial),
                    "result": "success",
                    "reason": "",
                }
            }
            client.publish(f"device/{self.serial}/report", orjson.dumps(reply))

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        with self.requests_seen:
            self.requests_seen.wait_for(lambda: len(self.requests) >= count, timeout)
            return list(self.requests)


@contextlib.contextmanager
def mosquitto_printer(workdir: Path) -> Iterator[MosquittoPrinter]:
    exe = shutil.which("mosquitto")
    passwd = shutil.which("mosquitto_passwd")
    if exe is None or passwd is None:
        import pytest

        pytest.skip("mosquitto is not installed (apt-get install mosquitto); .ci/run installs it")
    serial = A1.default_serial(777)
    code = "87654321"
    ca = CertAuthority.load_or_create(workdir / "certs")
    ca.leaf(serial)
    password_file = workdir / "passwd"
    subprocess.run([passwd, "-c", "-b", str(password_file), "bblp", code], check=True)
    subprocess.run([passwd, "-b", str(password_file), PRINTER_USER, PRINTER_PASSWORD], check=True)
    acl = workdir / "acl"
    acl.write_text(
        f"user bblp\ntopic read device/{serial}/report\ntopic write device/{serial}/request\n"
        f"user {PRINTER_USER}\ntopic readwrite device/{serial}/#\n"
    )
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        "\n".join(
            [
                "user root",
                "per_listener_settings false",
                "allow_anonymous false",
                f"password_file {password_file}",
                f"acl_file {acl}",
                "persistence false",
                "log_dest stderr",
                "log_type error",
                "log_type warning",
                "log_type notice",
                "log_type information",
                f"listener {port} 127.0.0.1",
                f"cafile {ca.ca_path}",
                f"certfile {ca.leaf_path(serial)}",
                f"keyfile {ca.leaf_key_path}",
                "tls_version tlsv1.2",
                "",
            ]
        )
    )
    process = subprocess.Popen(dies_with_the_tests([exe, "-c", str(conf)]), stderr=subprocess.PIPE)
    assert process.stderr is not None
    # mosquitto says when it listens: wait for that line instead of polling the port. Not
    # "Opening ... listen socket": it is logged before the bind (a refused connect under load).
    for raw in process.stderr:
        line = raw.decode(errors="replace")
        if " running" in line:
            break
        if process.poll() is not None:
            raise RuntimeError(f"mosquitto did not start: {line}")
    threading.Thread(target=process.stderr.read, daemon=True).start()
    report = build_print_object(A1, serial)
    broker = MosquittoPrinter(
        host="127.0.0.1",
        port=port,
        serial=serial,
        access_code=code,
        ca_path=ca.ca_path,
        process=process,
        full_report=report,
    )
    connected = threading.Event()
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"printer-{uuid.uuid4()}")
    publisher.username_pw_set(PRINTER_USER, PRINTER_PASSWORD)
    publisher.tls_set(ca_certs=str(ca.ca_path))
    publisher.tls_insecure_set(True)  # the leaf is named after the serial, not 127.0.0.1

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        client.subscribe(f"device/{serial}/request", qos=1)

    publisher.on_connect = on_connect
    publisher.on_subscribe = lambda *args: connected.set()
    publisher.on_message = broker._on_request
    publisher.connect("127.0.0.1", port)
    publisher.loop_start()
    assert connected.wait(10), "the test publisher could not subscribe"
    broker.publisher = publisher
    try:
        yield broker
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        process.terminate()
        process.wait(10)
