"""The dashboard's HTTP side: aiohttp routes, server-rendered pages, the live stream, controls.

aiohttp because it runs on the asyncio loop the farm already runs on (no second thread, no
ASGI server to embed), streams server-sent events and MJPEG with a plain ``StreamResponse``,
and is one well-kept package. Pages are jinja2 templates with autoescape on; the only script is
``static/dashboard.js`` from the package itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from aiohttp import web

from bambu_lan.config import Secret
from bambu_lan.errors import BambuError
from bambu_lan.serve.web import view
from bambu_lan.serve.web.auth import COOKIE, SESSION_SECONDS, Auth, Session, csrf_ok
from bambu_lan.serve.web.live import LiveCards
from bambu_lan.serve.web.source import ACTIONS, DashboardSource, HistoryQuery, JobRecord

log = logging.getLogger("bambu_lan.serve.web")

COMMAND_TIMEOUT = 20.0
KEEPALIVE_SECONDS = 15.0
SORTS = ("name", "state", "progress", "finish")
OUTCOMES = ("finished", "failed", "cancelled", "unknown", "running")

_SECURITY_HEADERS = {
    # Everything comes from this server; the farm may have no internet.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
        "form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


@dataclass(slots=True)
class Dashboard:
    """The parts a request handler needs."""

    source: DashboardSource
    live: LiveCards
    auth: Auth
    templates: jinja2.Environment
    snapshot_interval: float


APP_KEY = web.AppKey("dashboard", Dashboard)


def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("bambu_lan.serve.web", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["clock"] = lambda ts: datetime.fromtimestamp(ts).strftime("%H:%M") if ts else ""
    env.filters["when"] = lambda ts: (
        datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else ""
    )
    env.filters["hours"] = lambda s: f"{(s or 0) / 3600:.1f}"
    env.filters["duration"] = lambda s: view.duration_text(None if s is None else int(s // 60))
    return env


def create_app(
    source: DashboardSource,
    *,
    secret: Secret | None = None,
    interval: float = 1.0,
    snapshot_interval: float = 10.0,
) -> web.Application:
    """The dashboard as its own aiohttp application (see ``DashboardServer``)."""
    app = web.Application()
    install(app, source, secret=secret, interval=interval, snapshot_interval=snapshot_interval)
    return app


def install(
    app: web.Application,
    source: DashboardSource,
    *,
    secret: Secret | None = None,
    interval: float = 1.0,
    snapshot_interval: float = 10.0,
) -> Dashboard:
    """Add the dashboard's routes to ``app`` (``serve``'s HTTP port, or one of its own).

    ``secret`` is the login token or password; None leaves the dashboard read-only.
    """
    dash = Dashboard(
        source=source,
        live=LiveCards(source, interval),
        auth=Auth(secret),
        templates=_templates(),
        snapshot_interval=snapshot_interval,
    )
    app[APP_KEY] = dash
    app.middlewares.append(_headers)
    static = resources.files("bambu_lan.serve.web") / "static"
    app.router.add_get("/", farm_page)
    app.router.add_get("/events", events)
    app.router.add_get("/printer/{serial}", printer_page)
    app.router.add_post("/printer/{serial}/control", control)
    app.router.add_get("/printer/{serial}/snapshot.jpg", snapshot)
    app.router.add_get("/printer/{serial}/camera.mjpeg", camera)
    app.router.add_get("/history", history_page)
    app.router.add_get("/history.csv", history_csv)
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_static("/static", str(static), append_version=False)
    app.on_startup.append(_start)
    app.on_shutdown.append(_stop)
    return dash


async def _start(app: web.Application) -> None:
    dash = app[APP_KEY]
    dash.live.start()
    if dash.snapshot_interval > 0:
        app[_SNAP_TASK] = asyncio.get_running_loop().create_task(_snapshots(dash))


async def _stop(app: web.Application) -> None:
    task = app.get(_SNAP_TASK)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await app[APP_KEY].live.close()


_SNAP_TASK = web.AppKey("snapshot-task", asyncio.Task[None])


async def _snapshots(dash: Dashboard) -> None:
    """Every ``snapshot_interval``, tell open farm pages to fetch new camera pictures."""
    while True:
        await asyncio.sleep(dash.snapshot_interval)
        if not any(sub.serial is None for sub in dash.live.subscribers):
            continue
        for serial, entry in dash.source.printers().items():
            if entry.has_camera and entry.online:
                dash.live.bump_snapshot(serial)


@web.middleware
async def _headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    response = await handler(request)
    if not response.prepared:
        response.headers.update(_SECURITY_HEADERS)
    return response


# -- helpers --


def _dash(request: web.Request) -> Dashboard:
    return request.app[APP_KEY]


def _session(request: web.Request) -> Session | None:
    return _dash(request).auth.session(request.cookies.get(COOKIE))


def _render(request: web.Request, name: str, status: int = 200, **context: Any) -> web.Response:
    dash = _dash(request)
    session = _session(request)
    text = dash.templates.get_template(name).render(
        auth_enabled=dash.auth.enabled,
        logged_in=session is not None,
        csrf=session.csrf if session else "",
        path=request.path_qs,
        **context,
    )
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


def _same_origin(request: web.Request) -> bool:
    """A browser's Origin (or Referer) must name this server (a forged cross-site form fails)."""
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    if origin is None:
        return True  # not a browser cross-site request: those always send Origin on POST
    parts = urlsplit(origin)
    return parts.netloc == request.host


