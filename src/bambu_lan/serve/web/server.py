"""Run the dashboard on a port of the farm's own event loop."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from aiohttp import web

from bambu_lan.config import Secret
from bambu_lan.serve.web.app import APP_KEY, create_app
from bambu_lan.serve.web.live import LiveCards
from bambu_lan.serve.web.source import DashboardSource


class DashboardServer:
    """``async with DashboardServer(source, port=8080) as server: print(server.url)``.

    Binds 127.0.0.1 unless told otherwise: the dashboard shows the farm to whoever reaches it.
    Port 0 picks a free port.
    """

    def __init__(
        self,
        source: DashboardSource,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        secret: Secret | None = None,
        interval: float = 1.0,
        snapshot_interval: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.app = create_app(
            source, secret=secret, interval=interval, snapshot_interval=snapshot_interval
        )
        self._runner: web.AppRunner | None = None

    @property
    def live(self) -> LiveCards:
        return self.app[APP_KEY].live

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    async def start(self) -> None:
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        if self.port == 0:
            self.port = int(runner.addresses[0][1])

    async def close(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
