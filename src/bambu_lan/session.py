"""One MQTT connection to one printer, kept alive (design.md "Connection rules").

paho-mqtt does the MQTT; this module drives it from asyncio and adds what the A1 needs:
TLS 1.2 with the identity checked before CONNECT, a CONNACK that may never come (the A1 just
closes the socket: paho's "code 7"), subscribe only after an accepted CONNACK, a watchdog for a
printer that goes silent with the socket open, and reconnects with jittered backoff that do not
hammer a printer refusing our access code. Reports, the bulk of the traffic, skip paho's reader:
``PacketSocket`` hands them over whole (packet_socket.py); paho reads every other packet.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import concurrent.futures.thread  # every connect uses the pool: not imported mid-connect
import contextlib
import enum
import logging
import random
import socket
import ssl
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from bambu_lan.config import PrinterConfig
from bambu_lan.errors import (
    AuthError,
    BambuError,
    ClosedBeforeConnack,
    ConnackTimeout,
    ConnectError,
    HostNotFound,
    NotConnected,
    ServerUnavailable,
    TrustError,
)
from bambu_lan.packet_socket import PacketSocket, report_payload
from bambu_lan.protocol.records import Record, record
from bambu_lan.protocol.topics import USERNAME, report_topic, request_topic
from bambu_lan.trust import HandshakeCheck, checking, shared_client_context

log = logging.getLogger("bambu_lan.session")


@record(slots=True)  # a frozen dataclass, cheaper to import (records.py)
class SessionOptions(Record):
    """Timing of one printer connection. Defaults suit a real A1 on Wi-Fi."""

    keepalive: float = 30.0
    connect_timeout: float = 10.0  # TCP + TLS
    connack_timeout: float = 10.0  # the A1 can take seconds on a cold session
    subscribe_timeout: float = 10.0
    watchdog: float = 30.0  # no message for this long: pushing.start + pushall
    watchdog_grace: float = 10.0  # still nothing after that: reconnect
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    auth_retry_delay: float = 60.0  # a refused access code is retried this slowly ...
    max_auth_failures: int = 3  # ... and at most this many times in a row
    trust_retry_delay: float = 60.0
    max_trust_failures: int = 3


class LinkState(enum.StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    FAILED = "failed"  # gave up: access code or identity refused too often
    CLOSED = "closed"


@dataclass(slots=True)
class ConnectionStatus:
    """Connection health, for views and the doctor."""

    state: LinkState = LinkState.DISCONNECTED
    attempts: int = 0
    connects: int = 0  # successful connections (1 + reconnects)
    auth_failures: int = 0  # in a row
    trust_failures: int = 0
    last_message_at: float | None = None  # time.monotonic()
    connected_since: float | None = None  # time.time()
    messages: int = 0
    watchdog_kicks: int = 0
    handler_errors: int = 0  # reports whose handling raised (logged once, then counted)
    client_id: str = ""
    error: BambuError | None = None  # the last connection error, as raised

    @property
    def last_error(self) -> str:
        """The last connection error in words ("" before any)."""
        return str(self.error) if self.error is not None else ""

    @property
    def connected(self) -> bool:
        return self.state is LinkState.CONNECTED

    def last_message_age(self) -> float | None:
        if self.last_message_at is None:
            return None
        return time.monotonic() - self.last_message_at

    def to_dict(self) -> dict[str, Any]:
        age = self.last_message_age()
        return {
            "state": self.state.value,
            "attempts": self.attempts,
            "connects": self.connects,
            "auth_failures": self.auth_failures,
            "last_error": self.last_error,
            "last_message_age": None if age is None else round(age, 3),
            "connected_since": self.connected_since,
            "messages": self.messages,
            "watchdog_kicks": self.watchdog_kicks,
            "handler_errors": self.handler_errors,
        }


_ACCEPTED = ReasonCode(PacketTypes.CONNACK, "Success")


def _connack_error(reason: ReasonCode) -> ConnectError:
    value = reason.value
    if value in (4, 5, 134, 135):
        return AuthError("the printer refused the access code (CONNACK 5, not authorized)")
    if value in (3, 136):
        return ServerUnavailable("the printer's MQTT server is unavailable (CONNACK 3)")
    return ConnectError(f"the printer refused the connection: {reason} (CONNACK {value})")


def _connect_error(exc: BaseException, cfg: PrinterConfig) -> BambuError:
    """One place where socket and TLS errors become ours (host and port in words)."""
    where = f"{cfg.host}:{cfg.port}"
    if isinstance(exc, BambuError):
        return exc
    if isinstance(exc, ConnectionRefusedError):
        error = ConnectError(
            f"{where} refused the connection",
            hint="is LAN-only mode on? Is this the printer's IP (Settings > WLAN)?",
        )
        error.retry_reason = f"{where} refused the connection (printer starting up or off?)"
        return error
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return ConnectError(
            f"no answer from {where} (timed out)",
            hint="check the IP, that the printer is on and on this network, and firewalls",
        )
    if isinstance(exc, ssl.SSLError):
        return ConnectError(
            f"TLS handshake with {where} failed: {exc.reason or exc}",
            hint="the printer speaks TLS 1.2 only; run `bambu-lan doctor` for details",
        )
    if isinstance(exc, socket.gaierror):
        return HostNotFound(
            f"unknown host {cfg.host!r}: {exc.strerror}",
            hint="check the printer's IP address (Settings > WLAN on the printer's screen)",
        )
    if isinstance(exc, OSError):
        return ConnectError(f"cannot reach {where}: {exc.strerror or exc}")
    return ConnectError(f"cannot connect to {where}: {exc}")


_CONNECT_POOL: concurrent.futures.ThreadPoolExecutor | None = None


def _connect_pool() -> concurrent.futures.ThreadPoolExecutor:
    """Threads for blocking connects, apart from the loop's default executor: in a farm, a
    few printers that are off (each blocking a thread up to connect_timeout) must not hold
    up the others, nor the application's own executor work."""
    global _CONNECT_POOL  # noqa: PLW0603 - one pool per process, made on first use
    if _CONNECT_POOL is None:
        _CONNECT_POOL = concurrent.futures.ThreadPoolExecutor(
            max_workers=32, thread_name_prefix="bambu-lan-connect"
        )
    return _CONNECT_POOL


