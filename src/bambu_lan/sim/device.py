"""``SimulatedPrinter``: one simulated Bambu printer on a real TLS socket — the public facade.

It ties together the identity (``certs``), the strict broker (``broker``) and the printer
model (``printer``), and offers the fault verbs tests and demos use::

    async with SimulatedPrinter(model="a1", cert_dir=tmp_path) as sim:
        print(sim.connection_info())        # host, port, serial, access code, CA path
        sim.drop_connections()              # a fault: every socket reset at once

``SimulatedPrinter`` needs a running event loop only from ``start()`` on; constructing one is
cheap and does no I/O, so blocking code can build it and hand it to ``SimThread``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import random
import secrets
import shlex
import ssl
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from bambu_lan.errors import ConfigError
from bambu_lan.sim.broker import Broker, BrokerRules, GarbageKind, SilenceRecovery
from bambu_lan.sim.camera import JPEG_CAMERA_MODELS, CameraServer
from bambu_lan.sim.camera_rtsp import RtspCameraServer
from bambu_lan.sim.certs import SERIAL_RE, CertAuthority, default_cert_dir
from bambu_lan.sim.ftps import FtpsServer
from bambu_lan.sim.ftps_card import PrintFileReader, SimCard
from bambu_lan.sim.printer import PrinterModel
from bambu_lan.sim.profiles import ModelProfile, get_profile
from bambu_lan.sim.ssdp import Announcer

__all__ = ["SimulatedPrinter", "resolve_profile"]

log = logging.getLogger(__name__)


def resolve_profile(model: str | ModelProfile) -> ModelProfile:
    """A ``ModelProfile`` from a CLI model name ("a1", "a1mini", "p1s", "x1c") or a profile.

    Raises ``ConfigError`` for an unknown name.
    """
    if isinstance(model, ModelProfile):
        return model
    try:
        return get_profile(model)
    except ValueError as exc:
        raise ConfigError(str(exc), hint="pick one of the known models with --model") from None


def _check_identity(serial: str, access_code: str) -> None:
    if not SERIAL_RE.fullmatch(serial):
        raise ConfigError(
            f"invalid serial {serial!r}",
            hint="use letters and digits only, like a real serial (15 characters, e.g. "
            "03919A3B1200123)",
        )
    if not access_code or not access_code.isascii() or not access_code.isprintable():
        raise ConfigError(
            "invalid access code: use printable ASCII characters",
            hint="real access codes are 8 characters, usually digits",
        )


def listen_error(host: str, port: int, exc: OSError) -> ConfigError:
    """The ``ConfigError`` for an address the simulator cannot listen on."""
    if exc.errno == errno.EADDRINUSE:
        return ConfigError(
            f"cannot listen on {host}:{port}: the port is already in use",
            hint="stop the other program (another simulator?), or pick another --port "
            "(0 picks a free one)",
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return ConfigError(
            f"cannot listen on {host}:{port}: no interface has that address",
            hint="use 127.0.0.1, an address of this machine, or 0.0.0.0 for all of them; "
            "a fleet that cannot have one loopback address per printer can use "
            "--host-mode port",
        )
    if exc.errno == errno.EACCES:
        return ConfigError(
            f"cannot listen on {host}:{port}: permission denied",
            hint="ports below 1024 need privileges; use 8883 (the printers' port) or another",
        )
    return ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


class SimulatedPrinter:
    """A simulated Bambu Lab printer: strict MQTT over TLS 1.2 and a live printer model.

    Arguments:
        model: "a1", "a1mini", "p1s", "x1c" (or a ``ModelProfile``).
        serial: the printer's serial (leaf certificate CN, topic names); default
            ``profile.default_serial(0)``.
        access_code: the MQTT password; default 8 random digits.
        host, port: where to listen; port 0 picks a free one (read ``port`` after start).
        cert_dir: where the CA and leaves live (see ``certs``); default the user cache dir.
        dev_mode: Developer Mode on (control commands accepted without signatures).
        time_scale: simulated seconds per real second (10 = ten times faster).
        max_sessions: the session limit; default from the model (4 on an A1).
        auth_delay: seconds from CONNECT to CONNACK (0.1, like an A1).
        new_identity: make a new CA and keys instead of reusing the ones in ``cert_dir``.
        seed: makes the access code, the model's noise and garbage reproducible.
        rules: full broker rules, overriding ``max_sessions`` and ``auth_delay``.
        authority: an already loaded ``CertAuthority`` (fleets share one); overrides
            ``cert_dir`` and ``new_identity``.
        camera_port: serve the camera on this port (0: a free one); None: no camera. A1/P1:
            the TLS JPEG stream (port 6000 on a printer); X1/P2S/H2: H.264 over RTSPS (322),
            which also needs ffmpeg. Needs Pillow (the ``sim`` extra).
        camera_interval: seconds between camera frames.
        live_view: X1/P2S/H2: the LAN live view is on (``ipcam.rtsp_url`` names the
            stream) or off (``"disable"``; the camera port closes every connection at once).
            Switch it later with ``set_live_view()``.
        announce_to: send SSDP NOTIFY announcements to this loopback (address, port) every
            ``announce_interval`` seconds; None: no announcements.
        ssdp_port: answer M-SEARCH on this UDP port of 127.0.0.1 (0: a free one); None: no.
        ftps_port: the storage service (implicit FTPS, 990 on a printer); 0 picks a free
            port, None runs none.
        card_dir: the storage card's folder; default a temporary one, removed at stop.
        card_size: the card's size limit in bytes (None: unlimited): "card full" on demand.
        pasv_ports: ``(first, last)`` passive FTPS data ports; default any free port.
    """

    def __init__(
        self,
        model: str | ModelProfile = "a1",
        serial: str | None = None,
        access_code: str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        cert_dir: Path | str | None = None,
        dev_mode: bool = True,
        time_scale: float = 1.0,
        max_sessions: int | None = None,
        auth_delay: float = 0.1,
        new_identity: bool = False,
        seed: int | None = None,
        rules: BrokerRules | None = None,
        authority: CertAuthority | None = None,
        camera_port: int | None = None,
        camera_interval: float = 1.0,
        live_view: bool = True,
        announce_to: tuple[str, int] | None = None,
        announce_interval: float = 5.0,
        ssdp_port: int | None = None,
        ftps_port: int | None = 0,
        card_dir: Path | str | None = None,
        card_size: int | None = None,
        pasv_ports: tuple[int, int] | None = None,
    ) -> None:
        self.profile = resolve_profile(model)
        self.serial = serial or self.profile.default_serial(0)
        if access_code is None:
            rng = random.Random(seed) if seed is not None else secrets.SystemRandom()
            access_code = f"{rng.randrange(10**8):08d}"
        _check_identity(self.serial, access_code)
        if time_scale <= 0:
            raise ConfigError("the time scale (--speed) must be greater than 0")
        self.access_code = access_code
        self.host = host
        self.port = port
        self.cert_dir = Path(authority.cert_dir if authority else (cert_dir or default_cert_dir()))
        self._authority = authority
        self._new_identity = new_identity
        self.dev_mode = dev_mode
        self.time_scale = time_scale
        if rules is None:
            overrides: dict[str, Any] = {"auth_delay": auth_delay}
            if max_sessions is not None:
                overrides["max_sessions"] = max_sessions
            rules = BrokerRules.from_profile(self.profile, **overrides)
        self.model = PrinterModel(
            self.profile, self.serial, dev_mode=dev_mode, time_scale=time_scale, seed=seed
        )
        self.broker = Broker(
            self.serial,
            access_code,
            rules=rules,
            request_handler=self.model.handle_request,
            report_source=self.model.full_report,
            seed=seed,
        )
        self.ftps_port = ftps_port
        self._card_dir = Path(card_dir) if card_dir is not None else None
        self._card_size = card_size
        self._pasv_ports = pasv_ports
        self.ftps: FtpsServer | None = None  # the storage service, from start() on
        self.model.publish = self.broker.publish_report
        self.model.on_pushing_start = self.broker.on_pushing_start
        self._model_task: asyncio.Task[None] | None = None
        self.camera: CameraServer | RtspCameraServer | None = None
        self.camera_port = camera_port
        if camera_port is not None:
            self.camera = self._make_camera(camera_interval, seed, live_view)
        self.announcer: Announcer | None = None
        if announce_to is not None or ssdp_port is not None:
            self.announcer = Announcer(
                serial=self.serial,
                model_code=self.profile.model_code,
                name=f"3DP-{self.serial[:3]}-{self.serial[-3:]}",
                firmware=self.profile.firmware,
                location="127.0.0.1" if host in ("0.0.0.0", "") else host,  # noqa: S104
                announce_to=announce_to,
                interval=announce_interval,
                search_port=ssdp_port,
            )

    def _make_camera(
        self, interval: float, seed: int | None, live_view: bool
    ) -> CameraServer | RtspCameraServer:
        from bambu_lan.sim.camera_frames import HEIGHT, WIDTH, FrameRenderer

        renderer = FrameRenderer(self.profile.product_name, self.serial)
        model = self.model
        if self.profile.model_code not in JPEG_CAMERA_MODELS:
            return RtspCameraServer(
                self.serial,
                self.access_code,
                lambda: renderer.render_rgb(model.state),
                size=(WIDTH, HEIGHT),
                interval=interval,
                live_view=live_view,
            )
        return CameraServer(
            self.serial,
            self.access_code,
            lambda: renderer.render(model.state),
            interval=interval,
            seed=seed,
        )

    def __repr__(self) -> str:
        # The access code stays out of reprs and logs (connection_info() is for showing it).
        state = "running" if self.running else "stopped"
        return (
            f"<SimulatedPrinter {self.profile.key} {self.serial} {self.host}:{self.port} {state}>"
        )

    # ---- identity ------------------------------------------------------------------------

    @property
    def ca_path(self) -> Path:
        """The CA certificate clients must trust (``cert_dir/ca.pem``)."""
        return self.cert_dir / "ca.pem"

    @property
    def authority(self) -> CertAuthority:
        """The certificate directory's CA (loaded or created on first use; blocking)."""
        if self._authority is None:
            self._authority = CertAuthority.load_or_create(
                self.cert_dir, new_identity=self._new_identity
            )
        return self._authority

    @property
    def fingerprint(self) -> str:
        """SHA-256 of this printer's leaf certificate (DER), lower-case hex."""
        return self.authority.fingerprint(self.serial)

    # ---- lifecycle -----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the printer is listening."""
        return self.broker.running

    def use_authority(self, authority: CertAuthority) -> None:
        """Use an already loaded CA (a fleet shares one) instead of loading ``cert_dir``."""
        self._authority = authority
        self.cert_dir = authority.cert_dir

    async def start(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        """Create or load the certificates, listen, and start the printer model.

        ``ssl_context``: a server context built beforehand (a fleet builds all of them in one
        go); by default it is made from ``cert_dir``. Raises ``ConfigError`` when the address
        cannot be used (port in use, ...).
        """
        if self.running:
            return
        context = ssl_context
        if context is None:
            # Key generation and file I/O block for a moment: keep them off the event loop.
            context = await asyncio.to_thread(self._server_context)
        try:
            await self.broker.start(self.host, self.port, ssl_context=context)
        except OSError as exc:
            raise listen_error(self.host, self.port, exc) from exc
        self.port = self.broker.port
        if self.ftps_port is not None:
            try:
                await self._start_ftps()
            except BaseException:
                await self.broker.stop()
                raise
        if self.camera is not None and self.camera_port is not None:
            try:
                await self.camera.start(self.host, self.camera_port, context)
            except OSError as exc:
                await self.stop()
                raise listen_error(self.host, self.camera_port, exc) from exc
            self.camera_port = self.camera.port
            if isinstance(self.camera, RtspCameraServer):
                self.set_live_view(self.camera.live_view)
        if self.announcer is not None:
            try:
                await self.announcer.start()
            except OSError as exc:
                await self.stop()
                raise listen_error("127.0.0.1", self.announcer.search_port or 0, exc) from exc
        self._model_task = asyncio.create_task(
            self.model.run(), name=f"bambu-lan-sim-model-{self.serial}"
        )
        self._model_task.add_done_callback(self._model_done)
        log.debug("simulated %s %s on %s:%s", self.profile.key, self.serial, self.host, self.port)

    async def _start_ftps(self) -> None:
        assert self.ftps_port is not None
        card = SimCard(self._card_dir, size_limit=self._card_size)
        ftps = FtpsServer(
            self.access_code,
            card,
            pasv_ports=self._pasv_ports,
            nlst_with_folder=self.profile.key.startswith("x1"),
        )
        # Its own context (the same certificate): FTPS turns session tickets off.
        context = await asyncio.to_thread(self._server_context)
        try:
            await ftps.start(self.host, self.ftps_port, context)
        except OSError as exc:
            card.close()
            raise listen_error(self.host, self.ftps_port, exc) from exc
        self.ftps = ftps
        self.ftps_port = ftps.port
        self.model.data.card_files = PrintFileReader(card)  # project_file reads the card

    @property
    def card(self) -> SimCard | None:
        """The storage card (once started with FTPS)."""
        return self.ftps.card if self.ftps is not None else None

    def _server_context(self) -> ssl.SSLContext:
        return self.authority.server_context(self.serial)

    def _model_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("the printer model of %s stopped", self.serial, exc_info=task.exception())

    async def stop(self) -> None:
        """Stop the model, close the listener and abort every connection. Idempotent."""
        task, self._model_task = self._model_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.announcer is not None:
            await self.announcer.stop()
        if self.camera is not None:
            await self.camera.stop()
        ftps, self.ftps = self.ftps, None
        if ftps is not None:
            self.model.data.card_files = None
            await ftps.stop()
            if self._card_dir is None:
                ftps.card.close()
        await self.broker.stop()

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

    def set_live_view(self, on: bool) -> None:
        """X1/P2S/H2: switch the LAN live view on or off, in the report and on the camera
        port (off: sessions end, new connections are closed at once)."""
        camera = self.camera
        if not isinstance(camera, RtspCameraServer):
            raise ConfigError(f"the simulated {self.profile.product_name} has no RTSPS camera")
        camera.set_live_view(on)
        port = "" if camera.port == 322 else f":{camera.port}"
        self.model.set_live_view(f"rtsps://{self.host}{port}/streaming/live/1" if on else None)

    # ---- how to connect ------------------------------------------------------------------

    def connection_info(self) -> dict[str, Any]:
        """Everything a client needs, as plain JSON-able values (includes the access code)."""
        return {
            "model": self.profile.key,
            "product_name": self.profile.product_name,
            "host": self.host,
            "port": self.port,
            "serial": self.serial,
            "access_code": self.access_code,
            "ca_path": str(self.ca_path),
            "fingerprint": self.fingerprint,
            "ftps_port": self.ftps.port if self.ftps is not None else None,
        } | self._service_ports()

    def _service_ports(self) -> dict[str, int]:
        """The camera and M-SEARCH ports, for the services this printer runs."""
        ports: dict[str, int] = {}
        if self.camera is not None and self.camera_port is not None:
            ports["camera_port"] = self.camera_port
        if self.announcer is not None and self.announcer.search_port is not None:
            ports["ssdp_port"] = self.announcer.search_port
        return ports

    def mosquitto_sub_command(self) -> str:
        """A ready ``mosquitto_sub`` line that prints this printer's reports.

        ``--insecure`` only skips the host-name check: like a real printer, the certificate
        names the serial and has no IP address in it. The chain is still verified against
        ``--cafile``.
        """
        client_id = f"bambu-lan-sim-{uuid.uuid4().hex[:12]}"
        args = [
            "mosquitto_sub",
            "-h", self.host,
            "-p", str(self.port),
            "--cafile", str(self.ca_path),
            "--insecure",
            "--tls-version", "tlsv1.2",
            "-u", "bblp",
            "-P", self.access_code,
            "-t", self.broker.report_topic,
            "-i", client_id,
            "-v",
        ]  # fmt: skip
        return shlex.join(args)

    # ---- faults (see Broker for the details) ---------------------------------------------

    def drop_connections(self) -> int:
        """Reset every client connection at once, with no goodbye. Returns how many."""
        return self.broker.drop_connections()

    def go_silent(self, recover_on: SilenceRecovery = "start") -> None:
        """Stop sending to the sessions open now, keeping their sockets open."""
        self.broker.go_silent(recover_on)

    def send_garbage(self, kind: GarbageKind = "random") -> bytes:
        """Publish a bad report payload to every subscriber; returns it."""
        return self.broker.send_garbage(kind)

    def delay_connack(self, seconds: float | None) -> None:
        """Answer CONNECT ``seconds`` late (``math.inf``: never; ``None``: back to normal)."""
        self.broker.delay_connack(seconds)

    def boot_window(self, seconds: float) -> None:
        """Refuse sessions with CONNACK 3 for ``seconds``, as a booting printer might."""
        self.broker.boot_window(seconds)

    def omit_puback(self, enabled: bool = True) -> None:
        """Stop (or resume) acknowledging QoS 1 publishes."""
        self.broker.omit_puback(enabled)

    def reboot(self, boot_seconds: float = 20.0) -> int:
        """Drop every connection and refuse new sessions for ``boot_seconds``, like a power
        cycle seen from the network. Returns how many connections were dropped."""
        dropped = self.broker.drop_connections()
        self.broker.boot_window(boot_seconds)
        return dropped
