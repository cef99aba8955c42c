"""Who may press the buttons: one login secret, server-side sessions, a CSRF token each.

Without a secret in the config the dashboard is read-only: no controls are rendered and every
control request is refused. With one, a login (the token or password, compared in constant
time) opens a session: a random id in an HttpOnly, SameSite=Strict cookie, with its own random
CSRF token that every control must carry back (a form field or the ``X-CSRF-Token`` header) from
a page of the same origin.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass, field

from bambu_lan.config import Secret

COOKIE = "bambu_lan_session"
SESSION_SECONDS = 12 * 3600
MAX_SESSIONS = 1000


@dataclass(slots=True)
class Session:
    csrf: str
    expires: float


@dataclass(slots=True)
class Auth:
    """The login secret (None: read-only dashboard) and the open sessions."""

    secret: Secret | None
    sessions: dict[str, Session] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return bool(self.secret)

    def check_secret(self, candidate: str) -> bool:
        if not self.secret:
            return False
        return hmac.compare_digest(candidate.encode(), self.secret.reveal().encode())

    def open_session(self) -> tuple[str, Session]:
        now = time.monotonic()
        if len(self.sessions) >= MAX_SESSIONS:
            self._expire(now)
            while len(self.sessions) >= MAX_SESSIONS:  # still full: the oldest goes
                del self.sessions[next(iter(self.sessions))]
        sid = secrets.token_urlsafe(32)
        session = Session(csrf=secrets.token_urlsafe(32), expires=now + SESSION_SECONDS)
        self.sessions[sid] = session
        return sid, session

    def session(self, sid: str | None) -> Session | None:
        if not sid or not self.enabled:
            return None
        session = self.sessions.get(sid)
        if session is None:
            return None
        if session.expires < time.monotonic():
            del self.sessions[sid]
            return None
        return session

    def close_session(self, sid: str | None) -> None:
        if sid:
            self.sessions.pop(sid, None)

    def _expire(self, now: float) -> None:
        for sid in [s for s, v in self.sessions.items() if v.expires < now]:
            del self.sessions[sid]


def csrf_ok(session: Session | None, token: str | None) -> bool:
    return (
        session is not None
        and token is not None
        and hmac.compare_digest(token.encode(), session.csrf.encode())
    )


def new_token() -> str:
    """A login token worth putting in the config."""
    return secrets.token_urlsafe(24)


def how_to_log_in(enabled: bool, url: str) -> str:
    """What ``serve`` prints at start about the dashboard."""
    if enabled:
        return f"dashboard on {url} (controls after logging in with the web token)"
    return (
        f"dashboard on {url} is read-only: to allow pause/resume/stop/light/speed from it, "
        f'add web_token = "{new_token()}" to the [serve] table of the config file '
        "(or set BAMBU_WEB_TOKEN) and restart"
    )
