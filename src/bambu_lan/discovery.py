"""Find printers on the LAN: their SSDP-like announcements on UDP 2021 and 1990 (protocol.md §9).

::

    for found in await discover(timeout=6):
        print(found.serial, found.model, found.host)

Printers send ``NOTIFY * HTTP/1.1`` about every 5-10 s (to the broadcast address or the
SSDP multicast group) and answer ``M-SEARCH`` with ``HTTP/1.1 200 OK``; both carry the same
headers: ``USN`` (the serial), ``Location`` (the address), ``DevModel.bambu.com`` and more.
Header names are read case-insensitively, ``Location`` may be a bare address or a URL, the
datagram's source address stands in when it is missing. Everything in an announcement is
printer-provided text: ``shown`` (terminal-safe) before showing it.

Only ``search=True`` sends anything, and only to the targets given (the defaults are the
broadcast and multicast addresses a real network needs; tests aim them at 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bambu_lan.errors import ConfigError
from bambu_lan.protocol.models import model_from_code, model_from_serial
from bambu_lan.text import terminal_safe

log = logging.getLogger("bambu_lan.discovery")

SEARCH_TARGET = "urn:bambulab-com:device:3dprinter:1"
DISCOVERY_PORTS = (2021, 1990)
SSDP_GROUP = "239.255.255.250"
#: Where ``--search`` sends M-SEARCH on a real network (protocol.md §9.1).
DEFAULT_SEARCH_TARGETS: tuple[tuple[str, int], ...] = (
    ("255.255.255.255", 1990),
    ("255.255.255.255", 2021),
    (SSDP_GROUP, 1990),
)
_MAX_DATAGRAM = 4096
_MAX_VALUE = 200  # longer header values are cut: a printer's are short
_LEGACY_MODELS = {"3DPrinter-X1-Carbon": "BL-P001", "3DPrinter-X1": "BL-P002"}


def shown(text: str, limit: int = 120) -> str:
    """Printer-provided ``text`` fit for a terminal (``bambu_lan.text.terminal_safe``), cut
    to ``limit`` characters."""
    safe = terminal_safe(text)
    return safe if len(safe) <= limit else safe[: limit - 1] + "…"


def m_search(mx: int = 3) -> bytes:
    """The M-SEARCH datagram of protocol.md §9.1."""
    return (
        f'M-SEARCH * HTTP/1.1\r\nHOST: {SSDP_GROUP}:1990\r\nMAN: "ssdp:discover"\r\n'
        f"MX: {mx}\r\nST: {SEARCH_TARGET}\r\n\r\n"
    ).encode("ascii")


@dataclass(frozen=True, slots=True)
class Announcement:
    """One printer as it announced itself. Text fields are as sent (not terminal-safe)."""

    serial: str
    host: str
    model_code: str | None = None
    name: str | None = None
    firmware: str | None = None
    connect: str | None = None  # "lan" (LAN-only mode) or "cloud"
    bind: str | None = None  # "free" or "occupied" (bound to a cloud account)
    signal: int | None = None  # Wi-Fi RSSI, dBm
    source: str = ""  # the datagram's source address
    reply: bool = False  # an answer to M-SEARCH (else a NOTIFY)
    received_at: float = field(default_factory=time.time)
    warnings: tuple[str, ...] = ()

    @property
    def model(self) -> str | None:
        """The model's name ("A1"), from the model code or else the serial."""
        info = (model_from_code(self.model_code) if self.model_code else None) or (
            model_from_serial(self.serial)
        )
        return info.name if info else None

    @property
    def lan_only(self) -> bool | None:
        if self.connect is None:
            return None
        return self.connect.lower() == "lan"

    def to_dict(self) -> dict[str, Any]:
        return {
            "serial": self.serial,
            "model": self.model,
            "model_code": self.model_code,
            "name": self.name,
            "host": self.host,
            "firmware": self.firmware,
            "lan_only": self.lan_only,
            "connect": self.connect,
            "bind": self.bind,
            "signal": self.signal,
            "source": self.source,
            "reply": self.reply,
            "warnings": list(self.warnings),
        }


class BadAnnouncement(ValueError):
    """A datagram that claims to be a printer's announcement but cannot be used."""


def parse_announcement(data: bytes, source: str) -> Announcement | None:
    """The printer in ``data``; None for datagrams that are not printer announcements
    (other devices, M-SEARCH requests); ``BadAnnouncement`` for ours that are unusable."""
    text = data[:_MAX_DATAGRAM].decode("utf-8", "replace")
    lines = text.replace("\r\n", "\n").split("\n")
    start = lines[0].strip().upper()
    if start.startswith("NOTIFY"):
        reply = False
    elif start.startswith("HTTP/1.") and " 200" in start:
        reply = True
    else:
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep and name.strip():
            headers.setdefault(name.strip().lower(), value.strip()[:_MAX_VALUE])
    kind = headers.get("st" if reply else "nt") or headers.get("nt") or headers.get("st")
    if (kind or "").lower() != SEARCH_TARGET:
        return None
    warnings: list[str] = []
    serial = _serial(headers.get("usn", ""))
    host = _host(headers.get("location", ""), source, warnings)
    model_code = headers.get("devmodel.bambu.com") or None
    if model_code in _LEGACY_MODELS:
        model_code = _LEGACY_MODELS[model_code]
    return Announcement(
        serial=serial,
        host=host,
        model_code=model_code,
        name=headers.get("devname.bambu.com") or None,
        firmware=headers.get("devversion.bambu.com") or None,
        connect=headers.get("devconnect.bambu.com") or None,
        bind=headers.get("devbind.bambu.com") or None,
        signal=_int(headers.get("devsignal.bambu.com")),
        source=source,
        reply=reply,
        warnings=tuple(warnings),
    )


