"""A real headless Chromium driven over the DevTools protocol, for the dashboard's tests.

A small client over aiohttp's WebSocket (already a dependency) instead of playwright: no
driver process, no browser download, and about 0.5 s from launch to a page on this machine.
Waiting is event-driven: ``wait_for`` resolves inside the page from a MutationObserver.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)


def chromium_path() -> str:
    """The Chromium to use; skips (fails under CI=true) when there is none."""
    for candidate in (os.environ.get("CHROMIUM"), *CHROMIUM_CANDIDATES, shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    reason = "chromium is not installed (apt-get install chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


class PageError(AssertionError):
    pass


class Page:
    """One tab: navigate, evaluate, wait for a condition, take screenshots."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._listeners: dict[str, list[asyncio.Future[dict[str, Any]]]] = {}
        self.console_errors: list[str] = []
        self.responses: list[dict[str, Any]] = []  # Network.responseReceived, once enabled
        self._responded = asyncio.Event()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            data = msg.json()
            if "id" in data:
                future = self._pending.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
                continue
            method = data.get("method", "")
            if method == "Runtime.exceptionThrown":
                self.console_errors.append(str(data["params"]["exceptionDetails"]))
            elif method == "Network.responseReceived":
                self.responses.append(data["params"]["response"])
                self._responded.set()
            elif method == "Runtime.consoleAPICalled" and data["params"]["type"] == "error":
                self.console_errors.append(str(data["params"]["args"]))
            for future in self._listeners.pop(method, []):
                if not future.done():
                    future.set_result(data.get("params", {}))
        for future in self._pending.values():
            if not future.done():
                future.set_exception(PageError("the browser went away"))

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        await self.ws.send_json({"id": ident, "method": method, "params": params})
        reply = await asyncio.wait_for(future, 30)
        if "error" in reply:
            raise PageError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    def next_event(self, method: str) -> asyncio.Future[dict[str, Any]]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._listeners.setdefault(method, []).append(future)
        return future

    async def goto(self, url: str) -> None:
        loaded = self.next_event("Page.loadEventFired")
        await self.send("Page.navigate", url=url)
        await asyncio.wait_for(loaded, 30)

    async def response_to(self, url: str, timeout: float = 20.0) -> dict[str, Any]:
        """The first response received for ``url`` (after ``Network.enable``)."""
        async with asyncio.timeout(timeout):
            while True:
                for response in self.responses:
                    if response["url"] == url:
                        return response
                self._responded.clear()
                await self._responded.wait()

    async def eval(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise PageError(f"{expression!r} threw {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 20.0) -> Any:
        """The value of ``expression`` once it is truthy, re-checked on every DOM change."""
        script = (
            "new Promise(resolve => { const check = () => { let v; try { v = ("
            + expression
            + "); }"
            " catch (e) { v = undefined; } if (v) { obs.disconnect(); resolve(v); return true; }"
            " return false; }; const obs = new MutationObserver(check);"
            " if (!check()) obs.observe(document, {subtree: true, childList: true,"
            " attributes: true, characterData: true}); })"
        )
        try:
            return await asyncio.wait_for(self.eval(script), timeout)
        except TimeoutError:
            raise PageError(f"timed out after {timeout} s waiting for {expression}") from None

    async def screenshot(self, path: Path, *, full_page: bool = True) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
            metrics = await self.send("Page.getLayoutMetrics")
            size = metrics["cssContentSize"]
            params["clip"] = {
                "x": 0,
                "y": 0,
                "width": size["width"],
                "height": size["height"],
                "scale": 1,
            }
        result = await self.send("Page.captureScreenshot", **params)
        await asyncio.to_thread(path.write_bytes, base64.b64decode(result["data"]))
        return path

    async def viewport(self, width: int, height: int, *, mobile: bool = False) -> None:
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=mobile,
        )

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


class Browser:
    """A headless Chromium process with its own throw-away profile."""

    def __init__(self, proc: asyncio.subprocess.Process, http: aiohttp.ClientSession, port: int):
        self.proc = proc
        self.http = http
        self.port = port
        self._browser: Page | None = None

    async def new_page(self) -> Page:
        """A tab in a fresh browser context: its own cookies, as a new private window."""
        if self._browser is None:
            async with self.http.get(f"http://127.0.0.1:{self.port}/json/version") as resp:
                info = await resp.json()
            ws = await self.http.ws_connect(info["webSocketDebuggerUrl"], max_msg_size=0)
            self._browser = Page(ws)
        context = await self._browser.send("Target.createBrowserContext")
        target = await self._browser.send(
            "Target.createTarget", url="about:blank", browserContextId=context["browserContextId"]
        )
        ws = await self.http.ws_connect(
            f"ws://127.0.0.1:{self.port}/devtools/page/{target['targetId']}", max_msg_size=0
        )
        page = Page(ws)
        await page.send("Page.enable")
        await page.send("Runtime.enable")
        return page


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    path = chromium_path()
    profile = tempfile.mkdtemp(prefix="bambu-lan-chromium-")
    proc = await asyncio.create_subprocess_exec(
        path,
        *FLAGS,
        f"--user-data-dir={profile}",
        "about:blank",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        port = 0
        lines: list[str] = []
        async with asyncio.timeout(30):
            while not port:
                line = (await proc.stderr.readline()).decode(errors="replace")
                if not line:
                    raise PageError("chromium exited: " + "".join(lines[-10:]))
                lines.append(line)
                match = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
                if match:
                    port = int(match.group(1))
        drain = asyncio.get_running_loop().create_task(_drain(proc.stderr))
        async with aiohttp.ClientSession() as http:
            yield Browser(proc, http, port)
        drain.cancel()
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                async with asyncio.timeout(10):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass
