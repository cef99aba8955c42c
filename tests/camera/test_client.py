"""The A1/P1 camera client against the simulator's camera on real TLS sockets."""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.camera.support import FAST, camera, config, eventually, jpeg_size, require_tool

from bambu_lan.camera import (
    Camera,
    CameraAuthError,
    CameraError,
    CameraEvent,
    CameraEventKind,
    CameraFrame,
    CameraOptions,
    CameraTimeout,
    CameraUnavailable,
    EventSubscription,
    camera_kind,
    open_streams,
)
from bambu_lan.errors import AuthError, TrustError
from bambu_lan.printer import Printer
from bambu_lan.sim import SimulatedPrinter
from bambu_lan.trust import KnownPrinters, TrustConfig


async def next_event(events: EventSubscription, kind: CameraEventKind) -> CameraEvent:
    async with asyncio.timeout(10):
        async for event in events:
            if event.kind is kind:
                return event
    raise AssertionError(f"no {kind} event")


async def take(frames: AsyncIterator[CameraFrame], count: int) -> list[CameraFrame]:
    out: list[CameraFrame] = []
    async with asyncio.timeout(10):
        async for frame in frames:
            out.append(frame)
            if len(out) == count:
                break
    return out


async def test_snapshot_is_a_whole_720p_jpeg(cam_sim: SimulatedPrinter) -> None:
    frame = await camera(cam_sim).snapshot()
    assert frame.jpeg.startswith(b"\xff\xd8\xff\xe0")
    assert jpeg_size(frame.jpeg) == (1280, 720)
    assert frame.age() < 5
    assert cam_sim.camera is not None
    await eventually(lambda: cam_sim.camera is not None and cam_sim.camera.viewers == 0)
    assert open_streams() == 0  # the last consumer gone: the connection is closed


async def test_frames_arrive_in_order_with_arrival_times(cam_sim: SimulatedPrinter) -> None:
    with camera(cam_sim).frames() as frames:
        got = await take(frames, 4)
    assert [f.index for f in got] == sorted(f.index for f in got)
    assert all(b.monotonic >= a.monotonic for a, b in itertools.pairwise(got))
    assert all(jpeg_size(f.jpeg) == (1280, 720) for f in got)


async def test_every_consumer_shares_one_upstream_connection(cam_sim: SimulatedPrinter) -> None:
    assert cam_sim.camera is not None
    consumers = [camera(cam_sim).frames() for _ in range(5)]
    try:
        batches = await asyncio.gather(*(take(c, 3) for c in consumers))
        assert all(len(batch) == 3 for batch in batches)
        assert open_streams() == 1
        assert cam_sim.camera.viewers == 1
        assert cam_sim.camera.stats.logins_received == 1
        # Another handle for the same printer, created later, joins the same connection.
        assert (await camera(cam_sim).snapshot()).index >= 1
        assert cam_sim.camera.stats.logins_received == 1
    finally:
        for consumer in consumers:
            consumer.close()
    await eventually(lambda: cam_sim.camera is not None and cam_sim.camera.viewers == 0)
    assert open_streams() == 0


async def test_consumers_on_another_thread_share_the_connection(
    cam_sim: SimulatedPrinter,
) -> None:
    """One upstream per process: a second event loop in another thread joins it."""
    assert cam_sim.camera is not None
    with camera(cam_sim).frames() as frames:
        await take(frames, 1)
        result: list[object] = []

        def other_loop() -> None:
            async def grab() -> list[CameraFrame]:
                with camera(cam_sim).frames() as mine:
                    return await take(mine, 2)

            result.append(asyncio.run(grab()))

        thread = threading.Thread(target=other_loop)
        thread.start()
        await asyncio.to_thread(thread.join, 20)
        assert result and len(result[0]) == 2  # type: ignore[arg-type]
        assert cam_sim.camera.stats.logins_received == 1


