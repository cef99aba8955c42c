"""Test helpers for the simulator: a raw MQTT client that sends exactly the bytes it is told.

Real client libraries refuse to misbehave (subscribe before CONNACK, send CONNECT and
SUBSCRIBE in one write); this one does, which is what testing the broker's rules needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import ssl
import uuid
from pathlib import Path
from typing import Any

from bambu_lan.sim import SimulatedPrinter
from bambu_lan.sim import mqtt_wire as wire

_ids = itertools.count(1)


def client_context(ca_path: Path, *, tls13_only: bool = False) -> ssl.SSLContext:
    """A client context that trusts the simulator's CA, as a client of a real printer would.

    TLS 1.2 (or 1.3 only, to test refusal); VERIFY_X509_STRICT cleared (needed on 3.13+).
    """
    context = ssl.create_default_context(cafile=str(ca_path))
    version = ssl.TLSVersion.TLSv1_3 if tls13_only else ssl.TLSVersion.TLSv1_2
    context.minimum_version = context.maximum_version = version
    context.verify_flags &= ~ssl.VERIFY_X509_STRICT
    return context


def pushall(sequence_id: str = "1") -> bytes:
    """The payload of a pushall request."""
    return json.dumps({"pushing": {"sequence_id": sequence_id, "command": "pushall"}}).encode()


def pushing_start(sequence_id: str = "2") -> bytes:
    """The payload of a pushing.start request (what watchdogs send)."""
    return json.dumps({"pushing": {"sequence_id": sequence_id, "command": "start"}}).encode()


def is_full_report(payload: bytes | bytearray) -> bool:
    """Whether a report payload is a full (``msg: 0``) report."""
    try:
        message = json.loads(payload)
    except ValueError:
        return False
    body = message.get("print") if isinstance(message, dict) else None
    return isinstance(body, dict) and body.get("msg") == 0 and "gcode_state" in body


class RawClient:
    """A bare MQTT 3.1.1 client over TLS (asyncio streams) for broker tests."""

    def __init__(
        self, sim: SimulatedPrinter, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.sim = sim
        self.reader = reader
        self.writer = writer
        self.parser = wire.PacketReader(role="client")
        self.client_id = ""

    @classmethod
    async def open(
        cls, sim: SimulatedPrinter, *, context: ssl.SSLContext | None = None
    ) -> RawClient:
        """TLS-connect to the simulator, checking its certificate names the serial."""
        reader, writer = await asyncio.open_connection(
            sim.host,
            sim.port,
            ssl=context or client_context(sim.ca_path),
            server_hostname=sim.serial,  # the leaf's CN is the serial (no IP SAN)
        )
        return cls(sim, reader, writer)

    @classmethod
    async def session(
        cls, sim: SimulatedPrinter, client_id: str | None = None, *, subscribe: bool = True
    ) -> RawClient:
        """A compliant client: connected, CONNACK 0 seen, subscribed to the report topic."""
        client = await cls.open(sim)
        ack = await client.connect(client_id)
        assert ack == wire.ConnAck(0), ack
        if subscribe:
            suback = await client.subscribe()
            assert suback.return_codes == (0,), suback
        return client

    # ---- sending ---------------------------------------------------------------------------

    async def send(self, *chunks: bytes) -> None:
        """Write the chunks in one write."""
        self.writer.write(b"".join(chunks))
        await self.writer.drain()

    def connect_packet(
        self,
        client_id: str | None = None,
        *,
        username: str | None = "bblp",
        password: str | None = None,
    ) -> bytes:
        """The bytes of a CONNECT with this simulator's credentials (unless overridden)."""
        self.client_id = client_id or f"test-{uuid.uuid4().hex[:8]}"
        return wire.encode_connect(
            self.client_id,
            username=username,
            password=self.sim.access_code if password is None else password,
            keepalive=30,
        )

    def subscribe_packet(self, *filters: str) -> bytes:
        """The bytes of a SUBSCRIBE (default: this printer's report topic)."""
        topics = [(f, 0) for f in filters or (self.sim.broker.report_topic,)]
        return wire.encode_subscribe(next(_ids) % 65535 + 1, topics)

    async def connect(self, client_id: str | None = None, **kwargs: Any) -> wire.ConnAck | None:
        """CONNECT and wait for the CONNACK (``None``: closed without one)."""
        await self.send(self.connect_packet(client_id, **kwargs))
        packet = await self.packet()
        assert packet is None or isinstance(packet, wire.ConnAck), packet
        return packet

    async def subscribe(self, *filters: str) -> wire.SubAck:
        """SUBSCRIBE and wait for the SUBACK (publishes arriving meanwhile are skipped)."""
        await self.send(self.subscribe_packet(*filters))
        while True:
            packet = await self.packet()
            assert packet is not None, "closed instead of SUBACK"
            if isinstance(packet, wire.SubAck):
                return packet

    async def publish(
        self, payload: bytes, *, topic: str | None = None, qos: int = 0, packet_id: int = 7
    ) -> None:
        """PUBLISH (default: to this printer's request topic)."""
        await self.send(
            wire.encode_publish(
                topic or self.sim.broker.request_topic,
                payload,
                qos=qos,
                packet_id=packet_id if qos else None,
            )
        )

    # ---- receiving -------------------------------------------------------------------------

    async def packet(self, timeout: float = 5.0) -> wire.ServerPacket | None:
        """The next packet from the server; ``None`` once the server closed the connection."""
        async with asyncio.timeout(timeout):
            while True:
                packet = self.parser.next_packet()
                if packet is not None:
                    return packet  # type: ignore[return-value]
                try:
                    data = await self.reader.read(65536)
                except (ConnectionError, ssl.SSLError):
                    return None
                if not data:
                    return None
                self.parser.feed(data)

    async def expect_closed(self, timeout: float = 5.0) -> list[wire.ServerPacket]:
        """Read until the server closes; returns the packets that came before."""
        seen: list[wire.ServerPacket] = []
        while (packet := await self.packet(timeout)) is not None:
            seen.append(packet)
        return seen

    async def next_publish(self, timeout: float = 5.0) -> wire.Publish:
        """The next PUBLISH (other packets are skipped)."""
        while True:
            packet = await self.packet(timeout)
            assert packet is not None, "connection closed while waiting for a PUBLISH"
            if isinstance(packet, wire.Publish):
                return packet

    async def full_report(self, timeout: float = 5.0) -> dict[str, Any]:
        """Ask for pushall and return the full report that answers it."""
        await self.publish(pushall())
        async with asyncio.timeout(timeout):
            while True:
                publish = await self.next_publish(timeout)
                if is_full_report(publish.payload):
                    report: dict[str, Any] = json.loads(publish.payload)
                    return report

    async def close(self) -> None:
        """Close our side (no DISCONNECT)."""
        self.writer.close()
        with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
            async with asyncio.timeout(2):
                await self.writer.wait_closed()

    async def disconnect(self) -> None:
        """Send DISCONNECT, then close."""
        with contextlib.suppress(OSError):
            await self.send(wire.encode_disconnect())
        await self.close()
