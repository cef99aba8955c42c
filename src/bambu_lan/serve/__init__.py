"""``bambu-lan serve``: a farm daemon that feeds the systems people already run.

Shape: one :class:`~bambu_lan.serve.hub.Hub` watches the printers (one session each, through the
library) and fans every update out to independent **sinks**: the log, the MQTT bridge with
Home Assistant discovery, Prometheus metrics, the job history, notifications and the web page.
``daemon.Daemon`` wires them from the settings (the ``[serve]`` table and the options, see
``settings``), serves the HTTP ports and handles the signals.

The sink interface (``bambu_lan.serve.hub``)
--------------------------------------------
A sink subclasses ``Sink`` and overrides what it needs; the hub calls, on the event loop::

    class MySink(Sink):
        name = "mine"                                   # in logs and /healthz
        async def start(self, hub: Hub) -> None: ...    # once, before any update
        def printer_added(self, p: WatchedPrinter) -> None: ...    # at start and on reload
        def printer_removed(self, p: WatchedPrinter) -> None: ...
        def state(self, p: WatchedPrinter, state: PrinterState) -> None: ...  # each snapshot
        def event(self, p: WatchedPrinter, event: Event) -> None: ...  # incl. connected /
                                                                       # disconnected
        def health(self) -> dict[str, Any]: ...         # {"ok": bool, ...} for /healthz
        def setup_http(self, app: aiohttp.web.Application) -> None: ...  # routes on --http-port
        async def stop(self) -> None: ...               # flush, mark offline, close

``state`` and ``event`` are synchronous and must not block: keep what you need and do I/O in
your own tasks (a slow sink then never delays another). An exception there is logged once
per sink and method, counted in ``/healthz``, and never stops the hub.

From a sink, ``hub.printers`` maps serial -> ``WatchedPrinter``: ``serial``, ``name``,
``model``, ``firmware``, ``online``, ``state`` (latest ``PrinterState`` or None),
``status`` (connection health) and ``await p.command(action, value)`` for ``pause``,
``resume``, ``stop``, ``speed`` (1-4) and ``light`` (on/off), with the library's checks: a
refusal raises a ``BambuError`` (``DeveloperModeRequired``, ``CommandRejected``, ...) whose
text is safe to show.

The web page (``bambu_lan.serve.web``) provides ``create_sink(settings) -> Sink``; the daemon
adds it when ``--http-port`` is given and mounts its routes next to ``/healthz``.
"""
