"""Helpers for the doctor's tests: fast timeouts, configs for a simulator, fake services.

Everything listens on 127.0.0.1 and is closed by its owner; nothing sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from pathlib import Path
from typing import Any

from bambu_lan.config import PrinterConfig, Secret
from bambu_lan.doctor import Diagnosis, DoctorTimeouts, Status
from bambu_lan.sim import SimulatedPrinter
from bambu_lan.trust import TrustConfig

#: Short, but with room for a loaded machine: the simulator answers in milliseconds.
FAST = DoctorTimeouts(
    resolve=1.0,
    tcp=2.0,
    tls=2.0,
    tls13=1.0,
    connack=2.0,
    subscribe=2.0,
    first_report=1.0,
    reply=3.0,
    quirk=2.0,
    control_settle=0.0,
)


def config_for(
    sim: SimulatedPrinter,
    known_printers: Path,
    *,
    trust: str = "ca",
    **overrides: Any,
) -> PrinterConfig:
    """A config for ``sim`` (not validated: tests give invalid ones on purpose)."""
    trust_config = {
        "ca": TrustConfig(ca_file=sim.ca_path, known_printers=known_printers),
        "pin": TrustConfig(known_printers=known_printers),
        "insecure": TrustConfig(insecure=True, known_printers=known_printers),
    }[trust]
    values: dict[str, Any] = {
        "host": sim.host,
        "port": sim.port,
        "serial": sim.serial,
        "access_code": Secret(sim.access_code),
        "trust": trust_config,
    }
    values.update(overrides)
    if isinstance(values["access_code"], str):
        values["access_code"] = Secret(values["access_code"])
    return PrinterConfig(**values)


def assert_only_cause(diagnosis: Diagnosis, cause: str) -> None:
    """The diagnosis names ``cause`` and nothing else; the later phases were skipped."""
    failed = [s for s in diagnosis.steps if s.status is Status.FAIL]
    assert [s.cause for s in failed] == [cause], [(s.id, s.cause, s.evidence) for s in failed]
    assert diagnosis.cause == cause
    assert not diagnosis.ok
    assert diagnosis.fix
    assert diagnosis.verdict.startswith("FAIL")
    # Steps of later phases were skipped (the other checks of the same phase still run).
    phase = failed[0].id.split(".")[0]
    index = diagnosis.steps.index(failed[0])
    later = [s for s in diagnosis.steps[index + 1 :] if s.id.split(".")[0] != phase]
    assert all(s.status is Status.SKIP for s in later), [(s.id, s.status) for s in later]


def free_closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: bound, then closed."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class FakeService:
    """A TCP service on 127.0.0.1 that is not a printer.

    ``mode="silent"``: accepts and never says a word (a port that does not speak TLS back);
    ``mode="text"``: answers anything with a line of plain text (not TLS at all).
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.server: asyncio.Server | None = None
        self.port = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    async def __aenter__(self) -> FakeService:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await _end_handlers(self._writers, self._tasks)
        await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _track(self._tasks)
        self._writers.add(writer)
        try:
            if self.mode == "text":
                await reader.read(1)
                writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
            while await reader.read(4096):  # until the client gives up
                pass
        except ConnectionError:
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


def _track(tasks: set[asyncio.Task[Any]]) -> None:
    task = asyncio.current_task()
    if task is not None:
        tasks.add(task)
        task.add_done_callback(tasks.discard)


async def _end_handlers(writers: set[asyncio.StreamWriter], tasks: set[asyncio.Task[Any]]) -> None:
    """Close every connection and wait for its handler, so no task outlives the test."""
    for writer in list(writers):
        writer.close()
    for task in list(tasks):
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def offers_tls13(client_hello: bytes) -> bool:
    """Whether a TLS record holding a ClientHello lists TLS 1.3 in supported_versions."""
    try:
        if client_hello[0] != 0x16 or client_hello[5] != 0x01:
            return False
        pos = 5 + 4 + 2 + 32  # record header, handshake header, version, random
        pos += 1 + client_hello[pos]  # session id
        (length,) = struct.unpack_from("!H", client_hello, pos)
        pos += 2 + length  # cipher suites
        pos += 1 + client_hello[pos]  # compression methods
        (ext_total,) = struct.unpack_from("!H", client_hello, pos)
        pos += 2
        end = pos + ext_total
        while pos + 4 <= end:
            ext_type, ext_len = struct.unpack_from("!HH", client_hello, pos)
            pos += 4
            if ext_type == 0x002B:  # supported_versions
                versions = client_hello[pos + 1 : pos + ext_len]
                return any(versions[i : i + 2] == b"\x03\x04" for i in range(0, len(versions), 2))
            pos += ext_len
    except (IndexError, struct.error):
        return False
    return False


class Tls13BlackHole:
    """A proxy in front of a simulator that never answers a ClientHello offering TLS 1.3 and
    passes everything else through: the P2S of protocol.md §15 ("it hangs rather than
    refusing")."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.server: asyncio.Server | None = None
        self.port = 0
        self.swallowed = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> Tls13BlackHole:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await _end_handlers(self._writers, self._tasks)
        await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _track(self._tasks)
        self._writers.add(writer)
        upstream: asyncio.StreamWriter | None = None
        try:
            header = await reader.readexactly(5)
            body = await reader.readexactly(struct.unpack("!H", header[3:5])[0])
            if offers_tls13(header + body):
                self.swallowed += 1
                while await reader.read(4096):  # no answer, ever
                    pass
                return
            up_reader, upstream = await asyncio.open_connection(*self.target)
            self._writers.add(upstream)
            upstream.write(header + body)
            await asyncio.gather(self._pipe(reader, upstream), self._pipe(up_reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            for w in (writer, upstream):
                if w is not None:
                    self._writers.discard(w)
                    w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(OSError, RuntimeError):
            writer.write_eof()
