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

One module a job: ``broker_rules`` (the rules, close reasons, counters), ``broker_table``
(the live connections and the waiters), ``broker_connection`` (one client's TLS and MQTT
state machine); this module is the server, the routing of publishes and the faults.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import random
import ssl
from collections.abc import Callable, Mapping
from typing import Any

from bambu_lan.sim import mqtt_wire as wire
from bambu_lan.sim.broker_connection import BrokerConnection
from bambu_lan.sim.broker_rules import (
    GARBAGE_KINDS,
    BrokerRules,
    BrokerStats,
    CloseReason,
    GarbageKind,
    SilenceRecovery,
)
from bambu_lan.sim.broker_table import OPEN_SESSION, ConnectionTable, SessionState

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
        #: The live connections and the counters; connections report to it.
        self.table = ConnectionTable(serial)
        #: The last events as (client id, what happened), oldest first; for tests and demos.
        self.events = self.table.events
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
            f"sessions={self.table.sessions} running={self.running}>"
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
            lambda: BrokerConnection(self), host, port, reuse_address=True
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
        for connection in list(self.table.live):
            connection.close(CloseReason.STOPPED, abort=True)
            if connection.transport is not None:
                connection.transport.abort()  # also the ones already saying goodbye
        await server.wait_closed()
        if self.table.live:
            try:
                await self.wait_for(lambda: not self.table.live, timeout=5.0)
            except TimeoutError:
                log.debug("%s: connections still open after stop", self.serial)

    # ---- publishing ----------------------------------------------------------------------

    def publish_report(self, payload: bytes) -> None:
        """Send one payload on ``device/{SERIAL}/report`` to every subscriber not silenced.

        This is the printer model's ``publish``.
        """
        self.table.reports += 1
        self._deliver(self.report_topic, payload)

    def _deliver(self, topic: str, payload: bytes) -> int:
        is_report = topic == self.report_topic
        packet: bytes | None = None
        count = 0
        for connection in tuple(self.table.live):
            if connection.state is not SessionState.CONNECTED or connection.silenced:
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
        self.table.deliveries += count
        return count

    def route_publish(self, packet: wire.Publish) -> None:
        """Hand an accepted PUBLISH on: a request to the printer model, anything else to the
        subscribers whose filters match (only where the rules let it through)."""
        if packet.topic == self.request_topic:
            self.table.requests += 1
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
            self.table.changed()
        else:
            self._deliver(packet.topic, packet.payload)

    def push_full_to(self, connection: BrokerConnection) -> None:
        """Send the current full report to one new subscriber (``push_full_on_subscribe``)."""
        if self.report_source is None:
            return
        import orjson

        payload = orjson.dumps(self.report_source())
        connection.send(wire.encode_publish(self.report_topic, payload))
        self.table.deliveries += 1

    # ---- rules ---------------------------------------------------------------------------

    def subscription_refusal(self, topic_filter: str) -> CloseReason | None:
        """Why a SUBSCRIBE to ``topic_filter`` closes the connection, or None if granted."""
        rules = self.rules
        if topic_filter == self.report_topic:
            return None
        if wire.is_wildcard(topic_filter):
            return CloseReason.WILDCARD_SUBSCRIBE if rules.drop_on_wildcard_subscribe else None
        if topic_filter == self.request_topic:
            return CloseReason.REQUEST_SUBSCRIBE if rules.drop_on_request_subscribe else None
        return CloseReason.FOREIGN_SUBSCRIBE if rules.drop_on_foreign_subscribe else None

    @property
    def booting(self) -> bool:
        """Whether the ``boot_window`` fault is on now."""
        return self.loop.time() < self._boot_until

    def accepts_login(self, username: str | None, password: bytes | None) -> bool:
        """Whether a CONNECT's user name and password are the printer's."""
        return username == self.rules.username and hmac.compare_digest(
            password or b"", self._access_code_bytes
        )

    @property
    def connack_delay(self) -> float:
        """Seconds from CONNECT to CONNACK now: the ``delay_connack`` fault or the rule."""
        return self._connack_delay if self._connack_delay is not None else self.rules.auth_delay

    # ---- observation ---------------------------------------------------------------------

    @property
    def session_count(self) -> int:
        """Live MQTT sessions (CONNACK 0 sent, not closed)."""
        return self.table.sessions

    @property
    def connection_count(self) -> int:
        """Open client connections, from TCP accept on (TLS done or not); 0 when idle."""
        return len(self.table.live)

    @property
    def subscriber_count(self) -> int:
        """Live sessions that receive the report topic (silenced or not)."""
        return self.table.subscriber_count

    @property
    def closes(self) -> Mapping[str, int]:
        """How many connections ended for each ``CloseReason`` (a copy)."""
        return dict(self.table.closes)

    @property
    def stats(self) -> BrokerStats:
        """A snapshot of every counter."""
        return BrokerStats(
            connections=self.table.handshakes,
            sessions=self.table.sessions,
            subscribers=self.subscriber_count,
            closes=dict(self.table.closes),
            requests=self.table.requests,
            reports=self.table.reports,
            deliveries=self.table.deliveries,
        )

    async def wait_for(
        self, predicate: Callable[[], bool], *, timeout: float | None = 10.0
    ) -> None:
        """Return once ``predicate()`` is true, checked at every change of the broker's state.

        Raises ``TimeoutError`` after ``timeout`` seconds (``None``: wait forever).
        """
        await self.table.wait_for(predicate, timeout=timeout)

    async def wait_for_sessions(self, count: int, *, timeout: float | None = 10.0) -> None:
        """Return once exactly ``count`` MQTT sessions are live."""
        await self.wait_for(lambda: self.table.sessions == count, timeout=timeout)

    async def wait_for_subscribers(self, count: int, *, timeout: float | None = 10.0) -> None:
        """Return once exactly ``count`` live sessions receive the report topic."""
        await self.wait_for(lambda: self.subscriber_count == count, timeout=timeout)

    async def wait_for_close(
        self, reason: str, count: int = 1, *, timeout: float | None = 10.0
    ) -> None:
        """Return once ``count`` connections in total have ended for ``reason``."""
        reason = CloseReason(reason).value  # a typo should fail now, not time out
        await self.wait_for(lambda: self.table.closes[reason] >= count, timeout=timeout)

    async def wait_for_requests(self, count: int, *, timeout: float | None = 10.0) -> None:
        """Return once ``count`` requests in total have been handed to the printer."""
        await self.wait_for(lambda: self.table.requests >= count, timeout=timeout)

    # ---- faults --------------------------------------------------------------------------

    def drop_connections(self) -> int:
        """Abort every connection at once, without any goodbye (TCP RST). Returns how many."""
        victims = [c for c in self.table.live if c.state is not SessionState.CLOSED]
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
        for connection in self.table.live:
            if connection.state in OPEN_SESSION:
                connection.silenced = True
        self._silence_recovery = recover_on

    def on_pushing_start(self) -> None:
        """A ``pushing.start`` request arrived: end a ``go_silent("start")``."""
        if self._silence_recovery != "start":
            return
        self._silence_recovery = None
        for connection in self.table.live:
            connection.silenced = False

    @property
    def silenced_sessions(self) -> int:
        """Open sessions that currently receive nothing because of ``go_silent``."""
        return sum(1 for c in self.table.live if c.silenced and c.state in OPEN_SESSION)

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
        self.table.reports += 1
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
