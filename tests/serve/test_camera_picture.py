"""serve's camera pictures (``WatchedPrinter.camera_picture``): sinks asking at once share
one; one nobody waits for any more is given up, its connection closed."""

from __future__ import annotations

import asyncio

from tests.camera.support import eventually

from bambu_lan.camera import open_streams
from bambu_lan.config import PrinterConfig, Secret
from bambu_lan.printer import Printer
from bambu_lan.serve.hub import WatchedPrinter


async def test_a_picture_nobody_waits_for_is_given_up() -> None:
    """Two sinks ask for an A1's picture while its camera port accepts and never answers:
    one connection for both; once both gave up (serve stopping), it is closed."""
    connections: asyncio.Queue[asyncio.StreamReader] = asyncio.Queue()
    closed = asyncio.Event()

    async def silent_camera(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await connections.put(reader)
        await reader.read()  # to the end: the client closed it
        closed.set()
        writer.close()

    server = await asyncio.start_server(silent_camera, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        cfg = PrinterConfig("127.0.0.1", "039SIM000000001", Secret("12345678"), camera_port=port)
        watched = WatchedPrinter(cfg, Printer.from_config(cfg))
        waiters = [asyncio.ensure_future(watched.camera_picture(30.0)) for _ in range(2)]
        await asyncio.wait_for(connections.get(), 10)
        waiters[0].cancel()
        await asyncio.gather(waiters[0], return_exceptions=True)
        assert not closed.is_set() and not waiters[1].done()  # still wanted by the other
        waiters[1].cancel()
        await asyncio.gather(waiters[1], return_exceptions=True)
        # A sink asking right after gets a picture of its own, not the one given up.
        again = asyncio.ensure_future(watched.camera_picture(30.0))
        await asyncio.wait_for(closed.wait(), 5)  # the camera would try for 10 s
        await asyncio.wait_for(connections.get(), 10)
        assert not again.done()
        again.cancel()
        await asyncio.gather(again, return_exceptions=True)
        assert connections.empty()
        await eventually(lambda: open_streams() == 0)
