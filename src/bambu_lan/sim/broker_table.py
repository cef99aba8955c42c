"""The simulated broker's table of connections: who is connected, in what state, what the
broker has counted, and coroutines that wait for a change of any of it (so tests observe
the broker without sleeping)."""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from bambu_lan.sim.broker_rules import CloseReason

if TYPE_CHECKING:
    from bambu_lan.sim.broker_connection import BrokerConnection

log = logging.getLogger("bambu_lan.sim.broker")


class SessionState(enum.Enum):
    HANDSHAKE = "tls_handshake"
    AWAIT_CONNECT = "await_connect"
    AUTHENTICATING = "authenticating"  # CONNECT received, CONNACK not yet sent
    CONNECTED = "connected"
    CLOSED = "closed"


OPEN_SESSION: Final = (SessionState.AUTHENTICATING, SessionState.CONNECTED)


class ConnectionTable:
    """The live connections of one broker and its counters; connections report to it."""

    def __init__(self, serial: str) -> None:
        self.serial = serial
        self.live: set[BrokerConnection] = set()
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self._auto_ids = 0
        # Counters (see ``BrokerStats``).
        self.handshakes = 0
        self.sessions = 0
        self.closes: collections.Counter[str] = collections.Counter()
        self.requests = 0
        self.reports = 0
        self.deliveries = 0
        #: The last events as (client id, what happened), oldest first; for tests and demos.
        self.events: collections.deque[tuple[str, str]] = collections.deque(maxlen=500)

    # ---- bookkeeping (called by connections) ---------------------------------------------

    def connection_made(self, connection: BrokerConnection) -> None:
        self.live.add(connection)

    def tls_established(self, connection: BrokerConnection) -> None:
        self.handshakes += 1

    def connection_lost(self, connection: BrokerConnection) -> None:
        self.live.discard(connection)
        self.changed()

    def session_started(self, connection: BrokerConnection) -> None:
        self.sessions += 1
        self.changed()

    def connection_closed(
        self, connection: BrokerConnection, reason: CloseReason, was: SessionState
    ) -> None:
        if was is SessionState.CONNECTED:
            self.sessions -= 1
        self.closes[reason.value] += 1
        self.event(connection.client_id, f"closed: {reason.value}")
        log.debug("%s: closed %r (%s)", self.serial, connection.client_id, reason.value)
        self.changed()

    def event(self, client_id: str, what: str) -> None:
        self.events.append((client_id, what))

    def assign_client_id(self) -> str:
        self._auto_ids += 1
        return f"(assigned-{self._auto_ids})"

    # ---- queries -------------------------------------------------------------------------

    def open_sessions(self, *, excluding: BrokerConnection, kick_duplicates: bool) -> int:
        """Sessions open besides ``excluding``; with ``kick_duplicates``, a session that
        ``excluding`` will kick (the same client id) does not count: it takes that place."""
        kick = kick_duplicates and excluding.kickable
        return sum(
            1
            for c in self.live
            if c is not excluding
            and c.state in OPEN_SESSION
            and not (kick and c.kickable and c.client_id == excluding.client_id)
        )

    def sessions_with_id(
        self, client_id: str, *, excluding: BrokerConnection
    ) -> list[BrokerConnection]:
        return [
            c
            for c in self.live
            if c is not excluding
            and c.kickable
            and c.client_id == client_id
            and c.state in OPEN_SESSION
        ]

    @property
    def subscriber_count(self) -> int:
        """Live sessions that receive the report topic (silenced or not)."""
        return sum(1 for c in self.live if c.state is SessionState.CONNECTED and c.wants_reports)

    # ---- waiting for a change ------------------------------------------------------------

    def changed(self) -> None:
        """Something changed: wake the waiters whose predicate now holds."""
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
        """Return once ``predicate()`` is true, checked at every ``changed()``.

        Raises ``TimeoutError`` after ``timeout`` seconds (``None``: wait forever).
        """
        if predicate():
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, future))
        async with asyncio.timeout(timeout):
            await future
