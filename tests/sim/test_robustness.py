"""Random and malformed bytes thrown at the sockets never take the server down.

A bounded hypothesis barrage (raw TCP, bytes inside TLS, mutated valid packet streams)
against one simulated printer; afterwards a compliant client still connects and receives, and
the broker never hit an internal error.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.sim.support import RawClient, client_context, pushall

from bambu_lan.sim import SimThread, SimulatedPrinter
from bambu_lan.sim import mqtt_wire as wire

BARRAGE = settings(
    max_examples=200,
    deadline=None,  # real sockets: timing varies, correctness does not
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def target(sim_cert_dir: Path) -> Iterator[SimThread[SimulatedPrinter]]:
    # No auth delay and room for many sessions: examples must not wait on each other.
    printer = SimulatedPrinter(
        cert_dir=sim_cert_dir, auth_delay=0.0, max_sessions=10_000, time_scale=20
    )
    with SimThread(printer) as running:
        yield running


def send_over_tls(sim: SimulatedPrinter, chunks: list[bytes]) -> None:
    context = client_context(sim.ca_path)
    with (
        socket.create_connection((sim.host, sim.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=sim.serial) as tls,
        contextlib.suppress(OSError),
    ):  # the server may hang up mid-way: that is fine
        for chunk in chunks:
            tls.sendall(chunk)


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


VALID_STREAM = b"".join(
    [
        wire.encode_connect("fuzz", username="bblp", password="00000000"),
        wire.encode_subscribe(1, [("device/039SIM000000000/report", 0)]),
        wire.encode_publish("device/039SIM000000000/request", pushall(), qos=1, packet_id=3),
        wire.encode_pingreq(),
        wire.encode_disconnect(),
    ]
)


@BARRAGE
@given(data=st.binary(max_size=512))
def test_raw_tcp_garbage(target: SimThread[SimulatedPrinter], data: bytes) -> None:
    sim = target.target
    with (
        socket.create_connection((sim.host, sim.port), timeout=5) as raw,
        contextlib.suppress(OSError),
    ):
        raw.sendall(data)


@BARRAGE
@given(
    data=st.binary(max_size=1024),
    connect_first=st.booleans(),
    chunk=st.integers(1, 128),
)
def test_garbage_inside_tls(
    target: SimThread[SimulatedPrinter], data: bytes, connect_first: bool, chunk: int
) -> None:
    sim = target.target
    prefix = wire.encode_connect("fuzz", username="bblp", password=sim.access_code)
    send_over_tls(sim, chunked((prefix if connect_first else b"") + data, chunk))


@BARRAGE
@given(
    flips=st.lists(
        st.tuples(st.integers(0, len(VALID_STREAM) - 1), st.integers(0, 255)),
        min_size=1,
        max_size=6,
    ),
    cut=st.integers(1, len(VALID_STREAM)),
    chunk=st.integers(1, 64),
)
def test_mutated_packet_streams(
    target: SimThread[SimulatedPrinter], flips: list[tuple[int, int]], cut: int, chunk: int
) -> None:
    sim = target.target
    # A real session's bytes with the right code, then a few bytes changed and the tail cut.
    stream = bytearray(VALID_STREAM.replace(b"00000000", sim.access_code.encode()))
    for index, value in flips:
        stream[index] = value
    send_over_tls(sim, chunked(bytes(stream[:cut]), chunk))


def test_after_the_barrage_a_compliant_client_is_served(
    target: SimThread[SimulatedPrinter],
) -> None:
    # Its own small barrage, so that it holds in any order (the hypothesis barrages above
    # may or may not have run first): raw TCP garbage, then garbage after a valid CONNECT.
    sim = target.target
    broker = sim.broker
    before = dict(target.call(lambda: broker.closes))
    with socket.create_connection((sim.host, sim.port), timeout=5) as raw:
        raw.sendall(b"GET / HTTP/1.0\r\n\r\n")
        with contextlib.suppress(OSError):
            raw.recv(1)  # the server hangs up
    connect = wire.encode_connect("fuzz", username="bblp", password=sim.access_code)
    send_over_tls(sim, [connect, b"\xff\xff\xff\xff\xff\xff"])
    # Let the server finish with every barrage connection first.
    target.run(broker.wait_for(lambda: broker.connection_count == 0, timeout=20))

    async def compliant() -> dict[str, object]:
        client = await RawClient.session(sim, "after-the-storm")
        try:
            return await client.full_report()
        finally:
            await client.disconnect()

    report = target.run(compliant(), timeout=15)
    assert report["print"]["msg"] == 0  # type: ignore[index]
    closes = target.call(lambda: broker.closes)
    assert closes.get("internal_error", 0) == 0, closes
    # The barrage went deep: past CONNECT, into malformed packets, and the TCP garbage
    # ended in the TLS handshake.
    assert closes.get("malformed", 0) > before.get("malformed", 0), (before, closes)
    assert closes.get("tls_handshake", 0) > before.get("tls_handshake", 0), (before, closes)
    assert target.call(lambda: sim.running)


def test_tls_handshake_garbage_after_hello(target: SimThread[SimulatedPrinter]) -> None:
    # A TLS record header that announces a ClientHello and then nonsense.
    sim = target.target
    for data in (b"\x16\x03\x01\x00\x05hello", b"\x16\x03\x03\xff\xff" + b"\x00" * 100):
        with socket.create_connection((sim.host, sim.port), timeout=5) as raw:
            raw.sendall(data)
            with contextlib.suppress(OSError):
                raw.recv(100)  # the server answers with an alert or closes
    with pytest.raises(ssl.SSLError):
        # And a client that expects TLS 1.3 only is refused, server still fine.
        send_over_tls_13(sim)


def send_over_tls_13(sim: SimulatedPrinter) -> None:
    context = client_context(sim.ca_path, tls13_only=True)
    with (
        socket.create_connection((sim.host, sim.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=sim.serial),
    ):
        pass
