"""The simulated broker's rules, its reasons for closing a connection and its counters:
the vocabulary shared by the broker, its connections and the tests."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from bambu_lan.sim import mqtt_wire as wire
from bambu_lan.sim.profiles import ModelProfile

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