def _serial(usn: str) -> str:
    value = usn.strip()
    if value.lower().startswith("uuid:"):
        value = value[5:]
    value = value.split("::", 1)[0].strip()
    if not value:
        raise BadAnnouncement("an announcement without a serial (USN)")
    if not (value.isascii() and value.isalnum() and len(value) <= 32):
        raise BadAnnouncement(f"an announcement with an invalid serial {shown(value, 40)}")
    return value.upper()


def _host(location: str, source: str, warnings: list[str]) -> str:
    if not location:
        return source
    value = location.strip()
    if "://" in value:
        value = urlsplit(value).hostname or ""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        warnings.append(f"Location {shown(location, 60)!r} is not an address; using the sender's")
        return source


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


# --- listening ------------------------------------------------------------------------------


def _listen_socket(bind: str, port: int, join_group: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.bind((bind, port))
        if join_group:
            membership = struct.pack("4s4s", socket.inet_aton(SSDP_GROUP), socket.inet_aton(bind))
            with contextlib.suppress(OSError):  # no multicast route: broadcasts still arrive
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on UDP {bind}:{port}: {exc.strerror or exc}",
            hint="another program may hold the port without sharing it; pick others with --port",
        ) from None
    return sock


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, str], None]) -> None:
        self.on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.on_datagram(data, str(addr[0]))

    def error_received(self, exc: Exception) -> None:
        log.debug("discovery socket: %s", exc)


@dataclass(slots=True)
class DiscoveryResult:
    printers: dict[str, Announcement] = field(default_factory=dict)  # by serial
    warnings: list[str] = field(default_factory=list)
    ignored: int = 0  # datagrams that were not printer announcements

    def add(self, found: Announcement) -> bool:
        """Keep ``found``; True when it is a printer not seen before."""
        known = self.printers.get(found.serial)
        if known is not None and known.host != found.host:
            # Sorted: the twins announce in turn, and each order is the same news.
            first, second = sorted((known.host, found.host))
            warning = (
                f"two printers announce serial {found.serial}: {first} and {second} "
                "(keeping the newest)"
            )
            if warning not in self.warnings:
                self.warnings.append(warning)
                log.debug("%s", warning)  # the caller shows result.warnings (the CLI does)
        for message in found.warnings:
            text = f"{found.serial}: {message}"
            if text not in self.warnings:
                self.warnings.append(text)
        self.printers[found.serial] = found
        return known is None


async def discover(
    timeout: float = 6.0,
    *,
    ports: Sequence[int] = DISCOVERY_PORTS,
    bind: str = "0.0.0.0",  # noqa: S104 - announcements are broadcast to every interface
    search: bool = False,
    search_targets: Iterable[tuple[str, int]] = DEFAULT_SEARCH_TARGETS,
    join_group: bool | None = None,
    until: Callable[[DiscoveryResult], bool] | None = None,
    on_found: Callable[[Announcement], None] | None = None,
) -> DiscoveryResult:
    """Listen ``timeout`` seconds for announcements (ending early once ``until(result)``).

    ``search``: also send M-SEARCH to ``search_targets`` (from a socket of its own, where the
    unicast answers arrive). ``join_group``: join the SSDP multicast group (default: only
    when listening on all interfaces).
    """
    loop = asyncio.get_running_loop()
    result = DiscoveryResult()
    done = asyncio.Event()
    if join_group is None:
        join_group = bind == "0.0.0.0"  # noqa: S104

    def on_datagram(data: bytes, source: str) -> None:
        try:
            found = parse_announcement(data, source)
        except BadAnnouncement as exc:
            message = f"ignored an announcement from {source}: {exc}"
            if message not in result.warnings:
                result.warnings.append(message)
            return
        if found is None:
            result.ignored += 1
            return
        if result.add(found) and on_found is not None:
            on_found(found)
        if until is not None and until(result):
            done.set()

    sockets = [_listen_socket(bind, port, join_group) for port in ports]
    if search:
        sockets.append(_listen_socket(bind, 0, False))
    transports: list[asyncio.DatagramTransport] = []
    try:
        for sock in sockets:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Receiver(on_datagram), sock=sock
            )
            transports.append(transport)
        if search:
            packet = m_search()
            for target in search_targets:
                try:
                    transports[-1].sendto(packet, target)
                except OSError as exc:
                    result.warnings.append(f"could not send M-SEARCH to {target[0]}: {exc}")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await done.wait()
    finally:
        for transport in transports:
            transport.close()
        for sock in sockets[len(transports) :]:
            sock.close()
    return result


def parse_target(text: str) -> tuple[str, int]:
    """``ADDR:PORT`` as given on the command line."""
    host, sep, port_text = text.rpartition(":")
    try:
        address = str(ipaddress.IPv4Address(host))
        port = int(port_text)
    except ValueError:
        raise ConfigError(
            f"{text!r} is not ADDR:PORT", hint="an IPv4 address and a port, e.g. 127.0.0.1:2021"
        ) from None
    if not sep or not 0 < port < 65536:
        raise ConfigError(f"{text!r} is not ADDR:PORT", hint="e.g. 127.0.0.1:2021")
    return address, port
