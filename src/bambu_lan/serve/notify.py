"""Notifications through apprise URLs (ntfy, Discord, Telegram, e-mail, ...): job finished,
failed, cancelled or paused (with the reason), HMS alerts of a chosen severity and worse, a
printer offline for longer than N minutes; per rule: which printers, which events, quiet
hours.

apprise costs about 0.1 s to import and sends with blocking HTTP, so it is imported on the
first notification and every send runs on a small dedicated thread pool, with a timeout, up
to three tries with backoff. A notifier that fails or hangs is logged and never delays the
farm or another notifier; during quiet hours only failures and fatal HMS alerts go out.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from bambu_lan.protocol.events import Event, EventKind
from bambu_lan.serve.hub import Hub, Sink, WatchedPrinter
from bambu_lan.serve.settings import HMS_SEVERITIES, NotifyRule
from bambu_lan.serve.text import safe

log = logging.getLogger("bambu_lan.serve.notify")

_KINDS = {
    EventKind.JOB_FINISHED: "job_finished",
    EventKind.JOB_FAILED: "job_failed",
    EventKind.JOB_CANCELLED: "job_cancelled",
    EventKind.JOB_PAUSED: "job_paused",
    EventKind.HMS_RAISED: "hms",
}
#: What still goes out during quiet hours.
_URGENT = frozenset({"job_failed", "hms_fatal"})
_RANK = {name: i for i, name in enumerate(HMS_SEVERITIES)}  # fatal 0 ... info 3


@dataclass(frozen=True, slots=True)
class Message:
    kind: str  # job_finished, ..., hms, offline
    title: str
    body: str
    failure: bool  # shown as a failure (apprise's notify type)
    urgent: bool  # goes out during quiet hours


def in_quiet_hours(rule: NotifyRule, minute_of_day: int) -> bool:
    if rule.quiet_hours is None:
        return False
    start, end = rule.quiet_hours
    if start <= end:
        return start <= minute_of_day < end
    return minute_of_day >= start or minute_of_day < end  # spans midnight


def describe_url(url: str) -> str:
    """A notification URL without its secrets (tokens, passwords): scheme and host only."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '…'}"