async def test_printer_camera_property(cam_sim: SimulatedPrinter) -> None:
    cfg = config(cam_sim)
    async with Printer.from_config(cfg) as printer:
        cam = printer.camera
        assert cam.kind == "jpeg"
        assert cam.port == cam_sim.camera_port
        frame = await cam.snapshot()
    assert jpeg_size(frame.jpeg) == (1280, 720)


async def test_wrong_access_code_is_a_clear_auth_error(cam_sim: SimulatedPrinter) -> None:
    assert cam_sim.camera is not None
    with pytest.raises(CameraAuthError) as caught:
        await camera(cam_sim, access_code="ZZ987654").snapshot()
    assert isinstance(caught.value, AuthError)
    assert "access code is wrong" in str(caught.value)
    assert "ZZ987654" not in str(caught.value) and cam_sim.access_code not in str(caught.value)
    assert caught.value.hint
    assert cam_sim.camera.stats.logins_refused == 1
    assert open_streams() == 0


async def test_closed_port_is_a_clear_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on `port` now.
    from bambu_lan.config import PrinterConfig, Secret

    cfg = PrinterConfig("127.0.0.1", "039SIM000000000", Secret("12345678"), camera_port=port)
    with pytest.raises(CameraUnavailable, match="refused the connection") as caught:
        await Camera(cfg, options=FAST).snapshot()
    assert "RTSPS" in caught.value.hint


async def test_a_port_that_never_answers_times_out_clearly() -> None:
    """TCP accepts, TLS never answers: the connect timeout, not a hang."""
    accepted: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    from bambu_lan.config import PrinterConfig, Secret

    cfg = PrinterConfig("127.0.0.1", "039SIM000000000", Secret("12345678"), camera_port=port)
    options = CameraOptions(connect_timeout=0.5, silence_timeout=1.0)
    try:
        with pytest.raises(CameraUnavailable, match=r"did not answer within 0\.5 s"):
            await Camera(cfg, options=options).snapshot()
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_wrong_identity_never_receives_the_access_code(
    cam_sim: SimulatedPrinter, tmp_path: Path
) -> None:
    assert cam_sim.camera is not None
    pins = tmp_path / "known_printers"
    KnownPrinters(pins).pin(cam_sim.serial, "00" * 32)  # pinned: some other certificate
    with pytest.raises(TrustError, match="changed since it was pinned"):
        await camera(cam_sim, trust=TrustConfig(known_printers=pins)).snapshot()
    assert cam_sim.camera.stats.logins_received == 0
    assert open_streams() == 0


async def test_trust_on_first_use_pins_like_mqtt(cam_sim: SimulatedPrinter, tmp_path: Path) -> None:
    pins = tmp_path / "known_printers"
    await camera(cam_sim, trust=TrustConfig(known_printers=pins)).snapshot()
    assert KnownPrinters(pins).get(cam_sim.serial) == cam_sim.fingerprint


async def test_silent_stream_is_noticed_and_reconnected(cam_sim: SimulatedPrinter) -> None:
    assert cam_sim.camera is not None
    options = CameraOptions(silence_timeout=0.3, backoff_initial=0.05)
    cam = Camera(config(cam_sim), options=options)
    with cam.events() as events, cam.frames() as frames:
        await take(frames, 1)
        cam_sim.camera.go_silent()
        event = await next_event(events, CameraEventKind.SILENT)
        assert "no frame for 0.3 s" in event.message
        cam_sim.camera.go_silent(False)
        await next_event(events, CameraEventKind.CONNECTED)
        await take(frames, 2)
        stats = cam.stats
        assert stats is not None and stats.silences >= 1
    assert cam_sim.camera.stats.connections >= 2


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("not_jpeg", CameraEventKind.FRAME_DROPPED),
        ("truncate", CameraEventKind.TRUNCATED),
        ("too_large", CameraEventKind.FRAME_TOO_LARGE),
    ],
)
async def test_bad_frames_are_told_and_the_stream_goes_on(
    cam_sim: SimulatedPrinter, fault: str, kind: CameraEventKind
) -> None:
    assert cam_sim.camera is not None
    cam = camera(cam_sim)
    with cam.events() as events, cam.frames() as frames:
        await take(frames, 1)
        cam_sim.camera.inject(fault)  # type: ignore[arg-type]
        event = await next_event(events, kind)
        assert cam_sim.serial in event.message
        after = await take(frames, 3)  # still (or again) streaming
        assert all(jpeg_size(f.jpeg) == (1280, 720) for f in after)
        stats = cam.stats
        assert stats is not None
        counted = {"not_jpeg": stats.not_jpeg, "truncate": stats.truncated}
        counted["too_large"] = stats.too_large
        assert counted[fault] == 1