def _known(request: web.Request) -> str:
    serial = request.match_info["serial"]
    if serial not in _dash(request).live.cards:
        raise web.HTTPNotFound(text="no such printer")
    return serial


def _wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


# -- pages --


def _sort_key(sort: str) -> Callable[[Mapping[str, Any]], Any]:
    rank = {cls: i for i, cls in enumerate(view.CLASSES)}
    if sort == "state":
        return lambda c: (rank.get(c["cls"], 99), c["name"].lower())
    if sort == "progress":
        return lambda c: (-c["progress"], c["name"].lower())
    if sort == "finish":
        return lambda c: (c["finish"] is None, c["finish"] or 0, c["name"].lower())
    return lambda c: c["name"].lower()


async def farm_page(request: web.Request) -> web.Response:
    dash = _dash(request)
    cards = list(dash.live.cards.values())
    sort = request.query.get("sort", "name")
    if sort not in SORTS:
        sort = "name"
    show = request.query.get("show", "all")
    if show not in (*view.SUMMARY_GROUPS, "all"):
        show = "all"
    query = request.query.get("q", "")
    cards.sort(key=_sort_key(sort))
    return _render(
        request,
        "farm.html",
        cards=cards,
        summary=view.summary(cards),
        groups=view.SUMMARY_GROUPS,
        tick=dash.live.tick,
        sort=sort,
        sorts=SORTS,
        show=show,
        q=query,
    )


async def printer_page(request: web.Request) -> web.Response:
    dash = _dash(request)
    serial = _known(request)
    jobs = await dash.source.history(HistoryQuery(serial=serial, limit=20))
    card = dash.live.cards[serial]
    return _render(
        request,
        "printer.html",
        card=card,
        tick=dash.live.tick,
        jobs=jobs,
        answer=request.query.get("answer", ""),
        answer_ok=request.query.get("ok") == "1",
        # A camera that works now, or one whose note says why it does not.
        has_camera=bool(card["camera"] or card["camera_note"]),
    )


