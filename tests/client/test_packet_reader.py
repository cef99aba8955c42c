"""The connection's own MQTT packet reader (packet_socket.py) against a scripted TLS broker.

Reports (QoS 0 PUBLISH on the report topic) skip paho; everything else is handed to paho
whole. The broker here writes packets cut at every byte (one TLS record each), several in one
record, larger than a TLS record, QoS 1 (paho must answer PUBACK), on another topic, and
finally a malformed length: every payload must arrive once, whole and in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from bambu_lan.config import PrinterConfig, Secret
from bambu_lan.packet_socket import report_payload
from bambu_lan.session import Link, SessionOptions
from bambu_lan.sim.certs import CertAuthority
from bambu_lan.trust import TrustConfig

SERIAL = "03919A3B1200123"
TOPIC = f"device/{SERIAL}/report".encode()

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def remaining_length(size: int) -> bytes:
    out = bytearray()
    while True:
        byte, size = size % 128, size // 128
        out.append(byte | (0x80 if size else 0))
        if not size:
            return bytes(out)


def publish(payload: bytes, *, topic: bytes = TOPIC, qos: int = 0, packet_id: int = 1) -> bytes:
    body = len(topic).to_bytes(2, "big") + topic
    if qos:
        body += packet_id.to_bytes(2, "big")
    body += payload
    return bytes([0x30 | qos << 1]) + remaining_length(len(body)) + body


async def read_packet(reader: asyncio.StreamReader) -> bytes:
    first = await reader.readexactly(1)
    size, shift, header = 0, 0, bytearray(first)
    while True:
        byte = (await reader.readexactly(1))[0]
        header.append(byte)
        size |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return bytes(header) + await reader.readexactly(size)


async def accept_session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """CONNECT -> CONNACK, SUBSCRIBE -> SUBACK (what a printer does first)."""
    connect = await read_packet(reader)
    assert connect[0] == 0x10
    writer.write(b"\x20\x02\x00\x00")
    subscribe = await read_packet(reader)
    assert subscribe[0] == 0x82 and TOPIC in subscribe
    packet_id = subscribe[2:4]
    writer.write(b"\x90\x03" + packet_id + b"\x00")
    await writer.drain()


async def run_link(
    sim_cert_dir: Path, script: Script, payloads: list[bytes] | None = None
) -> tuple[list[bytes], str, list[BaseException]]:
    """Connect a Link to a broker playing ``script``; the payloads it delivered (into
    ``payloads`` if given), why it closed, and any failure of the broker's script."""
    authority = CertAuthority.load_or_create(sim_cert_dir)
    failures: list[BaseException] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await accept_session(reader, writer)
            await script(reader, writer)
        except BaseException as exc:  # the test reports it
            failures.append(exc)
            raise
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    server = await asyncio.start_server(
        handle, "127.0.0.1", 0, ssl=authority.server_context(SERIAL)
    )
    port = server.sockets[0].getsockname()[1]
    cfg = PrinterConfig(
        host="127.0.0.1",
        serial=SERIAL,
        access_code=Secret("12345678"),
        port=port,
        trust=TrustConfig(ca_file=authority.ca_path),
    )
    payloads = [] if payloads is None else payloads
    async with server:
        link = Link(cfg, f"test-{uuid.uuid4()}", SessionOptions(), payloads.append)
        try:
            await link.open()
            await link.subscribe()
            async with asyncio.timeout(10):
                reason = await link.closed
        finally:
            link.abort()
    return payloads, reason, failures


async def test_reports_arrive_whole_and_in_order_however_tls_cuts_them(
    sim_cert_dir: Path,
) -> None:
    big = b'{"print":{"x":"' + b"y" * 20_000 + b'"}}'  # longer than one TLS record
    expected = [
        b'{"print":{"a":1}}',
        b'{"print":{"b":2}}',
        b'{"print":{"c":3}}',
        b'{"print":{"d":4}}',
        b'{"print":{"e":' + b"5" * 200 + b"}}",  # two length bytes
        big,
        b'{"huge":"' + b"z" * 300_000 + b'"}',  # about twenty records, three length bytes
        b'{"qos":1}',
        b'{"other":"topic"}',
        b'{"last":true}',
    ]

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # One byte per write: one TLS record each.
        for byte in publish(expected[0]):
            writer.write(bytes([byte]))
            await writer.drain()
        # Three packets in one record.
        writer.write(publish(expected[1]) + publish(expected[2]) + publish(expected[3]))
        # A packet cut inside its length bytes, then the rest with a whole packet after it.
        packet = publish(expected[4])
        writer.write(packet[:2])
        await writer.drain()
        await asyncio.sleep(0.05)  # the client reads the part alone
        writer.write(packet[2:] + publish(expected[5]) + publish(expected[6]))
        # QoS 1 goes through paho, which must acknowledge it.
        writer.write(publish(expected[7], qos=1, packet_id=0x1234))
        await writer.drain()
        assert await read_packet(reader) == b"\x40\x02\x12\x34"
        writer.write(publish(expected[8], topic=b"device/other/report"))
        writer.write(publish(expected[9]))
        await writer.drain()
        # A length of more than four bytes: the client must drop the connection.
        writer.write(b"\x30\xff\xff\xff\xff\x01")
        await writer.drain()
        await reader.read()  # until the client hangs up

    payloads, reason, failures = await run_link(sim_cert_dir, script)
    assert not failures
    assert payloads == expected
    assert reason  # closed, with paho's reason


async def test_a_clean_close_mid_packet_ends_the_link(sim_cert_dir: Path) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(publish(b'{"print":{"a":1}}') + publish(b'{"cut":1}')[:6])
        await writer.drain()

    payloads, reason, failures = await run_link(sim_cert_dir, script)
    assert not failures
    assert payloads == [b'{"print":{"a":1}}']
    assert reason


async def test_a_burst_longer_than_one_read_turn_is_read_to_the_end(sim_cert_dir: Path) -> None:
    # The reader stops after a bounded number of packets per turn of the event loop; the
    # rest of a burst must still come, though the socket will not be readable again for it.
    burst = [b'{"n":%d}' % i for i in range(600)]
    all_in = asyncio.Event()

    class Collected(list[bytes]):
        def append(self, payload: bytes) -> None:
            super().append(payload)
            if len(self) == len(burst):
                all_in.set()

    payloads = Collected()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"".join(publish(p) for p in burst))
        await writer.drain()
        async with asyncio.timeout(5):
            await all_in.wait()

    got, _reason, failures = await run_link(sim_cert_dir, script, payloads)
    assert not failures
    assert got == burst


@pytest.mark.parametrize(
    ("packet", "expected"),
    [
        (publish(b"{}"), b"{}"),
        (publish(b"{}", topic=b"device/other/report"), None),
        (publish(b"{}", qos=1), None),  # paho must acknowledge it
        (bytes([0x31]) + publish(b"{}")[1:], b"{}"),  # RETAIN set
        (b"\x20\x02\x00\x00", None),  # CONNACK
        (publish(b"x" * 300), b"x" * 300),
    ],
)
def test_report_payload_takes_only_qos0_reports_on_the_topic(
    packet: bytes, expected: bytes | None
) -> None:
    assert report_payload(packet, TOPIC) == expected