async def test_frames_split_across_tls_records_at_random_places(
    cam_sim: SimulatedPrinter,
) -> None:
    assert cam_sim.camera is not None
    with camera(cam_sim).frames() as frames:
        await take(frames, 1)
        cam_sim.camera.inject("fragment")
        got = await take(frames, 5)
    assert all(jpeg_size(f.jpeg) == (1280, 720) for f in got)


async def test_a_dropped_connection_reconnects(cam_sim: SimulatedPrinter) -> None:
    assert cam_sim.camera is not None
    cam = camera(cam_sim)
    with cam.events() as events, cam.frames() as frames:
        await take(frames, 1)
        assert cam_sim.camera.drop_viewers() == 1
        await next_event(events, CameraEventKind.CONNECTED)
        await take(frames, 2)
    assert cam_sim.camera.stats.logins_accepted == 2


def test_camera_kind_by_model_and_serial() -> None:
    assert camera_kind("03919A3B1200123") == "jpeg"  # A1
    assert camera_kind("01P00A4C2009981") == "jpeg"  # P1S
    assert camera_kind("00M09A350100001") == "rtsps"  # X1C
    assert camera_kind(model_code="N7") == "rtsps"  # P2S
    assert camera_kind(model_code="O1D") == "rtsps"  # H2D
    assert camera_kind("ZZZ") is None


async def test_an_rtsps_printer_whose_port_is_closed() -> None:
    """X1/P2S/H2 frames come through RTSPS on port 322 (here a free, closed port): the first
    step says that nothing answers and how to switch the live view on."""
    from bambu_lan.config import PrinterConfig, Secret

    require_tool("ffmpeg")
    assert Camera(PrinterConfig("127.0.0.1", "00M09A350100001", Secret("12345678"))).port == 322
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cfg = PrinterConfig("127.0.0.1", "00M09A350100001", Secret("12345678"), camera_port=port)
    with pytest.raises(CameraUnavailable, match="refused the connection") as caught:
        async with Camera(cfg, options=FAST).frames() as frames:
            await anext(frames)
    assert "Liveview" in caught.value.hint
    await eventually(lambda: open_streams() == 0)


async def test_an_unexpected_error_ends_the_camera_with_a_clear_error(
    cam_sim: SimulatedPrinter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A bug (or printer input no check caught) used to end the camera's task silently:
    # every consumer then waited for pictures that could never come.
    import bambu_lan.camera

    def broken(code: str) -> bytes:
        raise RuntimeError("a bug")

    monkeypatch.setattr(bambu_lan.camera, "login_packet", broken)
    cam = camera(cam_sim, options=CameraOptions(silence_timeout=30.0, connect_timeout=30.0))
    with cam.frames() as frames:
        async with asyncio.timeout(10):  # well before the 60 s a timeout would take
            with pytest.raises(CameraError, match=r"unexpected error \(RuntimeError: a bug") as e:
                await cam.snapshot()
            assert not isinstance(e.value, CameraTimeout)
            with pytest.raises(CameraError, match="unexpected error"):  # the stream ended too
                await anext(aiter(frames))