async def events(request: web.Request) -> web.StreamResponse:
    dash = _dash(request)
    serial = request.query.get("serial") or None
    since_text = request.headers.get("Last-Event-ID") or request.query.get("since") or ""
    since = int(since_text) if since_text.isdigit() else None
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    sub = dash.live.subscribe(serial, since)
    try:
        await response.write(b"retry: 2000\n\n")
        while True:
            try:
                message = await asyncio.wait_for(sub.queue.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                message = b": keepalive\n\n"
            if message is None:
                break
            await response.write(message)
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        dash.live.unsubscribe(sub)
    return response


def _no_picture(why: str) -> web.Response:
    """503 with why the camera gives nothing (plain text: never rendered as HTML)."""
    return web.Response(status=503, text=why, headers={"Cache-Control": "no-store"})


async def snapshot(request: web.Request) -> web.Response:
    serial = _known(request)
    try:
        picture = await _dash(request).source.snapshot(serial)
    except BambuError as exc:
        return _no_picture(f"no camera picture: {exc}")
    if picture is None:
        raise web.HTTPNotFound(text="no camera picture")
    return web.Response(
        body=picture, content_type="image/jpeg", headers={"Cache-Control": "no-store"}
    )


async def camera(request: web.Request) -> web.StreamResponse:
    serial = _known(request)
    frames = _dash(request).source.mjpeg(serial)
    if frames is None:
        raise web.HTTPNotFound(text="no camera")
    try:
        # The first picture before the answer: a camera that gives none gets its reason as
        # an error, not an empty stream (a page's image element then shows its note).
        try:
            frame = await anext(frames)
        except BambuError as exc:
            return _no_picture(f"no live camera: {exc}")
        except StopAsyncIteration:
            return _no_picture("no live camera: the stream ended before its first picture")
        boundary = "bambulanframe"
        response = web.StreamResponse(
            headers={
                "Content-Type": f"multipart/x-mixed-replace; boundary={boundary}",
                "Cache-Control": "no-store",
                **_SECURITY_HEADERS,
            }
        )
        await response.prepare(request)
        try:
            while True:
                await response.write(
                    b"--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n"
                    % (boundary.encode(), len(frame), frame)
                )
                frame = await anext(frames)
        except (ConnectionResetError, ConnectionError, BambuError, StopAsyncIteration):
            pass
        return response
    finally:
        closer = getattr(frames, "aclose", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()


# -- controls --


def _parse_control(form: Mapping[str, str]) -> tuple[str, int | bool | None]:
    action = form.get("action", "")
    if action not in ACTIONS:
        raise web.HTTPBadRequest(text=f"unknown control {action[:40]!r}")
    if action == "stop" and form.get("confirm") != "yes":
        raise web.HTTPBadRequest(text="stopping a print needs a confirmation")
    if action == "light":
        value = form.get("value", "")
        if value not in ("on", "off"):
            raise web.HTTPBadRequest(text="light is on or off")
        return action, value == "on"
    if action == "speed":
        value = form.get("value", "")
        if value not in ("1", "2", "3", "4"):
            raise web.HTTPBadRequest(text="speed is a level from 1 to 4")
        return action, int(value)
    return action, None


async def control(request: web.Request) -> web.StreamResponse:
    dash = _dash(request)
    serial = _known(request)
    session = _session(request)
    if session is None:
        raise web.HTTPForbidden(text="log in to use the controls")
    form = await request.post()
    token = request.headers.get("X-CSRF-Token") or str(form.get("csrf", ""))
    if not _same_origin(request) or not csrf_ok(session, token):
        raise web.HTTPForbidden(text="this request did not come from the dashboard (CSRF check)")
    action, value = _parse_control({k: str(v) for k, v in form.items()})
    try:
        answer = await asyncio.wait_for(dash.source.command(serial, action, value), COMMAND_TIMEOUT)
        ok = True
    except BambuError as exc:
        answer, ok = str(exc), False
    except TimeoutError:
        answer, ok = f"no answer from the printer within {COMMAND_TIMEOUT:g} s", False
    log.info("web control %s %s on %s: %s", action, value, serial, answer)
    if _wants_json(request):
        return web.json_response({"ok": ok, "action": action, "answer": answer})
    location = f"/printer/{quote(serial)}?ok={int(ok)}&answer={quote(f'{action}: {answer}')}"
    raise web.HTTPSeeOther(location)


# -- history --


def _date(text: str, *, end: bool = False) -> float | None:
    try:
        day = datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        return None
    return (day + timedelta(days=1) if end else day).timestamp()


def _history_query(request: web.Request) -> HistoryQuery:
    q = request.query
    outcome = q.get("outcome", "")
    return HistoryQuery(
        serial=q.get("printer") or None,
        outcome=outcome if outcome in OUTCOMES else None,
        since=_date(q.get("since", "")),
        until=_date(q.get("until", ""), end=True),
        limit=10_000,
    )


def totals(jobs: Sequence[JobRecord]) -> dict[str, Any]:
    """Hours printed and the success rate, overall and per printer."""
    per: dict[str, dict[str, Any]] = {}
    for job in jobs:
        row = per.setdefault(
            job.serial, {"printer": job.printer, "jobs": 0, "finished": 0, "ended": 0, "s": 0.0}
        )
        row["jobs"] += 1
        row["s"] += job.duration or 0.0
        if job.outcome != "running":
            row["ended"] += 1
            row["finished"] += job.outcome == "finished"
    for row in per.values():
        row["rate"] = f"{100 * row['finished'] / row['ended']:.0f} %" if row["ended"] else "–"
    ended = sum(r["ended"] for r in per.values())
    finished = sum(r["finished"] for r in per.values())
    return {
        "jobs": len(jobs),
        "seconds": sum(r["s"] for r in per.values()),
        "rate": f"{100 * finished / ended:.0f} %" if ended else "–",
        "per_printer": sorted(per.values(), key=lambda r: str(r["printer"]).lower()),
    }


async def history_page(request: web.Request) -> web.Response:
    dash = _dash(request)
    query = _history_query(request)
    jobs = await dash.source.history(query)
    printers = sorted(
        ((c["serial"], c["name"]) for c in dash.live.cards.values()), key=lambda p: p[1].lower()
    )
    return _render(
        request,
        "history.html",
        jobs=jobs,
        totals=totals(jobs or ()),
        printers=printers,
        outcomes=OUTCOMES,
        q=request.query,
        csv_query=request.query_string,
    )


def _iso(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).isoformat(timespec="seconds") if ts else ""


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    # A spreadsheet would run a cell starting with these as a formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


async def history_csv(request: web.Request) -> web.Response:
    jobs = await _dash(request).source.history(_history_query(request)) or []
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["printer", "serial", "job", "file", "start", "end", "duration_s", "outcome", "layers"]
    )
    for job in jobs:
        writer.writerow(
            [
                _cell(job.printer),
                _cell(job.serial),
                _cell(job.name),
                _cell(job.file),
                _iso(job.started_at),
                _iso(job.ended_at),
                "" if job.duration is None else f"{job.duration:.0f}",
                job.outcome,
                "" if job.layers is None else job.layers,
            ]
        )
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="bambu-lan-history.csv"'},
    )


