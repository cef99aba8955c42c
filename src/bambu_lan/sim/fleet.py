"""``SimFleet``: many simulated printers in one process, for farm tests and benchmarks.

Two ways to lay them out:

* ``host_mode="address"`` (default): each printer on its own loopback address — 127.0.1.1,
  127.0.1.2, … — all on the same port (8883 by default), the way a real farm looks: one
  address per printer, the standard port everywhere. Linux routes all of 127.0.0.0/8 to the
  loopback interface; other systems may need the addresses added first.
* ``host_mode="port"``: all on one address (127.0.0.1) with one port each.

Every printer has its own serial (``profile.default_serial(1)``, ``(2)``, …) and leaf
certificate; they share one CA and one leaf key, so a thousand start in seconds.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import ssl
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from bambu_lan.errors import ConfigError
from bambu_lan.sim.certs import CertAuthority, default_cert_dir
from bambu_lan.sim.device import SimulatedPrinter, resolve_profile
from bambu_lan.sim.profiles import ModelProfile

__all__ = ["HostMode", "SimFleet", "fleet_addresses"]

HostMode = Literal["address", "port"]

_LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")


def fleet_addresses(base: str, count: int) -> list[str]:
    """``count`` loopback addresses from ``base`` upwards, skipping x.x.x.0 and x.x.x.255.

    Raises ``ConfigError`` when ``base`` is not in 127.0.0.0/8 or the run would leave it.
    """
    try:
        address = ipaddress.IPv4Address(base)
    except ValueError:
        raise ConfigError(f"invalid base address {base!r}", hint="use e.g. 127.0.1.1") from None
    if address not in _LOOPBACK:
        raise ConfigError(
            f"{base} is not a loopback address",
            hint="a fleet in address mode uses 127.0.0.0/8 addresses, e.g. 127.0.1.1",
        )
    out: list[str] = []
    value = int(address)
    last = int(_LOOPBACK.broadcast_address)
    while len(out) < count:
        if value >= last:
            raise ConfigError(
                f"{count} printers from {base} do not fit in 127.0.0.0/8",
                hint="start from a lower base address, or use the port mode",
            )
        if value & 0xFF not in (0, 255):  # addresses that look like network/broadcast ones
            out.append(str(ipaddress.IPv4Address(value)))
        value += 1
    return out


def _nth_port(first: int | None, index: int, host_mode: HostMode) -> int | None:
    """Printer ``index``'s port of a service: the same in address mode, consecutive in port
    mode; 0 stays 0 (a free one each)."""
    if first is None or first == 0 or host_mode == "address":
        return first
    return first + index


class SimFleet:
    """``count`` simulated printers of one model, started and stopped together.

    Arguments are those of ``SimulatedPrinter``, plus:
        host_mode: "address" (one loopback address each, same port) or "port" (one address,
            one port each).
        base_host: the first address (default 127.0.1.1 in address mode, 127.0.0.1 in port
            mode).
        port: address mode: the port every printer uses (default 8883; 0 = a free one chosen
            by the first printer). Port mode: the first port (printer i gets port + i), or 0
            (default) for a free port each.
        access_code: one code for all printers, or ``None`` for a random one each.
        camera_port: each printer's camera port (address mode: the same for all; port mode:
            ``camera_port + i``); 0: a free one each; None: no cameras.
        announce_to, ssdp_port: as for ``SimulatedPrinter`` (each printer announces itself;
            ``ssdp_port`` 0 gives each a free M-SEARCH port).
        ftps_port: each printer's storage service (FTPS) port; 0 a free one each; None
            (default) none, so that a thousand printers stay cheap.
        card_dir: a folder holding one card folder per serial (default: temporary ones).
        card_size: each card's size limit in bytes.
    """

    def __init__(
        self,
        count: int,
        model: str | ModelProfile = "a1",
        *,
        host_mode: HostMode = "address",
        base_host: str | None = None,
        port: int | None = None,
        access_code: str | None = None,
        cert_dir: Path | str | None = None,
        dev_mode: bool = True,
        time_scale: float = 1.0,
        max_sessions: int | None = None,
        auth_delay: float = 0.1,
        new_identity: bool = False,
        seed: int | None = None,
        camera_port: int | None = None,
        camera_interval: float = 1.0,
        announce_to: tuple[str, int] | None = None,
        ssdp_port: int | None = None,
        ftps_port: int | None = None,
        card_dir: Path | str | None = None,
        card_size: int | None = None,
    ) -> None:
        if count < 1:
            raise ConfigError("a fleet needs at least one printer")
        if host_mode not in ("address", "port"):
            raise ConfigError(f"unknown host mode {host_mode!r}", hint="use 'address' or 'port'")
        self.profile = resolve_profile(model)
        self.host_mode = host_mode
        self.cert_dir = Path(cert_dir) if cert_dir is not None else default_cert_dir()
        self._new_identity = new_identity
        if host_mode == "address":
            hosts = fleet_addresses(base_host or "127.0.1.1", count)
            first_port = 8883 if port is None else port
            ports = [first_port] * count
        else:
            hosts = [base_host or "127.0.0.1"] * count
            first_port = 0 if port is None else port
            if first_port and first_port + count - 1 > 65535:
                raise ConfigError(f"{count} ports from {first_port} go past 65535")
            ports = [first_port + i if first_port else 0 for i in range(count)]
        self._shared_port = host_mode == "address" and first_port == 0
        rng = random.Random(seed) if seed is not None else random.SystemRandom()
        self.printers: list[SimulatedPrinter] = [
            SimulatedPrinter(
                self.profile,
                self.profile.default_serial(i + 1),
                access_code if access_code is not None else f"{rng.randrange(10**8):08d}",
                host=hosts[i],
                port=ports[i],
                cert_dir=self.cert_dir,
                dev_mode=dev_mode,
                time_scale=time_scale,
                max_sessions=max_sessions,
                auth_delay=auth_delay,
                seed=None if seed is None else seed + i + 1,
                camera_port=_nth_port(camera_port, i, host_mode),
                camera_interval=camera_interval,
                announce_to=announce_to,
                ssdp_port=_nth_port(ssdp_port, i, host_mode) if ssdp_port is not None else None,
                ftps_port=ftps_port,
                card_dir=None
                if card_dir is None
                else Path(card_dir) / self.profile.default_serial(i + 1),
                card_size=card_size,
            )
            for i in range(count)
        ]
        self.authority: CertAuthority | None = None

    def __repr__(self) -> str:
        return f"<SimFleet {len(self.printers)} x {self.profile.key} ({self.host_mode} mode)>"

    def __len__(self) -> int:
        return len(self.printers)

    @property
    def ca_path(self) -> Path:
        """The CA certificate every printer of the fleet is signed by."""
        return self.cert_dir / "ca.pem"

    @property
    def running(self) -> bool:
        """Whether any printer is listening."""
        return any(p.running for p in self.printers)

    def _prepare(self) -> list[ssl.SSLContext]:
        authority = CertAuthority.load_or_create(self.cert_dir, new_identity=self._new_identity)
        serials = [p.serial for p in self.printers]
        authority.ensure_leaves(serials)
        self.authority = authority
        for printer in self.printers:
            printer.use_authority(authority)
        return [authority.server_context(serial) for serial in serials]

    async def start(self) -> None:
        """Load or create the certificates, then start every printer.

        If one cannot start, those already started are stopped and the error is raised.
        """
        # One thread hop for all the key and certificate work instead of one per printer.
        contexts = await asyncio.to_thread(self._prepare)
        try:
            for printer, context in zip(self.printers, contexts, strict=True):
                await printer.start(ssl_context=context)
                if self._shared_port and printer is self.printers[0]:
                    # Port 0 in address mode: the first printer picks, the others follow.
                    for other in self.printers[1:]:
                        other.port = printer.port
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop every printer. Idempotent."""
        await asyncio.gather(*(p.stop() for p in self.printers), return_exceptions=True)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def listing(self) -> list[dict[str, Any]]:
        """One ``connection_info()`` dict per printer (JSON-able; includes access codes)."""
        return [p.connection_info() for p in self.printers]

    def by_serial(self, serial: str) -> SimulatedPrinter:
        """The printer with this serial (``KeyError`` if none)."""
        for printer in self.printers:
            if printer.serial == serial:
                return printer
        raise KeyError(serial)

    def drop_connections(self) -> int:
        """Drop every connection of every printer. Returns how many."""
        return sum(p.drop_connections() for p in self.printers)

    @staticmethod
    def serials(profile: ModelProfile, count: int) -> Sequence[str]:
        """The serials a fleet of ``count`` printers of ``profile`` uses, in order."""
        return [profile.default_serial(i + 1) for i in range(count)]
