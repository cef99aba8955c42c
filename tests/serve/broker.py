"""A real mosquitto for the bridge tests (plain TCP on loopback, password file, restartable on
the same port), and a subscriber that records what the broker holds."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from tests.processes import dies_with_the_tests

from .support import require_tool

USER, PASSWORD = "bridge", "bridge-secret-pw"
HA_USER, HA_PASSWORD = "ha", "ha-secret-pw"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Mosquitto:
    def __init__(self, workdir: Path) -> None:
        self.exe = require_tool("mosquitto", "mosquitto")
        passwd = require_tool("mosquitto_passwd", "mosquitto")
        self.workdir = workdir
        self.port = free_port()
        self.password_file = workdir / "passwd"
        subprocess.run([passwd, "-c", "-b", str(self.password_file), USER, PASSWORD], check=True)
        subprocess.run([passwd, "-b", str(self.password_file), HA_USER, HA_PASSWORD], check=True)
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            "\n".join(
                [
                    "user root",
                    "allow_anonymous false",
                    f"password_file {self.password_file}",
                    "persistence false",  # a restart loses every retained message
                    "log_dest stderr",
                    "log_type error",
                    "log_type warning",
                    "log_type notice",
                    "log_type information",
                    f"listener {self.port} 127.0.0.1",
                    "",
                ]
            )
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{USER}:{PASSWORD}@127.0.0.1:{self.port}"

    def start(self) -> None:
        process = subprocess.Popen(
            dies_with_the_tests([self.exe, "-c", str(self.conf)]), stderr=subprocess.PIPE
        )
        assert process.stderr is not None
        for raw in process.stderr:  # mosquitto says when it listens
            line = raw.decode(errors="replace")
            if " running" in line:  # "Opening listen socket" is logged before the bind
                break
            if process.poll() is not None:
                raise RuntimeError(f"mosquitto did not start: {line}")
        threading.Thread(target=process.stderr.read, daemon=True).start()
        self.process = process

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


class Recorder:
    """Subscribes to everything as Home Assistant would, keeps the last payload per topic."""

    def __init__(self, port: int) -> None:
        self.last: dict[str, bytes] = {}
        self.messages: list[tuple[str, bytes]] = []
        self.cond = threading.Condition()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"ha-{uuid.uuid4()}")
        self.client.username_pw_set(HA_USER, HA_PASSWORD)
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.on_connect = lambda c, *a: c.subscribe("#", qos=1)
        self.client.on_message = self._on_message
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self.cond:
            payload = bytes(message.payload)
            self.messages.append((message.topic, payload))
            if payload:
                self.last[message.topic] = payload
            else:
                self.last.pop(message.topic, None)
            self.cond.notify_all()

    def clear(self) -> None:
        with self.cond:
            self.last.clear()
            self.messages.clear()

    def json(self, topic: str) -> Any:
        """The last payload on ``topic`` as JSON; {} when there is none (yet)."""
        with self.cond:
            payload = self.last.get(topic)
        return orjson.loads(payload) if payload else {}

    async def wait(self, predicate: Callable[[Recorder], bool], timeout: float = 20.0) -> None:
        def check() -> bool:
            with self.cond:
                return self.cond.wait_for(lambda: predicate(self), timeout)

        assert await asyncio.to_thread(check), f"timed out; topics: {sorted(self.last)[:40]}"

    def publish(self, topic: str, payload: bytes | str) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.disconnect()
        self.client.loop_stop()
