"""The farm dashboard that ``bambu-lan serve --http-port`` serves (aiohttp + jinja2).

``DashboardServer(source, port=...)`` runs it on the current event loop; ``source`` is anything
shaped like ``DashboardSource`` (``FarmSource`` wraps a ``Farm``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bambu_lan.serve.settings import ServeSettings
    from bambu_lan.serve.web.sink import WebSink


def create_sink(settings: ServeSettings) -> WebSink:
    """The dashboard as a sink of ``serve``'s hub (called by the daemon for ``--http-port``)."""
    from bambu_lan.serve.web.sink import create_sink as make

    return make(settings)