class Link:
    """One paho client on one socket, driven by the running event loop: one connection
    attempt (``open``, ``subscribe``), then ``publish`` until ``closed`` resolves. No retries;
    ``Session`` adds those, the doctor uses a single ``Link`` to see each failure as it is."""

    __slots__ = (
        "_handshaking", "_on_payload", "_sock", "_topic", "cfg", "check", "client", "closed",
        "connack", "loop", "opts", "suback",
    )  # fmt: skip

    def __init__(
        self,
        cfg: PrinterConfig,
        client_id: str,
        opts: SessionOptions,
        on_payload: Callable[[bytes], None],
    ) -> None:
        self.cfg = cfg
        self.loop = asyncio.get_running_loop()
        self.check = HandshakeCheck(cfg.serial, cfg.trust, cfg.host)
        self.opts = opts
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=True,
            protocol=MQTTProtocolVersion.MQTTv311,
            reconnect_on_failure=False,
        )
        client.username_pw_set(USERNAME, cfg.access_code.reveal())
        client.tls_set_context(shared_client_context(cfg.trust))
        client.tls_insecure_set(True)  # the name is checked against the serial in trust.py
        client.connect_timeout = opts.connect_timeout
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self.client = client
        self._on_payload = on_payload
        self._topic = report_topic(cfg.serial).encode()
        self.connack: asyncio.Future[ReasonCode] = self.loop.create_future()
        self.closed: asyncio.Future[str] = self.loop.create_future()
        # The refusals in the SUBACK (none: subscribed).
        self.suback: asyncio.Future[tuple[ReasonCode, ...]] = self.loop.create_future()
        self._sock: Any = None
        self._handshaking: socket.socket | None = None  # the socket in paho's blocking connect

    def _connect_blocking(self) -> None:
        """paho's blocking connect, on a connect-pool thread, with our identity check. The
        handshaking socket is remembered so that ``abort`` can end a connect that hangs in
        the TLS handshake (a printer that accepts TCP and then says nothing) at once."""
        with checking(self.check, self._remember_handshake):
            self.client.connect(self.cfg.host, self.cfg.port, int(self.opts.keepalive))

    def _remember_handshake(self, sock: ssl.SSLSocket) -> None:
        self._handshaking = sock

    # -- connecting --

    async def open(self) -> None:
        """TCP + TLS (identity checked) + CONNECT, then wait for an accepted CONNACK."""
        # paho's connect blocks (TCP, TLS handshake, CONNECT): run it on the connect pool.
        connecting = self.loop.run_in_executor(_connect_pool(), self._connect_blocking)
        try:
            await asyncio.shield(connecting)
        except asyncio.CancelledError:
            # The thread cannot be stopped, but its socket can be shut: a hung handshake ends
            # now. Whatever it opens is closed, or the printer keeps a half-open session.
            self._interrupt_handshake()
            connecting.add_done_callback(self._abandoned)
            raise
        except TrustError:
            raise
        except Exception as exc:
            if self.check.failure is not None:
                raise self.check.failure from None
            raise _connect_error(exc, self.cfg) from None
        finally:
            self._handshaking = None
        self._attach()
        try:
            async with asyncio.timeout(self.opts.connack_timeout):
                await asyncio.wait((self.connack, self.closed), return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            self.abort()
            raise ConnackTimeout(
                f"no CONNACK from {self.cfg.host}:{self.cfg.port} within "
                f"{self.opts.connack_timeout:g} s",
                hint="the printer accepted TLS but does not answer MQTT: it may be overloaded "
                "or starting up; try again, or run `bambu-lan doctor`",
            ) from None
        if self.connack.done():
            reason = self.connack.result()
            if reason.is_failure:
                self.abort()
                raise _connack_error(reason)
            return
        self.abort()
        raise ClosedBeforeConnack(
            f"{self.cfg.host}:{self.cfg.port} closed the connection before answering CONNECT"
        )

    def _abandoned(self, connecting: asyncio.Future[Any]) -> None:
        """The connect we stopped waiting for has ended: close what it opened. Its error
        (the handshake we interrupted) is expected, and read here so asyncio does not report
        it as never retrieved."""
        if not connecting.cancelled():
            connecting.exception()
        self.abort()

    def _interrupt_handshake(self) -> None:
        sock = self._handshaking
        if sock is not None:
            # The plain socket's shutdown: wakes the thread blocked in the handshake (close()
            # alone does not on Linux) without touching the SSL object it is using.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    async def subscribe(self) -> None:
        """Subscribe to the report topic only (never wildcards, never /request)."""
        result, _mid = self.client.subscribe(report_topic(self.cfg.serial), qos=0)
        if result != mqtt.MQTT_ERR_SUCCESS:
            raise ConnectError(f"subscribe failed: {mqtt.error_string(result)}")
        try:
            async with asyncio.timeout(self.opts.subscribe_timeout):
                await asyncio.wait((self.suback, self.closed), return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            raise ConnectError("no SUBACK from the printer") from None
        if not self.suback.done():
            raise ConnectError(
                "the printer closed the connection on SUBSCRIBE",
                hint="a wrong-case or wrong serial? The A1 drops unknown subscriptions",
            )
        if self.suback.result():
            raise ConnectError(
                f"the printer refused the subscription to {report_topic(self.cfg.serial)}"
            )

    # -- the socket in the event loop --

    def _attach(self) -> None:
        sock = self.client.socket()
        if sock is None:
            raise ConnectError("the connection closed during the handshake")
        if not isinstance(sock, PacketSocket):  # every socket of shared_client_context is
            raise TypeError(f"expected a PacketSocket, got {type(sock).__name__}")
        self._sock = sock
        client = self.client
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = lambda c, u, s: self.loop.add_writer(s, self._write)
        client.on_socket_unregister_write = lambda c, u, s: self._remove_writer(s)
        self.loop.add_reader(sock, self._read)
        if client.want_write():
            self.loop.add_writer(sock, self._write)

    def _remove_writer(self, sock: Any) -> None:
        self.loop.remove_writer(sock)

    def _read(self) -> None:
        sock: PacketSocket = self._sock
        # Reports (QoS 0 PUBLISH on our topic) go straight to the handler; paho reads every
        # other packet, the end of the stream and errors (packet_socket.py says why).
        topic = self._topic
        on_payload = self._on_payload
        for _ in range(256):  # bounded: one event never holds the loop for long
            packet = sock.next_packet()
            if packet is None:
                return  # TLS has nothing more for now: the socket will be readable again
            payload = report_payload(packet, topic) if packet else None
            if payload is not None:
                on_payload(payload)
                continue
            sock.hand_to_paho(packet)
            self.client.loop_read()
            if self.client.socket() is not sock:
                return  # paho closed it
        # Whole packets may be waiting in our buffer or in TLS: the socket will not be
        # readable again for them, so come back after the loop's other work.
        self.loop.call_soon(self._read_more, sock)

    def _read_more(self, sock: PacketSocket) -> None:
        if self._sock is sock and self.client.socket() is sock:
            self._read()

    def _write(self) -> None:
        self.client.loop_write()

    def housekeeping(self) -> None:
        """paho's keepalive pings and timeouts; the loop-wide ticker calls it every second."""
        if self._sock is not None and not self.closed.done():
            self.client.loop_misc()

    def _on_socket_close(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._detach(sock)

    def _detach(self, sock: Any) -> None:
        with contextlib.suppress(Exception):
            self.loop.remove_reader(sock)
        with contextlib.suppress(Exception):
            self.loop.remove_writer(sock)

    # -- paho callbacks (event-loop thread) --

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        if not self.connack.done():
            # paho's ReasonCode carries a copy of its table of names (about 2 KB): a link
            # that is up keeps one shared "accepted" instead, which a farm feels.
            self.connack.set_result(reason if reason.is_failure else _ACCEPTED)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        if not self.closed.done():
            self.closed.set_result(str(reason))

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, codes: list[ReasonCode], props: Any
    ) -> None:
        if not self.suback.done():
            self.suback.set_result(tuple(code for code in codes if code.is_failure))

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._on_payload(bytes(message.payload))

    # -- use and teardown --

    def publish(self, payload: bytes, qos: int) -> None:
        info = self.client.publish(request_topic(self.cfg.serial), payload, qos=qos)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise NotConnected(f"publish failed: {mqtt.error_string(info.rc)}")

    async def close(self) -> None:
        """Send DISCONNECT and wait briefly for the socket to close."""
        if self.closed.done():
            return
        if self._sock is None or not self.connack.done():
            self.abort()  # never accepted: nothing to say goodbye to
            return
        self.client.disconnect()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                await asyncio.shield(self.closed)
        self.abort()

    def abort(self, why: str = "aborted") -> None:
        """Drop the socket now (no DISCONNECT)."""
        self._interrupt_handshake()
        sock = self.client.socket()
        if sock is not None:
            self._detach(sock)
        elif self._sock is not None:
            self._detach(self._sock)
        with contextlib.suppress(Exception):
            # paho has no public way to drop the socket without a DISCONNECT.
            self.client._sock_close()  # noqa: SLF001
        if not self.closed.done():
            self.closed.set_result(why)


class _Ticker:
    """One timer per event loop for every session's housekeeping (paho's keepalive, the
    watchdog): two timers per printer per second were half the CPU of a 1,000-printer farm."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.sessions: dict[Session, None] = {}  # insertion-ordered set
        self.interval = 1.0
        self._handle: asyncio.TimerHandle | None = None

    def add(self, session: Session) -> None:
        self.sessions[session] = None
        self.interval = min(self.interval, session.tick_interval)
        if self._handle is None:
            self._handle = self.loop.call_later(self.interval, self._tick)

    def discard(self, session: Session) -> None:
        self.sessions.pop(session, None)
        if not self.sessions:
            if self._handle is not None:
                self._handle.cancel()
                self._handle = None
            self.interval = 1.0

    def _tick(self) -> None:
        now = time.monotonic()
        for session in list(self.sessions):
            try:
                session.tick(now)
            except Exception:  # one printer's trouble must not stop the others' watchdogs
                log.exception("%s: housekeeping failed", session.cfg.label)
        self._handle = self.loop.call_later(self.interval, self._tick) if self.sessions else None


_TICKERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Ticker] = (
    weakref.WeakKeyDictionary()
)


def _ticker() -> _Ticker:
    loop = asyncio.get_running_loop()
    ticker = _TICKERS.get(loop)
    if ticker is None:
        ticker = _TICKERS[loop] = _Ticker(loop)
    return ticker


class SessionListener(Protocol):
    """What a ``Session`` tells the layer above (``PrinterConnection``). All calls are made
    on the event loop, and must not block."""

    def on_payload(self, payload: bytes, now: float) -> None: ...

    def on_connected(self, now: float) -> None:
        """Accepted CONNACK and SUBACK: the session can publish."""

    def on_disconnected(self, now: float, reason: str) -> None:
        """A connection that was up is gone (the session reconnects by itself)."""

    def on_attempt_failed(self, now: float, error: BambuError, retry_in: float | None) -> None:
        """A connection attempt failed; ``retry_in`` None: the session gave up (FAILED)."""

    def on_silence(self, now: float) -> None:
        """The watchdog saw no message for ``watchdog`` seconds."""

    def on_closed(self) -> None:
        """The session ended for good (closed by us)."""


class Session:
    """Keeps one printer connected and tells its ``listener`` what happens.

    Attempts that fail for a passing reason (a busy, starting or unreachable printer) are
    retried with jittered exponential backoff, forever; a refused access code or identity is
    retried slowly and at most a few times, then the session gives up (``FAILED``).
    """

    __slots__ = (
        "_closing", "_link", "_listener", "_silent_since", "_task", "cfg", "options", "status",
        "tick_interval",
    )  # fmt: skip

    def __init__(
        self,
        cfg: PrinterConfig,
        listener: SessionListener,
        *,
        options: SessionOptions | None = None,
    ) -> None:
        self.cfg = cfg
        self.options = options or SessionOptions()
        self.status = ConnectionStatus(client_id=f"bambu-lan-{uuid.uuid4()}")
        self._listener = listener
        self._link: Link | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._silent_since: float | None = None  # the watchdog kicked at this time
        self.tick_interval = min(1.0, self.options.watchdog / 10)

    # -- public --

    def start(self) -> None:
        if self._task is None:
            self.status.state = LinkState.CONNECTING
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"bambu-lan session {self.cfg.serial}"
            )

    @property
    def connected(self) -> bool:
        return self.status.connected and self._link is not None

    def publish(self, payload: bytes, qos: int = 0) -> None:
        if not self.connected or self._link is None:
            raise NotConnected(
                f"not connected to {self.cfg.label} ({self.status.state.value}"
                + (f": {self.status.last_error}" if self.status.last_error else "")
                + ")"
            )
        self._link.publish(payload, qos)

    @property
    def closing(self) -> bool:
        return self._closing

    async def close(self) -> None:
        """Clean shutdown: DISCONNECT sent, task ended, socket closed."""
        self._closing = True
        link, self._link = self._link, None
        if link is not None:
            await link.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.status.state = LinkState.CLOSED
        self._listener.on_closed()

    # -- the loop --

    def _payload(self, payload: bytes) -> None:
        now = time.monotonic()
        self.status.last_message_at = now
        self.status.messages += 1
        try:
            self._listener.on_payload(payload, now)
        except Exception:
            # A report we cannot handle must not end a monitor that runs for weeks.
            self.status.handler_errors += 1
            if self.status.handler_errors == 1:
                log.exception("%s: a report could not be handled (skipped)", self.cfg.label)

    async def _run(self) -> None:
        opts = self.options
        backoff = opts.backoff_initial
        while not self._closing:
            self.status.attempts += 1
            self.status.state = LinkState.CONNECTING
            link = Link(self.cfg, self.status.client_id, opts, self._payload)
            try:
                await link.open()
                await link.subscribe()
            except asyncio.CancelledError:
                link.abort()
                raise
            except BambuError as exc:
                link.abort()
                delay = self._failure_delay(exc, backoff)
                backoff = min(backoff * 2, opts.backoff_max)
                self.status.error = exc
                self.status.state = LinkState.FAILED if delay is None else LinkState.DISCONNECTED
                self._listener.on_attempt_failed(time.monotonic(), exc, delay)
                if delay is None:
                    return
                log.info("%s: %s; retrying in %.1f s", self.cfg.label, exc, delay)
                await asyncio.sleep(delay)
                continue
            # Connected and subscribed.
            self._link = link
            self.status.connects += 1
            self.status.auth_failures = 0
            self.status.trust_failures = 0
            self.status.connected_since = time.time()
            now = time.monotonic()
            self.status.last_message_at = now
            self.status.state = LinkState.CONNECTED
            self._silent_since = None
            backoff = opts.backoff_initial
            ticker = _ticker()
            ticker.add(self)
            try:
                self._listener.on_connected(now)
                reason = _describe_close(await asyncio.shield(link.closed))
            finally:
                ticker.discard(self)
                self._link = None
            if self.closing:  # close() ran while we waited
                return
            link.abort()
            error = ConnectError(f"connection lost: {reason}")
            self.status.error = error
            self.status.state = LinkState.DISCONNECTED
            self._listener.on_disconnected(time.monotonic(), reason)
            log.info("%s: %s; reconnecting", self.cfg.label, error)
            await asyncio.sleep(_jitter(opts.backoff_initial))

    def _failure_delay(self, exc: BambuError, backoff: float) -> float | None:
        """How long to wait before the next attempt, or None to give up."""
        opts = self.options
        if isinstance(exc, AuthError):
            self.status.auth_failures += 1
            if self.status.auth_failures >= opts.max_auth_failures:
                return None
            return opts.auth_retry_delay
        if isinstance(exc, TrustError):
            self.status.trust_failures += 1
            if self.status.trust_failures >= opts.max_trust_failures:
                return None
            return opts.trust_retry_delay
        return _jitter(backoff)

    def tick(self, now: float) -> None:
        """Housekeeping, from the loop-wide ticker: paho's keepalive, and the watchdog (no
        message for ``watchdog`` s: ask for data; still none after the grace: reconnect)."""
        link = self._link
        if link is None:
            return
        link.housekeeping()
        opts = self.options
        last = self.status.last_message_at or now
        kicked = self._silent_since
        if kicked is not None:
            if last > kicked:
                self._silent_since = None  # it spoke again
            elif now - kicked >= opts.watchdog_grace:
                self._silent_since = None
                link.abort(
                    f"printer silent for {opts.watchdog + opts.watchdog_grace:.0f} s "
                    "with the socket open (watchdog)"
                )
            return
        if now - last >= opts.watchdog:
            self._silent_since = now
            self.status.watchdog_kicks += 1
            log.info("%s: no message for %.0f s; sending pushing.start", self.cfg.label, now - last)
            with contextlib.suppress(BambuError):
                self._listener.on_silence(now)


def _describe_close(reason: str) -> str:
    if reason == "aborted":
        return "connection closed"
    if "watchdog" in reason:
        return reason
    return "the printer closed the connection (paho code 7: connection lost)"


def _jitter(delay: float) -> float:
    return delay * random.uniform(0.8, 1.2)


__all__ = [
    "ClosedBeforeConnack",
    "ConnackTimeout",
    "ConnectionStatus",
    "Link",
    "LinkState",
    "ServerUnavailable",
    "Session",
    "SessionListener",
    "SessionOptions",
]
