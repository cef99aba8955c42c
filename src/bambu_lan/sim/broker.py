"""The strict MQTT broker of one simulated printer (asyncio, TLS 1.2).

A real A1 runs a tiny broker on an ESP32 that drops clients for things a general-purpose
broker forgives (protocol.md §3, design.md "Connection rules"). This one reproduces those
rules, each switchable through ``BrokerRules`` and strict by default:

* CONNECT → CONNACK 0 after an auth delay (0.1 s, like the real board), or CONNACK 5 when
  the user is not ``bblp`` or the password is not the access code (then close);
* any packet other than CONNECT before the CONNACK has been *sent* → close (an early SUBSCRIBE
  really is early, because of the auth delay);
* SUBSCRIBE: ``device/{SERIAL}/report`` → SUBACK 0. A1/A1 mini: a wildcard or any other
  filter → close without SUBACK. P1S: ``device/{SERIAL}/request`` → close. X1C: permissive,
  with standard topic matching for delivery (and ``/request`` subscribers see requests);
* PUBLISH anywhere but ``device/{SERIAL}/request`` → close (ESP32 brokers); a valid request
  goes to the printer model; QoS 1 → PUBACK (unless the omit-PUBACK fault is on); QoS 2 is a
  protocol error;
* a session limit (4 on the A1): the extra connection is closed right after its CONNECT,
  without CONNACK (paho reports that as "code 7", the peer closed); a second CONNECT with the
  same client id kicks the older session;
* PINGREQ → PINGRESP; DISCONNECT → close; a malformed packet closes that connection only;
  nothing a client sends can stop the server; a connection that sends no CONNECT within
  ``connect_timeout`` is closed.

TLS is the server context of ``certs`` (TLS 1.2 only), run on memory BIOs inside each
connection; a failed handshake (a TLS 1.3-only client, plain MQTT, garbage) is counted as
``tls_handshake`` and hurts no one else.

Faults for tests and demos: ``drop_connections``, ``go_silent`` (no reports, but PINGREQ is
still answered: the socket and the MQTT session look healthy, only the data stops),
``send_garbage``, ``delay_connack``, ``boot_window`` and ``omit_puback``. ``stats``,
``closes``, ``events`` and the ``wait_for_*`` coroutines let tests observe the broker without
sleeping.

**Boot window, a documented choice.** What a real A1/P1 does in the ~15-30 s after boot is
unknown (protocol.md §3.1, §14: "may refuse connections"). Here TLS is accepted and CONNECT is
answered with CONNACK 3 ("server unavailable"), then the connection is closed. That lets a
diagnosis tell a booting printer (CONNACK 3) from a full one (closed after CONNECT, no
CONNACK).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import enum
import hmac
import json
import logging
import math
import random
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, cast

from bambu_lan.sim import mqtt_wire as wire
from bambu_lan.sim.profiles import ModelProfile

__all__ = [
    "GARBAGE_KINDS",
    "Broker",
    "BrokerRules",
    "BrokerStats",
    "CloseReason",
    "GarbageKind",
    "SilenceRecovery",
]

log = logging.getLogger(__name__)

GarbageKind = Literal["random", "non_utf8", "truncated_json", "trailing_nul", "not_json"]
GARBAGE_KINDS: Final[tuple[GarbageKind, ...]] = (
    "random",
    "non_utf8",
    "truncated_json",
    "trailing_nul",
    "not_json",
)
SilenceRecovery = Literal["start", "reconnect"]


class CloseReason(enum.StrEnum):
    """Why a connection ended; the keys of ``BrokerStats.closes``."""

    EARLY_PACKET = "early_packet"  # a packet other than CONNECT before CONNACK was sent
    WILDCARD_SUBSCRIBE = "wildcard_subscribe"
    FOREIGN_SUBSCRIBE = "foreign_subscribe"  # a filter other than device/{SERIAL}/report
    REQUEST_SUBSCRIBE = "request_subscribe"  # device/{SERIAL}/request (P1 drops it)
    FOREIGN_PUBLISH = "foreign_publish"  # a PUBLISH outside device/{SERIAL}/request
    BAD_AUTH = "bad_auth"  # CONNACK 5 sent
    BAD_PROTOCOL = "bad_protocol"  # CONNACK 1 or 2 sent (MQTT version, client id)
    SESSION_LIMIT = "session_limit"  # closed right after CONNECT, no CONNACK
    BOOT_WINDOW = "boot_window"  # CONNACK 3 sent
    KICKED = "kicked"  # a newer session took the same client id
    SECOND_CONNECT = "second_connect"
    MALFORMED = "malformed"  # the bytes were not a valid packet of the subset
    TLS_HANDSHAKE = "tls_handshake"  # the TLS handshake failed (TLS 1.3 only, not TLS...)
    TLS_ERROR = "tls_error"  # a TLS error after the handshake (bad record, ...)
    CONNECT_TIMEOUT = "connect_timeout"  # no CONNECT in time
    KEEPALIVE_TIMEOUT = "keepalive_timeout"  # only with BrokerRules.enforce_keepalive
    SLOW_CONSUMER = "slow_consumer"  # too much unread data queued for this client
    DISCONNECT = "disconnect"  # the client sent DISCONNECT (the polite way)
    CLIENT_CLOSED = "client_closed"  # the client closed or reset the socket, no DISCONNECT
    DROPPED = "dropped"  # the drop_connections() fault
    STOPPED = "stopped"  # the broker stopped
    INTERNAL_ERROR = "internal_error"  # a bug in the simulator (logged at debug)


@dataclass(slots=True)
class BrokerRules:
    """The broker's behaviour; strict (an A1) by default, every rule switchable.

    ``BrokerRules.from_profile(profile, **overrides)`` takes the per-model rules from a
    ``ModelProfile``. The broker reads the rules at each decision, so a test may change a
    field of ``broker.rules`` while clients are connected.
    """

    username: str = "bblp"
    #: Seconds from CONNECT to CONNACK. ``math.inf``: the CONNACK never comes. Even 0 sends
    #: it on the next loop iteration, so packets written together with CONNECT stay early.
    auth_delay: float = 0.1
    #: MQTT sessions at once (CONNECT received, not closed); negative: no limit.
    max_sessions: int = 4
    drop_on_wildcard_subscribe: bool = True
    drop_on_foreign_subscribe: bool = True
    drop_on_request_subscribe: bool = True
    #: Close on a PUBLISH outside device/{SERIAL}/request (ESP32-class brokers, protocol.md
    #: §3.2). When off, such a PUBLISH is delivered to matching subscribers, like mosquitto.
    drop_on_foreign_publish: bool = True
    #: Close on any packet before CONNACK is sent. When off, they wait and run after CONNACK.
    drop_on_early_packet: bool = True
    kick_duplicate_client_id: bool = True
    #: Send the full report to a new report subscriber. Real printers do not (clients must
    #: ask with pushall); some Studio-compatibility shims do (protocol.md §12.3).
    push_full_on_subscribe: bool = False
    #: Close a session silent for 1.5 x its keepalive. Off: bambuddy reports that real
    #: firmware does not enforce it (protocol.md §3.1).
    enforce_keepalive: bool = False
    connect_timeout: float = 10.0
    max_packet_size: int = wire.MAX_PACKET_SIZE
    #: Unread bytes queued for one client before it is dropped as a slow consumer.
    max_write_buffer: int = 4 << 20

    @classmethod
    def from_profile(cls, profile: ModelProfile, **overrides: Any) -> BrokerRules:
        """The rules of a printer model, with ``overrides`` applied (``auth_delay=0``...)."""
        rules = cls(
            max_sessions=profile.max_sessions,
            drop_on_wildcard_subscribe=profile.drop_on_wildcard_subscribe,
            drop_on_foreign_subscribe=profile.drop_on_foreign_subscribe,
            drop_on_request_subscribe=profile.drop_on_request_subscribe,
            # The profile has no field of its own for this: the ESP32-class brokers (A1, P1)
            # drop foreign publishes and foreign /request subscriptions alike, the X1's Linux
            # broker drops neither.
            drop_on_foreign_publish=profile.drop_on_request_subscribe,
        )
        return dataclasses.replace(rules, **overrides)


@dataclass(frozen=True, slots=True)
class BrokerStats:
    """A snapshot of the broker's counters."""

    connections: int  # TLS handshakes completed since start
    sessions: int  # live MQTT sessions (CONNACK 0 sent, not closed)
    subscribers: int  # live sessions that receive the report topic
    closes: Mapping[str, int]  # CloseReason value -> count since start
    requests: int  # PUBLISHes to device/{SERIAL}/request handed to the printer
    reports: int  # report payloads published (each may go to several subscribers)
    deliveries: int  # PUBLISH packets written to clients