# -- login --


def _next(target: str) -> str:
    return target if target.startswith("/") and not target.startswith("//") else "/"


async def login_page(request: web.Request) -> web.Response:
    return _render(request, "login.html", error="", next=_next(request.query.get("next", "/")))


async def login(request: web.Request) -> web.Response:
    dash = _dash(request)
    form = await request.post()
    target = _next(str(form.get("next", "/")))
    if not dash.auth.enabled:
        return _render(request, "login.html", status=403, error="", next=target)
    if not _same_origin(request) or not dash.auth.check_secret(str(form.get("secret", ""))):
        await asyncio.sleep(1.0)  # slows guessing without holding up anyone else
        return _render(
            request, "login.html", status=403, error="That is not the web token.", next=target
        )
    sid, _ = dash.auth.open_session()
    response = web.HTTPSeeOther(target)
    response.set_cookie(
        COOKIE, sid, httponly=True, samesite="Strict", max_age=SESSION_SECONDS, path="/"
    )
    raise response


async def logout(request: web.Request) -> web.Response:
    dash = _dash(request)
    session = _session(request)
    form = await request.post()
    if session is not None and csrf_ok(session, str(form.get("csrf", ""))):
        dash.auth.close_session(request.cookies.get(COOKIE))
    response = web.HTTPSeeOther("/")
    response.del_cookie(COOKIE, path="/")
    raise response
