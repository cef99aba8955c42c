"""The farm dashboard that ``bambu-lan serve --http-port`` serves (aiohttp + jinja2).

``DashboardServer(source, port=...)`` runs it on the current event loop; ``source`` is anything
shaped like ``DashboardSource`` (``FarmSource`` wraps a ``Farm``).
"""
