"""The MQTT bridge: the farm into an existing broker, with Home Assistant discovery.

Per printer, under ``<prefix>/<serial>/`` (prefix ``bambu-lan`` by default):

* ``state``: the flat JSON state (``state_json``), retained, at most once per second and only
  when it changed;
* ``event``: each event as JSON (QoS 1, kept by the client while the broker is away);
* ``availability``: ``online`` / ``offline``, retained; ``<prefix>/bridge/availability`` is the
  bridge's own, with a last will of ``offline``;
* ``command/<action>``: from Home Assistant (``pause``, ``resume``, ``stop``, ``light`` on/off,
  ``speed`` silent/standard/sport/ludicrous or 1-4), sent with the library's checks; the
  outcome, accepted or refused with the reason, goes to ``command_result`` (retained, QoS 1).

Discovery configs go under ``<discovery_prefix>/`` (``homeassistant``), retained; they are sent
again when Home Assistant announces itself (``homeassistant/status`` = ``online``) and, with
every state, after each reconnect to the broker: a broker restarted without persistence gets
everything back.

paho runs its network loop on its own thread (one connection; reconnects with backoff); its
callbacks hand over to the event loop, where all the bridge's state lives.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bambu_lan.errors import BambuError
from bambu_lan.protocol.events import Event, EventKind
from bambu_lan.protocol.state import PrinterState
from bambu_lan.serve.camera_pictures import PictureTaker
from bambu_lan.serve.ha_discovery import (
    DeviceInfo,
    Topics,
    bridge_availability,
    discovery_messages,
)
from bambu_lan.serve.hub import Hub, Sink, WatchedPrinter
from bambu_lan.serve.pacing import StatePacer
from bambu_lan.serve.settings import BrokerURL
from bambu_lan.serve.state_json import SPEED_NAMES, state_document, tray_ids
from bambu_lan.serve.text import safe

log = logging.getLogger("bambu_lan.serve.mqtt")

HEARTBEAT_SECONDS = 30.0
#: QoS 1 messages (events, availability, results) kept while the broker is unreachable.
MAX_QUEUED = 50_000
#: Discovery configs (about 45 per printer) go out this many at a time, each batch once the
#: broker has acknowledged the last: 45,000 at once for 1,000 printers would sit in paho's
#: queue as about 150 MB the process never gives back, and a large batch holds the event
#: loop (and every printer's report) for its whole length.
DISCOVERY_BATCH = 100


@dataclass(slots=True)
class _Out:
    """What the bridge last published for one printer."""

    watched: WatchedPrinter
    topics: Topics
    pacer: StatePacer
    pending: PrinterState | None = None  # held by the pacer until ``timer``
    last_payload: bytes = b""
    timer: asyncio.TimerHandle | None = None
    device: DeviceInfo | None = None  # what the discovery configs are to describe
    published: DeviceInfo | None = None  # what the broker's configs describe
    camera: bool = False  # a picture was taken: discovery announces the image entity
    #: The last command's outcome, published again after a broker restart.
    last_result: bytes = b'{"ok":null,"action":null,"message":"no command yet"}'


class MqttBridge(Sink):
    name = "mqtt"

    def __init__(
        self,
        url: BrokerURL,
        *,
        ca_file: str | os.PathLike[str] | None = None,
        prefix: str = "bambu-lan",
        discovery_prefix: str = "homeassistant",
        min_interval: float = 1.0,
        instance_group: str = "all",
        keepalive: int = 30,
        camera_interval: float = 60.0,
    ) -> None:
        self.url = url
        self.ca_file = ca_file
        self.prefix = prefix
        self.discovery_prefix = discovery_prefix
        self.min_interval = min_interval
        self.instance_group = instance_group  # the shard: two instances of one group warn
        self.keepalive = keepalive
        self.camera_interval = camera_interval  # 0: no pictures
        self.published_pictures = 0
        self.instance_id = uuid.uuid4().hex[:12]
        self.hub: Hub | None = None
        self.connected = False
        self.last_error = ""
        self.published_states = 0
        self.published_events = 0
        self.connects = 0
        self._out: dict[str, _Out] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: mqtt.Client | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        #: Printers whose discovery configs are to be published (a dict as an ordered set);
        #: the configs are built when their batch goes out, so none wait in memory.
        self._discovery_due: dict[str, None] = {}
        self._discovery_ready = asyncio.Event()
        self._awaited_mid = -1  # the batch's last message (paho's thread compares it)
        self._acked: asyncio.Future[None] | None = None
        self._others: set[str] = set()
        self._stopping = False
        #: Set when another instance of the same shard is heard in the broker.
        self.other_instance_seen = asyncio.Event()
        self._version = ""

    # -- lifecycle --

    async def start(self, hub: Hub) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            self._version = version("bambu-lan")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            self._version = ""
        self.hub = hub
        self._loop = asyncio.get_running_loop()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"bambu-lan-serve-{self.instance_id}",
            clean_session=True,
        )
        if self.url.username:
            client.username_pw_set(
                self.url.username, self.url.password.reveal() if self.url.password else None
            )
        client.will_set(bridge_availability(self.prefix), "offline", qos=1, retain=True)
        if self.url.tls:
            client.tls_set(ca_certs=str(self.ca_file) if self.ca_file else None)
        client.reconnect_delay_set(1, 30)
        client.max_queued_messages_set(MAX_QUEUED)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        self._client = client
        log.info("MQTT bridge: connecting to %s", self.url)
        client.connect_async(self.url.host, self.url.port, keepalive=self.keepalive)
        client.loop_start()  # paho's thread retries the first connection too
        self._heartbeat = self._loop.create_task(self._beat(), name="serve-mqtt-heartbeat")
        self._spawn(self._send_discovery())
        if self.camera_interval > 0:
            pictures = PictureTaker(self.camera_interval, self._camera_printers, self._picture)
            self._spawn(pictures.run())

    async def stop(self) -> None:
        self._stopping = True
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        for task in list(self._tasks):
            task.cancel()
        for out in self._out.values():
            self._cancel_held(out)
        client = self._client
        if client is None:
            return
        infos = []
        if self.connected:
            for out in self._out.values():
                infos.append(self._publish(out.topics.availability, b"offline", qos=1, retain=True))
            infos.append(
                self._publish(bridge_availability(self.prefix), b"offline", qos=1, retain=True)
            )
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, _wait_all, infos, 5.0)
        client.disconnect()
        await loop.run_in_executor(None, client.loop_stop)
        self._client = None
        self.connected = False

    def health(self) -> dict[str, Any]:
        return {
            "ok": self.connected,
            "broker": str(self.url),
            "connected": self.connected,
            "connects": self.connects,
            "last_error": self.last_error,
            "states_published": self.published_states,
            "events_published": self.published_events,
            "pictures_published": self.published_pictures,
            "discovery_pending": len(self._discovery_due),
            "other_instances": sorted(self._others),
        }

    # -- paho's thread: hand over to the loop --

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        assert self._loop is not None
        if reason.is_failure:
            self._loop.call_soon_threadsafe(self._broker_refused, str(reason))
        else:
            self._loop.call_soon_threadsafe(self._broker_up)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        assert self._loop is not None
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._broker_down, str(reason))

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any
    ) -> None:
        if mid == self._awaited_mid and self._loop is not None:
            self._loop.call_soon_threadsafe(_finish, self._acked)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._message, message.topic, bytes(message.payload))

    # -- broker connection, on the loop --

    def _broker_refused(self, reason: str) -> None:
        error = f"the broker refused the bridge: {reason}"
        if error != self.last_error:
            hint = (
                "check the user and password in --mqtt / [serve] mqtt"
                if "password" in reason.lower() or "authori" in reason.lower()
                else "check the broker's log"
            )
            log.error("MQTT %s (%s); retrying every 30 s at most", error, hint)
        self.last_error = error

    def _broker_down(self, reason: str) -> None:
        was = self.connected
        self.connected = False
        _finish(self._acked)  # the batch is lost with the connection: all is sent again
        if self._stopping:
            return
        if was:
            self.last_error = f"connection lost: {reason}"
            log.warning(
                "MQTT broker %s: connection lost (%s); reconnecting, everything is published "
                "again on return",
                self.url,
                reason,
            )
        elif not self.last_error:
            self.last_error = f"cannot connect: {reason}"
            log.warning("MQTT broker %s unreachable (%s); retrying", self.url, reason)

    def _broker_up(self) -> None:
        client = self._client
        if client is None:
            return
        self.connected = True
        self.connects += 1
        self.last_error = ""
        log.info("MQTT broker %s: connected; publishing discovery and states", self.url)
        self._discovery_due.clear()  # everything is queued again below
        client.subscribe(
            [
                (f"{self.prefix}/+/command/+", 1),
                (f"{self.discovery_prefix}/status", 1),
                (self._heartbeat_topic(), 0),
            ]
        )
        self._publish(bridge_availability(self.prefix), b"online", qos=1, retain=True)
        self._publish_heartbeat()
        self._spawn(self._republish_all())

    async def _republish_all(self) -> None:
        """Everything retained, again: the broker may have lost it."""
        for index, out in enumerate(list(self._out.values())):
            if not self.connected:
                return
            self._publish_printer(out, force=True)
            if index % 50 == 49:
                await asyncio.sleep(0)  # let reports in while a large farm is republished

    def _publish_printer(self, out: _Out, *, force: bool) -> None:
        w = out.watched
        if w.state is not None:  # discovery needs the model, the trays, the chamber sensor
            self._publish_discovery(out, force=force)
        self._publish(
            out.topics.availability, b"online" if w.online else b"offline", qos=1, retain=True
        )
        self._publish(out.topics.command_result, out.last_result, qos=1, retain=True)
        if w.state is not None:
            if force:
                out.last_payload = b""
            self._cancel_held(out)
            assert self._loop is not None
            out.pacer.release(self._loop.time())
            self._send_state(out, w.state)

    # -- sink interface --

    def printer_added(self, printer: WatchedPrinter) -> None:
        out = _Out(printer, Topics(self.prefix, printer.serial), StatePacer(self.min_interval))
        self._out[printer.serial] = out
        if self.connected:
            self._publish_printer(out, force=True)

    def printer_removed(self, printer: WatchedPrinter) -> None:
        out = self._out.pop(printer.serial, None)
        if out is None:
            return
        self._cancel_held(out)
        self._discovery_due.pop(printer.serial, None)
        if self.connected:
            # Empty retained payloads remove the entities from Home Assistant and the state.
            for topic in self._discovery_topics(out.published):
                self._publish(topic, b"", qos=1, retain=True)
            self._publish(out.topics.state, b"", qos=1, retain=True)
            self._publish(out.topics.availability, b"", qos=1, retain=True)

    def state(self, printer: WatchedPrinter, state: PrinterState) -> None:
        out = self._out.get(printer.serial)
        if out is None or not self.connected:
            return  # all states are published again on (re)connect
        assert self._loop is not None
        delay = out.pacer.offer(self._loop.time())
        if delay is None:
            self._cancel_held(out)
            if not self._send_state(out, state):
                out.pacer.refund()  # nothing new: the next change may go at once
        else:
            out.pending = state  # a newer state replaces it; else it goes out after delay
            if out.timer is None:
                out.timer = self._loop.call_later(delay, self._release, out)

    def event(self, printer: WatchedPrinter, event: Event) -> None:
        out = self._out.get(printer.serial)
        if out is None:
            return
        if event.kind in (EventKind.CONNECTED, EventKind.RECONNECTED, EventKind.DISCONNECTED):
            online = event.kind is not EventKind.DISCONNECTED
            self._publish(
                out.topics.availability, b"online" if online else b"offline", qos=1, retain=True
            )
        payload = orjson.dumps({**event.to_dict(), "name": printer.name}, default=str)
        self._publish(out.topics.event, payload, qos=1, retain=False)
        self.published_events += 1

    # -- publishing --

    def _release(self, out: _Out) -> None:
        """A held state's turn has come and no newer one replaced it: send it."""
        out.timer = None
        state, out.pending = out.pending, None
        if state is None or not self.connected:
            return
        assert self._loop is not None
        out.pacer.release(self._loop.time())
        self._send_state(out, state)

    def _cancel_held(self, out: _Out) -> None:
        if out.timer is not None:
            out.timer.cancel()
            out.timer = None
        out.pending = None

    def _send_state(self, out: _Out, state: PrinterState) -> bool:
        """Publish ``state`` (retained) unless it is what the broker has; True if sent."""
        self._publish_discovery(out, force=False)
        payload = orjson.dumps(state_document(state, name=out.watched.name, online=True))
        if payload == out.last_payload:
            return False
        self._publish(out.topics.state, payload, qos=0, retain=True)
        out.last_payload = payload
        self.published_states += 1
        return True

    def _publish_discovery(self, out: _Out, *, force: bool) -> None:
        """Queue the printer's discovery configs if what they describe changed."""
        w, state = out.watched, out.watched.state
        device = DeviceInfo(
            serial=w.serial,
            name=w.name,
            model=w.model,
            firmware=w.firmware,
            chamber_sensor=bool(state and state.temperatures.chamber_sensor),
            trays=tray_ids(state),
            ams_units=tuple(u.ams_id for u in state.ams) if state else (),
            camera=out.camera,
        )
        if device == out.device and not force:
            return
        out.device = device
        self._discovery_due[w.serial] = None
        self._discovery_ready.set()

    def _discovery(self, device: DeviceInfo) -> list[tuple[str, dict[str, Any]]]:
        return discovery_messages(
            device,
            prefix=self.prefix,
            discovery_prefix=self.discovery_prefix,
            version=self._version,
        )

    def _discovery_topics(self, device: DeviceInfo | None) -> set[str]:
        return {topic for topic, _ in self._discovery(device)} if device else set()

    async def _send_discovery(self) -> None:
        """Publish the due discovery configs in batches (see DISCOVERY_BATCH)."""
        while True:
            await self._discovery_ready.wait()
            self._discovery_ready.clear()
            while self._discovery_due and self.connected:
                last, sent = None, 0
                while self._discovery_due and sent < DISCOVERY_BATCH:
                    serial = next(iter(self._discovery_due))
                    del self._discovery_due[serial]
                    out = self._out.get(serial)
                    if out is None or out.device is None:
                        continue
                    messages = self._discovery(out.device)
                    gone = self._discovery_topics(out.published) - {t for t, _ in messages}
                    for topic in gone:  # e.g. an AMS unplugged
                        self._publish(topic, b"", qos=1, retain=True)
                    for topic, config in messages:
                        last = self._publish(topic, orjson.dumps(config), qos=1, retain=True)
                    out.published = out.device
                    sent += len(messages)
                if last is not None:
                    await self._acked_or_down(last)

    async def _acked_or_down(self, info: mqtt.MQTTMessageInfo) -> None:
        """Until the broker acknowledges ``info``'s message or the connection drops."""
        assert self._loop is not None
        done = self._acked = self._loop.create_future()
        self._awaited_mid = info.mid
        try:
            if not _acknowledged(info):  # checked after _awaited_mid is set: no lost wake-up
                await done
        finally:
            self._awaited_mid, self._acked = -1, None

    def _publish(self, topic: str, payload: bytes, *, qos: int, retain: bool) -> Any:
        client = self._client
        if client is None:
            return None
        return client.publish(topic, payload, qos=qos, retain=retain)

    # -- camera pictures for Home Assistant's image entity --

    def _camera_printers(self) -> list[WatchedPrinter]:
        if not self.connected:
            return []
        return [out.watched for out in self._out.values() if out.watched.online]

    def _picture(self, printer: WatchedPrinter, jpeg: bytes) -> None:
        out = self._out.get(printer.serial)
        if out is None or out.watched is not printer or not self.connected:
            return
        if not out.camera:
            out.camera = True
            self._publish_discovery(out, force=False)
        self._publish(out.topics.camera, jpeg, qos=0, retain=False)
        self.published_pictures += 1

    # -- incoming: commands, Home Assistant's birth, other instances --

    def _message(self, topic: str, payload: bytes) -> None:
        if topic == f"{self.discovery_prefix}/status":
            if payload.strip().lower() == b"online" and self.connected:
                log.info("Home Assistant came online: sending discovery again")
                for out in self._out.values():
                    if out.watched.state is not None:
                        self._publish_discovery(out, force=True)
            return
        if topic == self._heartbeat_topic():
            self._heard(payload)
            return
        parts = topic.split("/")
        if len(parts) >= 4 and parts[-2] == "command":
            self._spawn(self._command(parts[-3], parts[-1], payload))

    async def _command(self, serial: str, action: str, payload: bytes) -> None:
        out = self._out.get(serial)
        if out is None:
            log.warning(
                "MQTT command %s for %s: not a printer this instance watches", action, serial
            )
            return
        text = payload.decode(errors="replace").strip()
        action = safe(action, 40)
        result: dict[str, Any] = {"action": action, "payload": safe(text, 40), "at": time.time()}
        try:
            value = _command_value(action, text)
            reply = await out.watched.command(action, value)
        except (BambuError, ValueError) as exc:
            hint = getattr(exc, "hint", None)
            result.update(ok=False, message=f"{action} refused: {exc}", hint=hint)
            log.warning(
                "%s (%s) command %s from MQTT refused: %s",
                safe(out.watched.name),
                serial,
                action,
                safe(exc),
            )
        else:
            result.update(
                ok=True,
                confirmed=reply.confirmed,
                message=f"{action}: accepted" + (" and confirmed" if reply.confirmed else ""),
            )
            log.info(
                "%s (%s) command %s from MQTT: accepted", safe(out.watched.name), serial, action
            )
        out.last_result = orjson.dumps(result)
        self._publish(out.topics.command_result, out.last_result, qos=1, retain=True)

    def _heartbeat_topic(self) -> str:
        return f"{self.prefix}/bridge/instances/{self.instance_group.replace('/', '-of-')}"

    def _publish_heartbeat(self) -> None:
        body = {"instance": self.instance_id, "host": socket.gethostname(), "pid": os.getpid()}
        self._publish(self._heartbeat_topic(), orjson.dumps(body), qos=0, retain=False)

    def _heard(self, payload: bytes) -> None:
        try:
            body = orjson.loads(payload)
            other = str(body["instance"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        if other == self.instance_id or other in self._others:
            return
        self._others.add(other)
        self.other_instance_seen.set()
        self._publish_heartbeat()  # answer at once, so the newcomer learns of us too
        log.warning(
            "another bambu-lan serve (host %s, pid %s) publishes the same printers (shard %s) "
            "into this broker: each printer gets two sessions and every update is published "
            "twice; give each instance its own --shard I/N",
            safe(body.get("host")),
            safe(body.get("pid")),
            self.instance_group,
        )

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            if self.connected:
                self._publish_heartbeat()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def _command_value(action: str, text: str) -> Any:
    if action in ("pause", "resume", "stop"):
        return None
    if action == "light":
        lowered = text.lower()
        if lowered not in ("on", "off"):
            raise ValueError(f"light takes on or off, not {safe(text, 20)!r}")
        return lowered == "on"
    if action == "speed":
        lowered = text.lower()
        if lowered in SPEED_NAMES:
            return SPEED_NAMES.index(lowered) + 1
        if lowered in ("1", "2", "3", "4"):
            return int(lowered)
        raise ValueError(f"speed takes {', '.join(SPEED_NAMES)} or 1-4, not {safe(text, 20)!r}")
    raise ValueError(f"unknown command {safe(action, 20)!r}")


def _finish(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)


def _acknowledged(info: Any) -> bool:
    """The broker has the message, or paho will never send it (then waiting is pointless)."""
    try:
        return bool(info.is_published())
    except (RuntimeError, ValueError):
        return True


def _wait_all(infos: list[Any], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for info in infos:
        if info is None:
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        try:
            info.wait_for_publish(remaining)
        except (RuntimeError, ValueError):
            return  # not connected any more: the will says offline
