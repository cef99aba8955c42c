"""The ``serve`` process: printers from the config file, sinks from the settings, the HTTP
endpoints, and the signals (SIGHUP reloads, SIGTERM / Ctrl-C stop cleanly)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bambu_lan.config import (
    PrinterConfig,
    config_path,
    load_config_file,
    resolve_printer,
)
from bambu_lan.errors import BambuError, ConfigError
from bambu_lan.printer import PrinterOptions
from bambu_lan.serve.hub import Hub, Sink
from bambu_lan.serve.logsink import LogSink
from bambu_lan.serve.settings import ServeSettings, parse_serve_table

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger("bambu_lan.serve")

#: The heap is frozen once every printer has a state, or this many seconds after a (re)start.
FREEZE_WITHIN = 120.0


@dataclass(frozen=True, slots=True)
class FarmConfig:
    """What one read of the config file says: the [serve] settings and every printer."""

    settings: ServeSettings
    printers: dict[str, PrinterConfig]  # by name


#: Variables that set one printer's connection (``bambu-lan status`` and the other commands
#: of one printer): serve reads them like those commands, for a file of one printer only.
SINGLE_PRINTER_ENV = (
    "BAMBU_HOST",
    "BAMBU_SERIAL",
    "BAMBU_ACCESS_CODE",
    "BAMBU_ACCESS_CODE_FILE",
    "BAMBU_PORT",
    "BAMBU_FTPS_PORT",
    "BAMBU_CAMERA_PORT",
    "BAMBU_CA_FILE",
    "BAMBU_CA_DIR",
)


def read_farm_config(config_file: Path | None = None) -> FarmConfig:
    """Read and check the whole file; raises ``ConfigError`` naming the first problem."""
    where = config_file or config_path()
    data = load_config_file(where)
    settings = parse_serve_table(data)
    table = data.get("printers", {})
    if not isinstance(table, dict):
        raise ConfigError(f"[printers] in {where} must be a table of printers")
    overriding = [name for name in SINGLE_PRINTER_ENV if os.environ.get(name)]
    if overriding and len(table) > 1:
        raise ConfigError(
            f"{', '.join(overriding)} {'is' if len(overriding) == 1 else 'are'} set, but "
            f"{where} has {len(table)} printers: such a variable sets one printer",
            hint="unset it for serve: each printer's settings go in its [printers.NAME] table",
        )
    # Each profile as every other command reads it (access_code_file, ports, trust, checks).
    printers = {name: resolve_printer(printer=name, config_file=where, data=data) for name in table}
    serials: dict[str, str] = {}
    for name, cfg in printers.items():
        if cfg.serial in serials:
            raise ConfigError(
                f"printers {serials[cfg.serial]!r} and {name!r} in {where} have the same serial",
                hint="each printer once: remove or fix one of them",
            )
        serials[cfg.serial] = name
    return FarmConfig(settings, printers)


def select_printers(farm: FarmConfig, settings: ServeSettings) -> list[PrinterConfig]:
    """The printers this instance watches: the named ones (all by default), of its shard."""
    names = settings.printers or tuple(farm.printers)
    missing = [n for n in names if n not in farm.printers]
    if missing:
        known = ", ".join(sorted(farm.printers)) or "none"
        raise ConfigError(
            f"no printer named {', '.join(repr(n) for n in missing)} in the config file",
            hint=f"printers defined there: {known}",
        )
    chosen = [farm.printers[n] for n in names]
    if settings.shard is not None:
        chosen = [cfg for cfg in chosen if settings.shard.owns(cfg.serial)]
    return chosen


def build_sinks(settings: ServeSettings) -> list[Sink]:
    """One sink per configured output, each imported only when used."""
    sinks: list[Sink] = [LogSink()]
    if settings.metrics_port is not None:
        from bambu_lan.serve.metrics import MetricsSink

        sinks.append(MetricsSink())
    if settings.mqtt is not None:
        from bambu_lan.serve.mqtt_bridge import MqttBridge

        sinks.append(
            MqttBridge(
                settings.mqtt,
                ca_file=settings.mqtt_ca_file,
                prefix=settings.mqtt_prefix,
                discovery_prefix=settings.discovery_prefix,
                camera_interval=settings.mqtt_camera_interval,
                instance_group=str(settings.shard or "all"),
            )
        )
    if settings.history:
        from bambu_lan.serve.history import HistorySink
        from bambu_lan.serve.settings import default_history_path

        sinks.append(
            HistorySink(
                settings.database_url(),
                spool=default_history_path().with_name("history-pending.jsonl"),
            )
        )
    if settings.notify:
        from bambu_lan.serve.notify import NotifySink

        sinks.append(NotifySink(settings.notify))
    if settings.http_port is not None:
        web = _optional_module("bambu_lan.serve.web")
        if web is not None:
            sinks.append(web.create_sink(settings))
    return sinks


def _optional_module(name: str) -> Any:
    """A part of serve that may not be there yet (the web page): None when absent."""
    import importlib

    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return None


class Daemon:
    """Runs the hub until stopped; reloads the printer list on request."""

    def __init__(
        self,
        settings: ServeSettings,
        printers: Sequence[PrinterConfig],
        *,
        config_file: Path | None = None,
        options: dict[str, Any] | None = None,
        sinks: Sequence[Sink] | None = None,
        printer_options: PrinterOptions | None = None,
        freeze_heap: bool = False,
    ) -> None:
        self.settings = settings
        self.config_file = config_file
        self.cli_options = options or {}  # given on the command line: they win over the file
        self.hub = Hub(
            printers,
            sinks=list(sinks) if sinks is not None else build_sinks(settings),
            options=printer_options,
        )
        self._runners: list[web.AppRunner] = []
        self.http_port: int | None = None
        self.metrics_port: int | None = None
        self.reloads = 0
        self.reload_errors = 0
        self.last_reload_error = ""
        self._stop = asyncio.Event()
        self._reloading: asyncio.Task[bool] | None = None
        self.freeze_heap = freeze_heap  # the process's own heap: the CLI's serve, not tests
        self._freezing: asyncio.Task[None] | None = None

    # -- lifecycle --

    async def start(self) -> None:
        # The ports are taken before any printer connects: a port in use is refused before
        # a thousand connections are made, and those connections (each takes an ephemeral
        # port of this host) can never take the port that was asked for.
        http = self._listen(self.settings.http_port)
        try:
            metrics = self._listen(self.settings.metrics_port)
        except BaseException:
            if http is not None:
                http.close()
            raise
        await self.hub.start()
        try:
            if http is not None:
                self.http_port = await self._serve_http(http, metrics=False)
                log.info("health and web page on http://%s:%d/", self.settings.bind, self.http_port)
            if metrics is not None:
                self.metrics_port = await self._serve_http(metrics, metrics=True)
                log.info(
                    "Prometheus metrics on http://%s:%d/metrics",
                    self.settings.bind,
                    self.metrics_port,
                )
        except BaseException:
            for sock in (http, metrics):
                if sock is not None:
                    sock.close()
            await self.stop()
            raise
        log.info(
            "watching %d printer(s)%s",
            len(self.hub.printers),
            f" (shard {self.settings.shard})" if self.settings.shard else "",
        )

    async def stop(self) -> None:
        for runner in self._runners:
            with contextlib.suppress(Exception):
                await runner.cleanup()
        self._runners.clear()
        await self.hub.stop()

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self, on_ready: Callable[[], None] | None = None) -> None:
        """Start, serve until ``request_stop()`` (SIGTERM, Ctrl-C), stop cleanly."""
        await self.start()
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        for sig, handler in (
            (signal.SIGHUP, self.request_reload),
            (signal.SIGTERM, self.request_stop),
        ):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, handler)
                installed.append(sig)
        self._freeze_when_up()
        try:
            if on_ready is not None:
                on_ready()
            await self._stop.wait()
            log.info("stopping: marking printers offline, closing connections")
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            for task in (self._reloading, self._freezing):
                if task is not None:
                    task.cancel()
            await asyncio.shield(self.stop())
        log.info("stopped")

    # -- reload --

    def request_reload(self) -> None:
        """SIGHUP: re-read the config file in the background (one reload at a time)."""
        if self._reloading is not None and not self._reloading.done():
            log.info("reload already in progress")
            return
        self._reloading = asyncio.get_running_loop().create_task(self.reload())

    async def reload(self) -> bool:
        """Re-read the printers; on any problem keep the running config and say why."""
        where = self.config_file or config_path()
        try:
            farm = read_farm_config(self.config_file)
            settings = farm.settings.with_options(**self.cli_options)
            printers = select_printers(farm, settings)
        except BambuError as exc:
            self.reload_errors += 1
            self.last_reload_error = str(exc)
            log.error(
                "config reload failed, keeping the running config: %s%s",
                exc,
                f" ({exc.hint})" if exc.hint else "",
            )
            return False
        if _outputs(settings) != _outputs(self.settings):
            log.warning(
                "config reload: [serve] outputs changed in %s; they apply after a restart "
                "(printers are reloaded now)",
                where,
            )
        added, removed = await self.hub.apply(printers)
        self._freeze_when_up()
        self.reloads += 1
        self.last_reload_error = ""
        log.info(
            "config reloaded from %s: %d printer(s), %d added, %d removed",
            where,
            len(self.hub.printers),
            len(added),
            len(removed),
        )
        return True

    # -- the garbage collector --

    def _freeze_when_up(self) -> None:
        if self.freeze_heap:
            if self._freezing is not None:
                self._freezing.cancel()
            self._freezing = asyncio.get_running_loop().create_task(self._freeze())

    async def _freeze(self) -> None:
        """Once the printers are up, what lives as long as serve (sessions, states, the
        sinks' tables) goes out of the cyclic garbage collector's way (``gc.freeze``): its
        full collections over 1,000 printers took 140 ms each, holding every report that
        long. Again after each reload (unfrozen first, so removed printers are collected)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FREEZE_WITHIN
        # A look once a second: cheaper than a hook on each of 1,000 reports a second.
        while loop.time() < deadline and not self._all_have_state():  # noqa: ASYNC110
            await asyncio.sleep(1.0)
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        log.info("%d objects kept out of the garbage collector's way", gc.get_freeze_count())

    def _all_have_state(self) -> bool:
        return all(p.state is not None for p in self.hub.printers.values())

    # -- HTTP --

    def health(self) -> dict[str, Any]:
        data = self.hub.health()
        data["reloads"] = self.reloads
        data["reload_errors"] = self.reload_errors
        if self.last_reload_error:
            data["last_reload_error"] = self.last_reload_error
        return data

    def _listen(self, port: int | None) -> socket.socket | None:
        """A listening socket on ``bind:port`` (0: any free port), or None for no port."""
        if port is None:
            return None
        try:
            family = socket.getaddrinfo(self.settings.bind, port, type=socket.SOCK_STREAM)[0][0]
            return socket.create_server((self.settings.bind, port), family=family, backlog=128)
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {self.settings.bind}:{port}: {exc.strerror or exc}",
                hint="another program uses that port: pick another with --http-port / "
                "--metrics-port",
            ) from None

    async def _serve_http(self, sock: socket.socket, *, metrics: bool) -> int:
        from aiohttp import web

        app = web.Application()
        app.router.add_get("/healthz", self._health_handler)
        for sink in self.hub.sinks:
            if metrics == (sink.name == "metrics"):
                sink.setup_http(app)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        self._runners.append(runner)
        await web.SockSite(runner, sock).start()
        return int(sock.getsockname()[1])

    async def _health_handler(self, request: web.Request) -> web.Response:
        from aiohttp import web

        data = self.health()
        return web.json_response(data, status=200 if data["ok"] else 503)


def _outputs(settings: ServeSettings) -> tuple[Any, ...]:
    return (
        str(settings.mqtt),
        settings.metrics_port,
        settings.http_port,
        settings.bind,
        settings.db,
        settings.history,
        len(settings.notify),
    )
