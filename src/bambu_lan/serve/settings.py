"""``serve``'s settings: the ``[serve]`` table of the config file, overridden by options.

::

    [serve]
    printers = ["workshop", "garage"]   # default: every printer in the file
    mqtt = "mqtt://bambu:secret@192.168.1.2:1883"   # or mqtts://...; none: no bridge
    mqtt_ca_file = "/etc/ssl/broker-ca.pem"        # for mqtts:// with a private CA
    mqtt_prefix = "bambu-lan"            # state topics: bambu-lan/<serial>/...
    discovery_prefix = "homeassistant"   # Home Assistant's MQTT discovery prefix
    mqtt_camera_interval = 60            # seconds between a printer's camera pictures to Home
                                         # Assistant (at most 2 a second for the farm); 0: none
    metrics_port = 9851                  # Prometheus /metrics (and /healthz)
    http_port = 8080                     # health endpoint and the web page
    web_token = "a-long-random-string"   # log in to the web page with it to use its controls
    bind = "127.0.0.1"                   # address of both ports; "0.0.0.0" for the LAN
    db = "postgresql://bambu@db/bambu"   # default: SQLite in the XDG data folder
    history = true                       # false: keep no job history
    shard = "1/3"                        # watch only this share of the printers

    [[serve.notify]]                     # any number of these
    urls = ["ntfy://ntfy.sh/my-farm"]    # apprise URLs: ntfy, Discord, Telegram, mailto, ...
    events = ["job_finished", "job_failed", "job_paused", "hms", "offline"]
    printers = ["garage"]                # default: all
    quiet_hours = "22:00-07:00"          # local time; nothing sent then (failures excepted)
    hms_severity = "serious"             # fatal, serious, common or info: this and worse
    offline_minutes = 10                 # "offline": after this long without a connection
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from bambu_lan.config import Secret
from bambu_lan.errors import ConfigError

SERVE_KEYS = frozenset(
    {
        "printers",
        "mqtt",
        "mqtt_ca_file",
        "mqtt_prefix",
        "discovery_prefix",
        "mqtt_camera_interval",
        "metrics_port",
        "http_port",
        "web_token",
        "bind",
        "db",
        "history",
        "shard",
        "notify",
    }
)
NOTIFY_KEYS = frozenset(
    {"urls", "events", "printers", "quiet_hours", "hms_severity", "offline_minutes"}
)
NOTIFY_EVENTS = ("job_finished", "job_failed", "job_cancelled", "job_paused", "hms", "offline")
HMS_SEVERITIES = ("fatal", "serious", "common", "info")
HINT = "see `bambu-lan serve --help` for the [serve] table's keys"


@dataclass(frozen=True, slots=True)
class Shard:
    """``--shard I/N``: this instance watches the printers whose serial hashes to I (1..N)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not match:
            raise ConfigError(
                f"shard {text!r} is not of the form I/N",
                hint="e.g. --shard 1/3 on the first of three machines, 2/3 and 3/3 on the others",
            )
        index, count = int(match[1]), int(match[2])
        if count < 1 or not 1 <= index <= count:
            raise ConfigError(
                f"shard {text!r}: I must be between 1 and N",
                hint=f"with N={max(count, 1)}, use 1/{max(count, 1)} ... {max(count, 1)}/"
                f"{max(count, 1)}",
            )
        return cls(index, count)

    def owns(self, serial: str) -> bool:
        """Stable across processes, machines and Python versions (not ``hash()``)."""
        digest = hashlib.sha256(serial.strip().upper().encode()).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass(frozen=True, slots=True)
class BrokerURL:
    """``mqtt://user:pass@host:1883`` or ``mqtts://...``; the password never prints."""

    host: str
    port: int
    tls: bool
    username: str | None
    password: Secret | None = field(repr=False)

    @classmethod
    def parse(cls, text: str) -> BrokerURL:
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError as exc:
            raise ConfigError(f"MQTT URL: {exc}", hint="e.g. mqtt://user:pass@host:1883") from None
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ConfigError(
                "the MQTT URL must look like mqtt://user:pass@host:1883 or mqtts://host:8883",
                hint="mqtts:// uses TLS; --mqtt-ca-file names the broker's CA if it is private",
            )
        tls = parts.scheme == "mqtts"
        return cls(
            host=parts.hostname,
            port=port or (8883 if tls else 1883),
            tls=tls,
            username=unquote(parts.username) if parts.username else None,
            password=Secret(unquote(parts.password)) if parts.password else None,
        )

    def __str__(self) -> str:
        user = f"{self.username}:********@" if self.password else ""
        if self.username and not self.password:
            user = f"{self.username}@"
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class NotifyRule:
    urls: tuple[Secret, ...] = field(repr=False)
    events: frozenset[str] = frozenset(NOTIFY_EVENTS)
    printers: frozenset[str] = frozenset()  # names or serials; empty: all
    quiet_hours: tuple[int, int] | None = None  # minutes after midnight, [start, end)
    hms_severity: str = "serious"
    offline_minutes: float = 10.0

    def applies_to(self, name: str, serial: str) -> bool:
        return not self.printers or name in self.printers or serial in self.printers


@dataclass(frozen=True, slots=True)
class ServeSettings:
    printers: tuple[str, ...] = ()
    mqtt: BrokerURL | None = None
    mqtt_ca_file: Path | None = None
    mqtt_prefix: str = "bambu-lan"
    discovery_prefix: str = "homeassistant"
    mqtt_camera_interval: float = 60.0
    metrics_port: int | None = None
    http_port: int | None = None
    web_token: Secret | None = None  # None: the web page is read-only
    bind: str = "127.0.0.1"
    db: str | None = None  # None: SQLite in the data folder
    history: bool = True
    shard: Shard | None = None
    notify: tuple[NotifyRule, ...] = ()

    def with_options(self, **options: Any) -> ServeSettings:
        """Options given on the command line (None: not given) win over the file."""
        given = {k: v for k, v in options.items() if v is not None and v != ()}
        return replace(self, **given)

    def database_url(self) -> str:
        return self.db or f"sqlite:///{default_history_path()}"