class _State(enum.Enum):
    HANDSHAKE = "tls_handshake"
    AWAIT_CONNECT = "await_connect"
    AUTHENTICATING = "authenticating"  # CONNECT received, CONNACK not yet sent
    CONNECTED = "connected"
    CLOSED = "closed"


_OPEN_SESSION: Final = (_State.AUTHENTICATING, _State.CONNECTED)


class _Connection(asyncio.Protocol):
    """One client connection: TLS over the TCP stream, then the MQTT state machine.

    TLS runs here on ``ssl.MemoryBIO`` rather than through asyncio's SSL transport, which
    reserves a 256 KiB receive buffer per connection (256 MB for a thousand subscribers of
    a simulated farm). Owning the layer also lets the broker count failed handshakes and
    abort handshakes in progress when it stops.
    """

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.transport: asyncio.Transport | None = None
        self.tls: ssl.SSLObject | None = None
        self._tls_in = ssl.MemoryBIO()
        self._tls_out = ssl.MemoryBIO()
        self.reader = wire.PacketReader(max_packet_size=broker.rules.max_packet_size)
        self.state = _State.HANDSHAKE
        self.client_id = "?"
        self.kickable = False  # False for server-assigned ids (empty client id)
        self.filters: set[str] = set()
        self.wants_reports = False
        self.wants_requests = False
        self.silenced = False
        self.timer: asyncio.TimerHandle | None = None
        self.keepalive = 0
        self.last_rx = 0.0
        self.pending: list[wire.Packet] = []  # early packets, when they are not fatal

    def __repr__(self) -> str:
        return f"<_Connection {self.client_id!r} {self.state.value}>"

    # ---- asyncio.Protocol (TCP) ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        broker = self.broker
        self.last_rx = broker.loop.time()
        broker._connection_made(self)
        context = broker.ssl_context
        if context is None:
            self._tls_ready()
        else:
            self.tls = context.wrap_bio(self._tls_in, self._tls_out, server_side=True)
        # One timer covers the TLS handshake and the CONNECT: a client that stalls in either
        # must not hold a connection (and on an A1, one of few sessions) for long.
        self.timer = broker.loop.call_later(
            broker.rules.connect_timeout, self._guarded, self._connect_timeout
        )

    def data_received(self, data: bytes) -> None:
        if not self.is_open():
            return
        self.last_rx = self.broker.loop.time()
        tls = self.tls
        if tls is None:
            self._mqtt_received(data)
            return
        self._tls_in.write(data)
        if self.state is _State.HANDSHAKE:
            try:
                tls.do_handshake()
            except ssl.SSLWantReadError:
                self._flush_tls()
                return
            except (ssl.SSLError, OSError) as exc:
                # Wrong version (a TLS 1.3-only client), no shared cipher, not TLS at all...
                log.debug("%s: TLS handshake failed: %s", self.broker.serial, exc)
                self._flush_tls()  # the alert, if OpenSSL made one
                self.close(CloseReason.TLS_HANDSHAKE)
                return
            self._flush_tls()
            self._tls_ready()
        chunks: list[bytes] = []
        eof = False
        try:
            while True:
                chunk = tls.read(65536)
                if not chunk:  # close_notify from the client
                    eof = True
                    break
                chunks.append(chunk)
        except ssl.SSLWantReadError:
            pass
        except (ssl.SSLError, OSError) as exc:
            log.debug("%s: TLS error: %s", self._who(), exc)
            self._flush_tls()
            self.close(CloseReason.TLS_ERROR)
            return
        self._flush_tls()  # reading may have produced TLS output (alerts, tickets)
        if chunks:
            self._mqtt_received(b"".join(chunks))
        if eof:
            self.close(CloseReason.CLIENT_CLOSED)

    def eof_received(self) -> bool | None:
        self.close(CloseReason.CLIENT_CLOSED)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.state is not _State.CLOSED:
            self.close(CloseReason.CLIENT_CLOSED)
        self.broker._connection_lost(self)
        self.transport = None
        self.tls = None

    # ---- TLS -----------------------------------------------------------------------------

    def _tls_ready(self) -> None:
        self.state = _State.AWAIT_CONNECT
        self.broker._tls_established(self)

    def _flush_tls(self) -> None:
        """Hand whatever TLS produced to the socket."""
        transport = self.transport
        if self._tls_out.pending and transport is not None and not transport.is_closing():
            transport.write(self._tls_out.read())

    def _mqtt_received(self, data: bytes) -> None:
        try:
            self.reader.feed(data)
            # Several packets may arrive in one read; stop at the one that closes us.
            while self.is_open():
                packet = self.reader.next_packet()
                if packet is None:
                    break
                self._dispatch(packet)
        except wire.ProtocolViolation as exc:
            self._violation(exc)
        except Exception:
            log.debug("%s: internal error on a packet", self._who(), exc_info=True)
            self.close(CloseReason.INTERNAL_ERROR)

    # ---- helpers -------------------------------------------------------------------------

    def is_open(self) -> bool:
        """Whether the connection has not been closed (by either side)."""
        return self.state is not _State.CLOSED

    def _who(self) -> str:
        return f"{self.broker.serial} {self.client_id!r}"

    def _guarded(self, callback: Callable[[], None]) -> None:
        """Run a timer callback; a bug in it closes this connection, never the server."""
        try:
            callback()
        except Exception:
            log.debug("%s: internal error in a timer", self._who(), exc_info=True)
            self.close(CloseReason.INTERNAL_ERROR)

    def send(self, data: bytes) -> None:
        """Queue bytes for the client; drop it if it stopped reading long ago."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self.tls is None:
            transport.write(data)
        else:
            try:
                self.tls.write(data)
            except (ssl.SSLError, OSError) as exc:
                log.debug("%s: TLS write failed: %s", self._who(), exc)
                self.close(CloseReason.TLS_ERROR, abort=True)
                return
            self._flush_tls()
        if transport.get_write_buffer_size() > self.broker.rules.max_write_buffer:
            self.close(CloseReason.SLOW_CONSUMER, abort=True)

    def close(self, reason: CloseReason, *, abort: bool = False) -> None:
        """End the connection (once) and count why.

        ``abort``: reset at once (TCP RST), no goodbye. Otherwise the queued bytes go out,
        then a TLS close_notify and a FIN; the client's own close_notify is not awaited.
        """
        if self.state is _State.CLOSED:
            return
        was = self.state
        self.state = _State.CLOSED
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.broker._connection_closed(self, reason, was)
        transport = self.transport
        if transport is None:
            return
        if abort:
            transport.abort()
            return
        if self.tls is not None and was is not _State.HANDSHAKE:
            with contextlib.suppress(ssl.SSLError, OSError):
                self.tls.unwrap()  # queues close_notify; raises while awaiting the peer's
            self._flush_tls()
        transport.close()

    def _violation(self, exc: wire.ProtocolViolation) -> None:
        log.debug("%s: protocol violation: %s", self._who(), exc)
        if exc.connack_code is not None and self.state is _State.AWAIT_CONNECT:
            # A CONNECT of another MQTT version or an unusable client id: MQTT wants a
            # CONNACK refusal before the close (§3.1.2.2, §3.1.3.1).
            self.send(wire.encode_connack(exc.connack_code))
            self.close(CloseReason.BAD_PROTOCOL)
        else:
            self.close(CloseReason.MALFORMED)

    # ---- packets -------------------------------------------------------------------------

    def _dispatch(self, packet: wire.Packet) -> None:
        if isinstance(packet, wire.Connect):
            self._on_connect(packet)
            return
        if self.state is _State.AWAIT_CONNECT:
            # The first packet must be CONNECT (§3.1); anything else is as early as can be.
            self.close(CloseReason.EARLY_PACKET)
            return
        if self.state is _State.AUTHENTICATING:
            if self.broker.rules.drop_on_early_packet:
                self.close(CloseReason.EARLY_PACKET)
            else:
                self.pending.append(packet)
            return
        self._handle(packet)

    def _handle(self, packet: wire.Packet) -> None:
        match packet:
            case wire.Subscribe():
                self._on_subscribe(packet)
            case wire.Publish():
                self._on_publish(packet)
            case wire.Unsubscribe():
                self.filters.difference_update(packet.filters)
                self._refresh_interest()
                self.send(wire.encode_unsuback(packet.packet_id))
                self.broker._event(self.client_id, f"unsubscribe {list(packet.filters)}")
                self.broker._changed()
            case wire.PingReq():
                self.send(wire.encode_pingresp())
            case wire.Disconnect():
                self.close(CloseReason.DISCONNECT)
            case wire.PubAck():
                pass  # the broker never sends QoS 1, so there is nothing to acknowledge
            case _:  # a server-side packet type cannot come out of a server-role reader
                raise wire.ProtocolViolation(f"unexpected {type(packet).__name__}")

    def _on_connect(self, packet: wire.Connect) -> None:
        broker = self.broker
        rules = broker.rules
        if self.state is not _State.AWAIT_CONNECT:
            early = self.state is _State.AUTHENTICATING
            self.close(CloseReason.EARLY_PACKET if early else CloseReason.SECOND_CONNECT)
            return
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if packet.client_id:
            self.client_id, self.kickable = packet.client_id, True
        else:  # MQTT lets the server assign one (§3.1.3.1); never kick anyone over it
            self.client_id, self.kickable = broker._assign_client_id(), False
        self.keepalive = packet.keepalive
        broker._event(self.client_id, "connect")

        if rules.max_sessions >= 0 and broker._open_sessions(excluding=self) >= rules.max_sessions:
            # The A1's answer to one session too many: close right after CONNECT, no CONNACK.
            self.close(CloseReason.SESSION_LIMIT)
            return

        self.state = _State.AUTHENTICATING
        if broker._booting():
            code, reason = wire.ConnectReturnCode.SERVER_UNAVAILABLE, CloseReason.BOOT_WINDOW
        elif packet.username != rules.username or not hmac.compare_digest(
            packet.password or b"", broker._access_code_bytes
        ):
            code, reason = wire.ConnectReturnCode.NOT_AUTHORIZED, CloseReason.BAD_AUTH
        else:
            code, reason = wire.ConnectReturnCode.ACCEPTED, None
        delay = broker.connack_delay
        if math.isinf(delay):
            return  # the CONNACK that never comes
        self.timer = broker.loop.call_later(
            max(delay, 0.0), self._guarded, lambda: self._finish_connect(code, reason)
        )

    def _finish_connect(self, code: int, reason: CloseReason | None) -> None:
        self.timer = None
        if self.state is not _State.AUTHENTICATING:
            return
        broker = self.broker
        self.send(wire.encode_connack(code))
        broker._event(self.client_id, f"connack {code}")
        if reason is not None:
            self.close(reason)
            return
        if broker.rules.kick_duplicate_client_id and self.kickable:
            for other in broker._sessions_with_id(self.client_id, excluding=self):
                other.close(CloseReason.KICKED)
        self.state = _State.CONNECTED
        broker._session_started(self)
        if self.keepalive and broker.rules.enforce_keepalive:
            self._arm_keepalive(1.5 * self.keepalive)
        pending, self.pending = self.pending, []
        for packet in pending:
            if not self.is_open():
                break
            self._handle(packet)

    def _arm_keepalive(self, delay: float) -> None:
        self.timer = self.broker.loop.call_later(delay, self._guarded, self._check_keepalive)

    def _check_keepalive(self) -> None:
        limit = 1.5 * self.keepalive
        idle = self.broker.loop.time() - self.last_rx
        if idle >= limit:
            self.close(CloseReason.KEEPALIVE_TIMEOUT)
        else:
            self._arm_keepalive(limit - idle)

    def _connect_timeout(self) -> None:
        self.timer = None
        if self.state is _State.AWAIT_CONNECT:
            self.close(CloseReason.CONNECT_TIMEOUT)

    def _on_subscribe(self, packet: wire.Subscribe) -> None:
        broker = self.broker
        for topic_filter, _qos in packet.topics:
            refusal = broker._subscription_refusal(topic_filter)
            if refusal is not None:
                broker._event(self.client_id, f"subscribe {topic_filter!r} refused")
                self.close(refusal)  # no SUBACK: the socket just closes, as on an A1
                return
        had_reports = self.wants_reports
        self.filters.update(topic_filter for topic_filter, _qos in packet.topics)
        self._refresh_interest()
        # Granted QoS 0 for every filter: the printer publishes at QoS 0 only.
        self.send(wire.encode_suback(packet.packet_id, [0] * len(packet.topics)))
        broker._event(self.client_id, f"subscribe {[f for f, _ in packet.topics]}")
        broker._changed()
        if self.wants_reports and not had_reports and broker.rules.push_full_on_subscribe:
            broker._push_full_to(self)

    def _refresh_interest(self) -> None:
        broker = self.broker
        self.wants_reports = any(wire.topic_matches(f, broker.report_topic) for f in self.filters)
        self.wants_requests = any(wire.topic_matches(f, broker.request_topic) for f in self.filters)

    def _on_publish(self, packet: wire.Publish) -> None:
        broker = self.broker
        if packet.topic != broker.request_topic and broker.rules.drop_on_foreign_publish:
            broker._event(self.client_id, f"publish to {packet.topic!r} refused")
            self.close(CloseReason.FOREIGN_PUBLISH)
            return
        if packet.qos == 1 and packet.packet_id is not None and not broker.omitting_puback:
            self.send(wire.encode_puback(packet.packet_id))
        broker._route_publish(packet)


class Broker:
    """The MQTT broker of one simulated printer, listening on one address and port.

    ``request_handler`` receives the payload of every PUBLISH to ``device/{SERIAL}/request``
    (the printer model's ``handle_request``); ``report_source`` returns the current full
    report (the model's ``full_report``), used by ``send_garbage`` and
    ``push_full_on_subscribe``. Reports go out through ``publish_report(payload)``.
    """

    def __init__(
        self,
        serial: str,
        access_code: str,
        *,
        rules: BrokerRules | None = None,
        request_handler: Callable[[bytes], None] | None = None,
        report_source: Callable[[], Mapping[str, Any]] | None = None,
        seed: int | None = None,
    ) -> None:
        self.serial = serial
        self._access_code_bytes = access_code.encode("utf-8")
        self.rules = rules if rules is not None else BrokerRules()
        self.request_handler = request_handler
        self.report_source = report_source
        self.report_topic = f"device/{serial}/report"
        self.request_topic = f"device/{serial}/request"
        self.host = ""
        self.port = 0
        self._rng = random.Random(seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        #: The server context (set by ``start``); ``None`` serves plain MQTT.
        self.ssl_context: ssl.SSLContext | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self._auto_ids = 0
        # Counters.
        self._total_connections = 0
        self._sessions = 0
        self._closes: collections.Counter[str] = collections.Counter()
        self._requests = 0
        self._reports = 0
        self._deliveries = 0
        #: The last events as (client id, what happened), oldest first; for tests and demos.
        self.events: collections.deque[tuple[str, str]] = collections.deque(maxlen=500)
        # Faults.
        self._connack_delay: float | None = None
        self.unanswered: frozenset[str] = frozenset()  # request commands ignored (a fault)
        self._boot_until = 0.0
        self._silence_recovery: SilenceRecovery | None = None
        self.omitting_puback = False

    def __repr__(self) -> str:
        # Never the access code.
        return (
            f"<Broker {self.serial} {self.host}:{self.port} "
            f"sessions={self._sessions} running={self.running}>"
        )

    # ---- lifecycle -----------------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the broker runs on (set by ``start``)."""
        if self._loop is None:
            raise RuntimeError("the broker is not started")
        return self._loop

    @property
    def running(self) -> bool:
        """Whether the broker is listening."""
        return self._server is not None

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, *, ssl_context: ssl.SSLContext | None
    ) -> None:
        """Listen on ``host:port`` (0 = a free port; read ``broker.port`` afterwards).

        ``ssl_context=None`` serves plain MQTT, for debugging only: real printers never do.
        Raises ``OSError`` when the address is unavailable.
        """
        if self._server is not None:
            raise RuntimeError("the broker is already started")
        self._loop = asyncio.get_running_loop()
        self.ssl_context = ssl_context
        self._server = await self._loop.create_server(
            lambda: _Connection(self), host, port, reuse_address=True
        )
        sockname = self._server.sockets[0].getsockname()
        self.host, self.port = sockname[0], sockname[1]
        log.debug("%s: listening on %s:%s", self.serial, self.host, self.port)

    async def stop(self) -> None:
        """Stop listening and abort every connection; returns when all are gone."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for connection in list(self._connections):
            connection.close(CloseReason.STOPPED, abort=True)
            if connection.transport is not None:
                connection.transport.abort()  # also the ones already saying goodbye
        await server.wait_closed()
        if self._connections:
            try:
                await self.wait_for(lambda: not self._connections, timeout=5.0)
            except TimeoutError:
                log.debug("%s: connections still open after stop", self.serial)

    # ---- publishing ----------------------------------------------------------------------

    def publish_report(self, payload: bytes) -> None:
        """Send one payload on ``device/{SERIAL}/report`` to every subscriber not silenced.

        This is the printer model's ``publish``.
        """
        self._reports += 1
        self._deliver(self.report_topic, payload)

    def _deliver(self, topic: str, payload: bytes) -> int:
        is_report = topic == self.report_topic
        packet: bytes | None = None
        count = 0
        for connection in tuple(self._connections):
            if connection.state is not _State.CONNECTED or connection.silenced:
                continue
            if is_report:
                if not connection.wants_reports:
                    continue
            elif topic == self.request_topic:
                if not connection.wants_requests:
                    continue
            elif not any(wire.topic_matches(f, topic) for f in connection.filters):
                continue
            if packet is None:
                packet = wire.encode_publish(topic, payload)  # encoded once for everyone
            connection.send(packet)
            count += 1
        self._deliveries += count
        return count

    def _route_publish(self, packet: wire.Publish) -> None:
        if packet.topic == self.request_topic:
            self._requests += 1
            # Only a permissive (X1) broker lets anyone subscribe to /request and watch.
            self._deliver(packet.topic, packet.payload)
            handler = self.request_handler
            if self.unanswered and _command_of(packet.payload) in self.unanswered:
                handler = None  # a fault: the printer ignores this command
            if handler is not None:
                try:
                    handler(packet.payload)
                except Exception:  # the model promises not to raise; a bug must not spread
                    log.debug("%s: request handler failed", self.serial, exc_info=True)
            self._changed()
        else:
            self._deliver(packet.topic, packet.payload)

    def _push_full_to(self, connection: _Connection) -> None:
        if self.report_source is None:
            return
        import orjson

        payload = orjson.dumps(self.report_source())
        connection.send(wire.encode_publish(self.report_topic, payload))
        self._deliveries += 1

    # ---- rules ---------------------------------------------------------------------------

    def _subscription_refusal(self, topic_filter: str) -> CloseReason | None:
        rules = self.rules
        if topic_filter == self.report_topic:
            return None
        if wire.is_wildcard(topic_filter):
            return CloseReason.WILDCARD_SUBSCRIBE if rules.drop_on_wildcard_subscribe else None
        if topic_filter == self.request_topic:
            return CloseReason.REQUEST_SUBSCRIBE if rules.drop_on_request_subscribe else None
        return CloseReason.FOREIGN_SUBSCRIBE if rules.drop_on_foreign_subscribe else None

    def _open_sessions(self, *, excluding: _Connection) -> int:
        kick = self.rules.kick_duplicate_client_id and excluding.kickable
        return sum(
            1
            for c in self._connections
            if c is not excluding
            and c.state in _OPEN_SESSION
            # A CONNECT that will kick an older session with its id takes that one's place.
            and not (kick and c.kickable and c.client_id == excluding.client_id)
        )

    def _sessions_with_id(self, client_id: str, *, excluding: _Connection) -> list[_Connection]:
        return [
            c
            for c in self._connections
            if c is not excluding
            and c.kickable
            and c.client_id == client_id
            and c.state in _OPEN_SESSION
        ]

    def _assign_client_id(self) -> str:
        self._auto_ids += 1
        return f"(assigned-{self._auto_ids})"

    def _booting(self) -> bool:
        return self.loop.time() < self._boot_until

    @property
    def connack_delay(self) -> float:
        """Seconds from CONNECT to CONNACK now: the ``delay_connack`` fault or the rule."""
        return self._connack_delay if self._connack_delay is not None else self.rules.auth_delay

    # ---- bookkeeping (called by connections) ---------------------------------------------

    def _connection_made(self, connection: _Connection) -> None:
        self._connections.add(connection)

    def _tls_established(self, connection: _Connection) -> None:
        self._total_connections += 1

    def _connection_lost(self, connection: _Connection) -> None:
        self._connections.discard(connection)
        self._changed()

    def _session_started(self, connection: _Connection) -> None:
        self._sessions += 1
        self._changed()

    def _connection_closed(self, connection: _Connection, reason: CloseReason, was: _State) -> None:
        if was is _State.CONNECTED:
            self._sessions -= 1
        self._closes[reason.value] += 1
        self._event(connection.client_id, f"closed: {reason.value}")
        log.debug("%s: closed %r (%s)", self.serial, connection.client_id, reason.value)
        self._changed()

    def _event(self, client_id: str, what: str) -> None:
        self.events.append((client_id, what))

    # ---- observation ---------------------------------------------------------------------

    @property
    def session_count(self) -> int:
        """Live MQTT sessions (CONNACK 0 sent, not closed)."""
        return self._sessions

    @property
    def connection_count(self) -> int:
        """Open client connections, from TCP accept on (TLS done or not); 0 when idle."""
        return len(self._connections)

    @property
    def subscriber_count(self) -> int:
        """Live sessions that receive the report topic (silenced or not)."""
        return sum(1 for c in self._connections if c.state is _State.CONNECTED and c.wants_reports)

    @property
    def closes(self) -> Mapping[str, int]:
        """How many connections ended for each ``CloseReason`` (a copy)."""
        return dict(self._closes)

    @property
    def stats(self) -> BrokerStats:
        """A snapshot of every counter."""
        return BrokerStats(
            connections=self._total_connections,
            sessions=self._sessions,
            subscribers=self.subscriber_count,
            closes=dict(self._closes),
            requests=self._requests,
            reports=self._reports,
            deliveries=self._deliveries,
        )

    def _changed(self) -> None:
        if not self._waiters:
            return
        still_waiting = []
        for predicate, future in self._waiters:
            if future.done():
                continue
            try:
                satisfied = predicate()
            except Exception as exc:
                future.set_exception(exc)
                continue
            if satisfied:
                future.set_result(None)
            else:
                still_waiting.append((predicate, future))
        self._waiters = still_waiting

    async def wait_for(
        self, predicate: Callable[[], bool], *, timeout: float | None = 10.0
    ) -> None:
        """Return once ``predicate()`` is true, checked at every change of the broker's state.

        Raises ``TimeoutError`` after ``timeout`` seconds (``None``: wait forever).
        """
        if predicate():
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, future))
        async with asyncio.timeout(timeout):
            await future

    async def wait_for_sessions(self, count: int, *, timeout: float | None = 10.0) -> None:
        """Return once exactly ``count`` MQTT sessions are live."""
        await self.wait_for(lambda: self._sessions == count, timeout=timeout)

    async def wait_for_subscribers(self, count: int, *, timeout: float | None = 10.0) -> None:
        """Return once exactly ``count`` live sessions receive the report topic."""
        await self.wait_for(lambda: self.subscriber_count == count, timeout=timeout)

    async def wait_for_close(
        self, reason: str, count: int = 1, *, timeout: float | None = 10.0
    ) -> None:
        """Return once ``count`` connections in total have ended for ``reason``."""
        reason = CloseReason(reason).value  # a typo should fail now, not time out
        await self.wait_for(lambda: self._closes[reason] >= count, timeout=timeout)

    async def wait_for_requests(self, count: int, *, timeout: float | None = 10.0) -> None:
        """Return once ``count`` requests in total have been handed to the printer."""
        await self.wait_for(lambda: self._requests >= count, timeout=timeout)

    # ---- faults --------------------------------------------------------------------------

    def drop_connections(self) -> int:
        """Abort every connection at once, without any goodbye (TCP RST). Returns how many."""
        victims = [c for c in self._connections if c.state is not _State.CLOSED]
        for connection in victims:
            connection.close(CloseReason.DROPPED, abort=True)
        return len(victims)

    def go_silent(self, recover_on: SilenceRecovery = "start") -> None:
        """Stop delivering anything to the sessions open now, keeping their sockets open.

        ``"start"``: they recover when any session sends ``pushing.start`` (the printer model
        calls ``on_pushing_start``), as the watchdog of ha-bambulab expects. ``"reconnect"``:
        they never recover; only new sessions receive (the P1 01.04 firmware bug).
        """
        if recover_on not in ("start", "reconnect"):
            raise ValueError(f"recover_on must be 'start' or 'reconnect', not {recover_on!r}")
        for connection in self._connections:
            if connection.state in _OPEN_SESSION:
                connection.silenced = True
        self._silence_recovery = recover_on

    def on_pushing_start(self) -> None:
        """A ``pushing.start`` request arrived: end a ``go_silent("start")``."""
        if self._silence_recovery != "start":
            return
        self._silence_recovery = None
        for connection in self._connections:
            connection.silenced = False

    @property
    def silenced_sessions(self) -> int:
        """Open sessions that currently receive nothing because of ``go_silent``."""
        return sum(1 for c in self._connections if c.silenced and c.state in _OPEN_SESSION)

    def send_garbage(self, kind: GarbageKind = "random") -> bytes:
        """Publish a bad payload on the report topic to every subscriber; returns it.

        ``random``: random bytes; ``non_utf8``: JSON with bytes that are not UTF-8;
        ``truncated_json``: the first half of a full report; ``trailing_nul``: a valid full
        report followed by a NUL byte (some Orca builds do that); ``not_json``: plain text.
        """
        makers: dict[str, Callable[[], bytes]] = {
            "random": lambda: self._rng.randbytes(self._rng.randint(16, 256)),
            "non_utf8": lambda: (
                b'{"print":{"command":"push_status","msg":1,"sim_note":"caf\xe9 \xff\xfe"}}'
            ),
            "truncated_json": lambda: self._full_json()[: len(self._full_json()) // 2],
            "trailing_nul": lambda: self._full_json() + b"\x00",
            "not_json": lambda: b"hello from the bambu-lan simulator: this payload is not JSON",
        }
        maker = makers.get(kind)
        if maker is None:
            raise ValueError(f"unknown garbage kind {kind!r}; known: {', '.join(GARBAGE_KINDS)}")
        payload = maker()
        self._reports += 1
        self._deliver(self.report_topic, payload)
        return payload

    def _full_json(self) -> bytes:
        if self.report_source is None:
            return b'{"print":{"command":"push_status","msg":0,"sequence_id":"0"}}'
        import orjson

        return orjson.dumps(self.report_source())

    def delay_connack(self, seconds: float | None) -> None:
        """Answer the next CONNECTs ``seconds`` late (``math.inf``: never; ``None``: undo).

        The A1 has been seen to take up to ~5 s on a cold session (protocol.md §3.1).
        """
        if seconds is not None and (math.isnan(seconds) or seconds < 0):
            raise ValueError("the CONNACK delay must be >= 0 seconds")
        self._connack_delay = seconds

    def boot_window(self, seconds: float) -> None:
        """For ``seconds`` from now, answer CONNECT with CONNACK 3 and close (see module doc)."""
        self._boot_until = self.loop.time() + max(seconds, 0.0)

    def omit_puback(self, enabled: bool = True) -> None:
        """Stop (or resume) acknowledging QoS 1 publishes (one A1 report, protocol.md §3.3)."""
        self.omitting_puback = enabled

    def leave_unanswered(self, *commands: str) -> None:
        """Ignore requests with these command names (e.g. ``"get_version"``, as a busy printer
        may); no names: answer everything again."""
        self.unanswered = frozenset(commands)


def _command_of(payload: bytes) -> str:
    """The ``command`` of a request payload, "" when there is none (for fault matching)."""
    try:
        body = json.loads(payload)
        (inner,) = body.values()
        return str(inner.get("command", ""))
    except (ValueError, AttributeError, TypeError):
        return ""