class NotifySink(Sink):
    name = "notify"

    def __init__(
        self,
        rules: Sequence[NotifyRule],
        *,
        tries: int = 3,
        timeout: float = 30.0,
        backoff: Sequence[float] = (2.0, 10.0),
        clock: Callable[[], datetime] = datetime.now,
        workers: int = 4,
    ) -> None:
        self.rules = list(rules)
        self.tries = tries
        self.timeout = timeout
        self.backoff = tuple(backoff)
        self.clock = clock
        self.hub: Hub | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, "bambu-notify")
        self._apprise: dict[int, Any] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._offline: dict[str, asyncio.TimerHandle] = {}
        self._told_offline: set[str] = set()
        self.sent = 0
        self.failed = 0
        self.held = 0  # quiet hours
        self.last_error = ""

    async def start(self, hub: Hub) -> None:
        self.hub = hub

    async def stop(self) -> None:
        for handle in self._offline.values():
            handle.cancel()
        if self._tasks:
            # Give sends under way a moment; a hanging notifier does not hold up the stop.
            await asyncio.wait(self._tasks, timeout=2)
        for task in self._tasks:
            task.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def health(self) -> dict[str, Any]:
        return {
            "ok": True,  # a failing notifier is logged, never a reason to restart serve
            "rules": len(self.rules),
            "sent": self.sent,
            "failed": self.failed,
            "held_quiet_hours": self.held,
            "last_error": self.last_error,
        }

    # -- what to say --

    def event(self, printer: WatchedPrinter, event: Event) -> None:
        if event.kind is EventKind.DISCONNECTED:
            self._watch_offline(printer)
            return
        if event.kind in (EventKind.CONNECTED, EventKind.RECONNECTED):
            handle = self._offline.pop(printer.serial, None)
            if handle is not None:
                handle.cancel()
            if printer.serial in self._told_offline:
                self._told_offline.discard(printer.serial)
                self._send(printer, Message("offline", f"{printer.name}: back online",
                                            safe(event.message), False, False))  # fmt: skip
            return
        kind = _KINDS.get(event.kind)
        if kind is None:
            return
        severity = str(event.data.get("severity", "info"))
        title = {
            "job_finished": "print finished",
            "job_failed": "print FAILED",
            "job_cancelled": "print cancelled",
            "job_paused": "print paused",
            "hms": f"HMS alert ({severity})",
        }[kind]
        message = Message(
            kind,
            f"{printer.name}: {title}",
            safe(event.message, 500),
            failure=kind in ("job_failed", "hms") or kind == "job_paused",
            urgent=kind == "job_failed" or (kind == "hms" and severity == "fatal"),
        )
        self._send(printer, message, severity=severity if kind == "hms" else None)

    def _watch_offline(self, printer: WatchedPrinter) -> None:
        minutes = [r.offline_minutes for r in self._rules_for(printer, "offline")]
        if not minutes or printer.serial in self._offline:
            return
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._offline.pop(printer.serial, None)
            if printer.online or (self.hub and printer.serial not in self.hub.printers):
                return
            self._told_offline.add(printer.serial)
            since = printer.offline_since or time.time()
            self._send(
                printer,
                Message(
                    "offline",
                    f"{printer.name}: offline",
                    f"{printer.name} ({printer.serial}) has been offline for "
                    f"{(time.time() - since) / 60:.0f} min: {safe(printer.status.last_error)}",
                    failure=True,
                    urgent=False,
                ),
            )

        self._offline[printer.serial] = loop.call_later(min(minutes) * 60, fire)

    def _rules_for(self, printer: WatchedPrinter, kind: str) -> list[NotifyRule]:
        return [
            r for r in self.rules if kind in r.events and r.applies_to(printer.name, printer.serial)
        ]

    def _send(self, printer: WatchedPrinter, message: Message, severity: str | None = None) -> None:
        now = self.clock()
        minute = now.hour * 60 + now.minute
        for index, rule in enumerate(self.rules):
            if message.kind not in rule.events or not rule.applies_to(printer.name, printer.serial):
                continue
            if severity is not None and _RANK.get(severity, 3) > _RANK[rule.hms_severity]:
                continue
            if in_quiet_hours(rule, minute) and not message.urgent:
                self.held += 1
                log.info("quiet hours: not sent: %s", message.title)
                continue
            task = asyncio.get_running_loop().create_task(self._deliver(index, rule, message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # -- delivery --

    def _notifier(self, index: int, rule: NotifyRule) -> Any:
        """The rule's apprise object (apprise imported here, on a worker thread)."""
        notifier = self._apprise.get(index)
        if notifier is None:
            import apprise

            notifier = apprise.Apprise()
            for url in rule.urls:
                if not notifier.add(url.reveal()):
                    log.error("notification URL %s is not understood by apprise; skipped",
                              describe_url(url.reveal()))  # fmt: skip
            self._apprise[index] = notifier
        return notifier

    def _notify_blocking(self, index: int, rule: NotifyRule, message: Message) -> bool:
        import apprise

        notifier = self._notifier(index, rule)
        if len(notifier) == 0:
            return False
        kind = apprise.NotifyType.FAILURE if message.failure else apprise.NotifyType.SUCCESS
        return bool(notifier.notify(body=message.body, title=message.title, notify_type=kind))

    async def _deliver(self, index: int, rule: NotifyRule, message: Message) -> None:
        loop = asyncio.get_running_loop()
        where = ", ".join(describe_url(u.reveal()) for u in rule.urls)
        for attempt in range(1, self.tries + 1):
            try:
                future = loop.run_in_executor(
                    self._pool, self._notify_blocking, index, rule, message
                )
                ok = await asyncio.wait_for(future, self.timeout)
                error = "" if ok else "the service refused it or did not answer"
            except TimeoutError:
                error = f"no answer within {self.timeout:g} s"
            except Exception as exc:  # apprise or a plugin raising: never fatal
                error = f"{type(exc).__name__}: {safe(exc)}"
            if not error:
                self.sent += 1
                if attempt > 1:
                    log.info("notification to %s sent on try %d", where, attempt)
                return
            self.last_error = error
            if attempt < self.tries:
                delay = self.backoff[min(attempt - 1, len(self.backoff) - 1)]
                log.warning("notification to %s failed (%s); retrying in %g s", where, error,
                            delay)  # fmt: skip
                await asyncio.sleep(delay)
        self.failed += 1
        log.error("notification to %s failed after %d tries (%s): %s", where, self.tries, error,
                  message.title)  # fmt: skip
