"""One client connection of the simulated broker: TLS over the TCP stream, then the strict
MQTT state machine of an ESP32-class printer broker (the rules are in ``broker_rules``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from bambu_lan.sim import mqtt_wire as wire
from bambu_lan.sim.broker_rules import CloseReason
from bambu_lan.sim.broker_table import SessionState

if TYPE_CHECKING:
    from bambu_lan.sim.broker import Broker

log = logging.getLogger("bambu_lan.sim.broker")


class BrokerConnection(asyncio.Protocol):
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
        self.state = SessionState.HANDSHAKE
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
        return f"<BrokerConnection {self.client_id!r} {self.state.value}>"

    # ---- asyncio.Protocol (TCP) ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        broker = self.broker
        self.last_rx = broker.loop.time()
        broker.table.connection_made(self)
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
        if self.state is SessionState.HANDSHAKE:
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
        if self.state is not SessionState.CLOSED:
            self.close(CloseReason.CLIENT_CLOSED)
        self.broker.table.connection_lost(self)
        self.transport = None
        self.tls = None

    # ---- TLS -----------------------------------------------------------------------------

    def _tls_ready(self) -> None:
        self.state = SessionState.AWAIT_CONNECT
        self.broker.table.tls_established(self)

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
        return self.state is not SessionState.CLOSED

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
        if self.state is SessionState.CLOSED:
            return
        was = self.state
        self.state = SessionState.CLOSED
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.broker.table.connection_closed(self, reason, was)
        transport = self.transport
        if transport is None:
            return
        if abort:
            transport.abort()
            return
        if self.tls is not None and was is not SessionState.HANDSHAKE:
            with contextlib.suppress(ssl.SSLError, OSError):
                self.tls.unwrap()  # queues close_notify; raises while awaiting the peer's
            self._flush_tls()
        transport.close()

    def _violation(self, exc: wire.ProtocolViolation) -> None:
        log.debug("%s: protocol violation: %s", self._who(), exc)
        if exc.connack_code is not None and self.state is SessionState.AWAIT_CONNECT:
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
        if self.state is SessionState.AWAIT_CONNECT:
            # The first packet must be CONNECT (§3.1); anything else is as early as can be.
            self.close(CloseReason.EARLY_PACKET)
            return
        if self.state is SessionState.AUTHENTICATING:
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
                self.broker.table.event(self.client_id, f"unsubscribe {list(packet.filters)}")
                self.broker.table.changed()
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
        if self.state is not SessionState.AWAIT_CONNECT:
            early = self.state is SessionState.AUTHENTICATING
            self.close(CloseReason.EARLY_PACKET if early else CloseReason.SECOND_CONNECT)
            return
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if packet.client_id:
            self.client_id, self.kickable = packet.client_id, True
        else:  # MQTT lets the server assign one (§3.1.3.1); never kick anyone over it
            self.client_id, self.kickable = broker.table.assign_client_id(), False
        self.keepalive = packet.keepalive
        broker.table.event(self.client_id, "connect")

        open_sessions = broker.table.open_sessions(
            excluding=self, kick_duplicates=rules.kick_duplicate_client_id
        )
        if rules.max_sessions >= 0 and open_sessions >= rules.max_sessions:
            # The A1's answer to one session too many: close right after CONNECT, no CONNACK.
            self.close(CloseReason.SESSION_LIMIT)
            return

        self.state = SessionState.AUTHENTICATING
        if broker.booting:
            code, reason = wire.ConnectReturnCode.SERVER_UNAVAILABLE, CloseReason.BOOT_WINDOW
        elif not broker.accepts_login(packet.username, packet.password):
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
        if self.state is not SessionState.AUTHENTICATING:
            return
        broker = self.broker
        self.send(wire.encode_connack(code))
        broker.table.event(self.client_id, f"connack {code}")
        if reason is not None:
            self.close(reason)
            return
        if broker.rules.kick_duplicate_client_id and self.kickable:
            for other in broker.table.sessions_with_id(self.client_id, excluding=self):
                other.close(CloseReason.KICKED)
        self.state = SessionState.CONNECTED
        broker.table.session_started(self)
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
        if self.state is SessionState.AWAIT_CONNECT:
            self.close(CloseReason.CONNECT_TIMEOUT)

    def _on_subscribe(self, packet: wire.Subscribe) -> None:
        broker = self.broker
        for topic_filter, _qos in packet.topics:
            refusal = broker.subscription_refusal(topic_filter)
            if refusal is not None:
                broker.table.event(self.client_id, f"subscribe {topic_filter!r} refused")
                self.close(refusal)  # no SUBACK: the socket just closes, as on an A1
                return
        had_reports = self.wants_reports
        self.filters.update(topic_filter for topic_filter, _qos in packet.topics)
        self._refresh_interest()
        # Granted QoS 0 for every filter: the printer publishes at QoS 0 only.
        self.send(wire.encode_suback(packet.packet_id, [0] * len(packet.topics)))
        broker.table.event(self.client_id, f"subscribe {[f for f, _ in packet.topics]}")
        broker.table.changed()
        if self.wants_reports and not had_reports and broker.rules.push_full_on_subscribe:
            broker.push_full_to(self)

    def _refresh_interest(self) -> None:
        broker = self.broker
        self.wants_reports = any(wire.topic_matches(f, broker.report_topic) for f in self.filters)
        self.wants_requests = any(wire.topic_matches(f, broker.request_topic) for f in self.filters)

    def _on_publish(self, packet: wire.Publish) -> None:
        broker = self.broker
        if packet.topic != broker.request_topic and broker.rules.drop_on_foreign_publish:
            broker.table.event(self.client_id, f"publish to {packet.topic!r} refused")
            self.close(CloseReason.FOREIGN_PUBLISH)
            return
        if packet.qos == 1 and packet.packet_id is not None and not broker.omitting_puback:
            self.send(wire.encode_puback(packet.packet_id))
        broker.route_publish(packet)
