"""The simulated printer's announcements: NOTIFY every 5 s, answers to M-SEARCH (protocol.md §9).

A real printer broadcasts to the whole network; the simulator sends only on loopback
(127.0.0.0/8): by default to 127.0.0.1:2021, where ``bambu-lan discover`` listens. It
answers M-SEARCH on its own UDP port, to loopback senders only. Nothing it sends ever
leaves the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from dataclasses import dataclass
from typing import Any, cast

from bambu_lan.errors import ConfigError

__all__ = ["DEFAULT_ANNOUNCE_TO", "Announcer", "AnnouncerStats", "check_loopback"]

log = logging.getLogger(__name__)

DEFAULT_ANNOUNCE_TO = ("127.0.0.1", 2021)
_URN = "urn:bambulab-com:device:3dprinter:1"
_LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")


def check_loopback(address: str, what: str = "the simulator's announcements") -> None:
    """ConfigError unless ``address`` is in 127.0.0.0/8."""
    try:
        ok = ipaddress.IPv4Address(address) in _LOOPBACK
    except ValueError:
        ok = False
    if not ok:
        raise ConfigError(
            f"{what} go to loopback addresses only (127.0.0.0/8), not {address}",
            hint="use e.g. --announce-to 127.0.0.1:2021; a simulator never broadcasts",
        )


@dataclass(slots=True)
class AnnouncerStats:
    notifies: int = 0
    searches_answered: int = 0
    searches_ignored: int = 0  # not for us, or from outside loopback


class Announcer:
    """NOTIFY ``announce_to`` every ``interval`` seconds; answer M-SEARCH on
    ``search_host:search_port`` (0: a free port; None: do not listen)."""

    def __init__(
        self,
        *,
        serial: str,
        model_code: str,
        name: str,
        firmware: str,
        location: str,
        announce_to: tuple[str, int] | None = DEFAULT_ANNOUNCE_TO,
        interval: float = 5.0,
        search_port: int | None = None,
        search_host: str = "127.0.0.1",
        signal: int = -45,
    ) -> None:
        if announce_to is not None:
            check_loopback(announce_to[0])
        check_loopback(search_host, "the simulator's M-SEARCH answers")
        self.serial = serial
        self.model_code = model_code
        self.name = name
        self.firmware = firmware
        self.location = location
        self.announce_to = announce_to
        self.interval = interval
        self.search_port = search_port
        self.search_host = search_host
        self.signal = signal
        self.stats = AnnouncerStats()
        self._transport: asyncio.DatagramTransport | None = None
        self._search: asyncio.DatagramTransport | None = None
        self._task: asyncio.Task[None] | None = None

    def headers(self, *, reply: bool) -> str:
        first = "HTTP/1.1 200 OK" if reply else "NOTIFY * HTTP/1.1"
        kind = "ST" if reply else "NT"
        lines = [
            first,
            "HOST: 239.255.255.250:1990",
            "Server: UPnP/1.0",
            f"Location: {self.location}",
            f"{kind}: {_URN}",
            f"USN: {self.serial}",
            "Cache-Control: max-age=1800",
            f"DevModel.bambu.com: {self.model_code}",
            f"DevName.bambu.com: {self.name}",
            f"DevSignal.bambu.com: {self.signal}",
            "DevConnect.bambu.com: lan",
            "DevBind.bambu.com: free",
            "Devseclink.bambu.com: secure",
            f"DevVersion.bambu.com: {self.firmware}",
            "DevCap.bambu.com: 1",
        ]
        if not reply:
            lines.insert(5, "NTS: ssdp:alive")
        return "\r\n".join(lines) + "\r\n\r\n"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.announce_to is not None:
            self._transport, _ = await loop.create_datagram_endpoint(
                _Quiet, local_addr=("127.0.0.1", 0), family=socket.AF_INET
            )
            self._task = asyncio.create_task(
                self._announce(), name=f"bambu-lan-sim-ssdp-{self.serial}"
            )
        if self.search_port is not None:
            self._search, _ = await loop.create_datagram_endpoint(
                lambda: _SearchAnswerer(self),
                local_addr=(self.search_host, self.search_port),
                family=socket.AF_INET,
                reuse_port=True,
            )
            self.search_port = self._search.get_extra_info("sockname")[1]

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for transport in (self._transport, self._search):
            if transport is not None:
                transport.close()
        self._transport = self._search = None

    def announce_now(self) -> None:
        """Send one NOTIFY at once (besides the periodic ones)."""
        if self._transport is not None and self.announce_to is not None:
            self._transport.sendto(self.headers(reply=False).encode("utf-8"), self.announce_to)
            self.stats.notifies += 1

    async def _announce(self) -> None:
        while True:
            self.announce_now()
            await asyncio.sleep(self.interval)

    def answer(self, data: bytes, addr: tuple[str, int], transport: Any) -> None:
        lines = data[:2048].decode("utf-8", "replace").replace("\r\n", "\n").split("\n")
        first = lines[0].upper()
        targets = {
            value.strip().lower()
            for name, sep, value in (line.partition(":") for line in lines[1:])
            if sep and name.strip().lower() == "st"
        }  # header names are case-insensitive, the space after the colon optional
        wanted = bool(targets & {_URN, "ssdp:all"})
        try:
            from_loopback = ipaddress.IPv4Address(addr[0]) in _LOOPBACK
        except ValueError:
            from_loopback = False
        if not first.startswith("M-SEARCH") or not wanted or not from_loopback:
            self.stats.searches_ignored += 1
            return
        transport.sendto(self.headers(reply=True).encode("utf-8"), addr)
        self.stats.searches_answered += 1


class _Quiet(asyncio.DatagramProtocol):
    def error_received(self, exc: Exception) -> None:
        # Nobody listening on the target: the kernel says so on the next send. Not an error.
        log.debug("announcement not delivered: %s", exc)


class _SearchAnswerer(asyncio.DatagramProtocol):
    def __init__(self, announcer: Announcer) -> None:
        self.announcer = announcer
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if self.transport is not None:
            self.announcer.answer(data, (str(addr[0]), int(addr[1])), self.transport)

    def error_received(self, exc: Exception) -> None:
        log.debug("M-SEARCH answer not delivered: %s", exc)