def default_history_path() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "bambu-lan" / "history.sqlite3"


def _port(value: Any, key: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 65536:
        raise ConfigError(
            f"[serve] {key} must be a port number (0-65535), not {value!r}", hint=HINT
        )
    return value


def _str(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"[serve] {key} must be a non-empty string, not {value!r}", hint=HINT)
    return value


def _str_list(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"[serve] {key} must be a list of strings, not {value!r}", hint=HINT)
    return tuple(value)


def parse_quiet_hours(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", text)
    if not match or int(match[1]) > 23 or int(match[3]) > 23 or int(match[2]) > 59:
        raise ConfigError(
            f"quiet_hours {text!r} is not of the form HH:MM-HH:MM",
            hint='e.g. quiet_hours = "22:00-07:00" (local time; may span midnight)',
        )
    if int(match[4]) > 59:
        raise ConfigError(f"quiet_hours {text!r}: minutes go up to 59")
    return int(match[1]) * 60 + int(match[2]), int(match[3]) * 60 + int(match[4])


def _notify_rule(table: Any, index: int) -> NotifyRule:
    where = f"[[serve.notify]] #{index + 1}"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table", hint=HINT)
    unknown = set(table) - NOTIFY_KEYS
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}",
            hint=f"known: {', '.join(sorted(NOTIFY_KEYS))}",
        )
    urls = _str_list(table.get("urls", []), "notify.urls")
    if not urls:
        raise ConfigError(f"{where} has no urls", hint='urls = ["ntfy://ntfy.sh/my-topic"]')
    events = frozenset(_str_list(table.get("events", list(NOTIFY_EVENTS)), "notify.events"))
    bad = events - set(NOTIFY_EVENTS)
    if bad:
        raise ConfigError(
            f"{where}: unknown event(s) {', '.join(sorted(bad))}",
            hint=f"known: {', '.join(NOTIFY_EVENTS)}",
        )
    severity = str(table.get("hms_severity", "serious")).lower()
    if severity not in HMS_SEVERITIES:
        raise ConfigError(
            f"{where}: hms_severity {severity!r} is not one of {', '.join(HMS_SEVERITIES)}"
        )
    minutes = table.get("offline_minutes", 10)
    if isinstance(minutes, bool) or not isinstance(minutes, int | float) or minutes < 0:
        raise ConfigError(f"{where}: offline_minutes must be a number of minutes (>= 0)")
    quiet = table.get("quiet_hours")
    return NotifyRule(
        urls=tuple(Secret(u) for u in urls),
        events=events,
        printers=frozenset(_str_list(table.get("printers", []), "notify.printers")),
        quiet_hours=parse_quiet_hours(_str(quiet, "notify.quiet_hours")) if quiet else None,
        hms_severity=severity,
        offline_minutes=float(minutes),
    )


def parse_serve_table(data: dict[str, Any]) -> ServeSettings:
    """The ``[serve]`` table of a loaded config file (absent: defaults)."""
    table = data.get("serve", {})
    if not isinstance(table, dict):
        raise ConfigError("[serve] must be a table", hint=HINT)
    unknown = set(table) - SERVE_KEYS
    if unknown:
        raise ConfigError(
            f"[serve]: unknown key(s) {', '.join(sorted(unknown))}",
            hint=f"known: {', '.join(sorted(SERVE_KEYS))}",
        )
    history = table.get("history", True)
    if not isinstance(history, bool):
        raise ConfigError("[serve] history must be true or false", hint=HINT)
    notify = table.get("notify", [])
    if isinstance(notify, dict):
        notify = [notify]
    if not isinstance(notify, list):
        raise ConfigError("[serve] notify must be a list of tables ([[serve.notify]])", hint=HINT)
    ca = table.get("mqtt_ca_file")
    camera_interval = table.get("mqtt_camera_interval", 60)
    if (
        isinstance(camera_interval, bool)
        or not isinstance(camera_interval, int | float)
        or not (camera_interval == 0 or 5 <= camera_interval <= 86400)
    ):
        raise ConfigError(
            f"[serve] mqtt_camera_interval must be 0 (no pictures) or 5 to 86400 seconds, "
            f"not {camera_interval!r}",
            hint=HINT,
        )
    return ServeSettings(
        printers=_str_list(table.get("printers", []), "printers"),
        mqtt=BrokerURL.parse(_str(table["mqtt"], "mqtt")) if "mqtt" in table else None,
        mqtt_ca_file=Path(_str(ca, "mqtt_ca_file")).expanduser() if ca else None,
        mqtt_prefix=_str(table.get("mqtt_prefix", "bambu-lan"), "mqtt_prefix").strip("/"),
        discovery_prefix=_str(
            table.get("discovery_prefix", "homeassistant"), "discovery_prefix"
        ).strip("/"),
        mqtt_camera_interval=float(camera_interval),
        metrics_port=_port(table.get("metrics_port"), "metrics_port"),
        http_port=_port(table.get("http_port"), "http_port"),
        web_token=Secret(_str(table["web_token"], "web_token")) if "web_token" in table else None,
        bind=_str(table.get("bind", "127.0.0.1"), "bind"),
        db=_str(table["db"], "db") if "db" in table else None,
        history=history,
        shard=Shard.parse(_str(table["shard"], "shard")) if "shard" in table else None,
        notify=tuple(_notify_rule(t, i) for i, t in enumerate(notify)),
    )
