"""The FTPS client against the simulated printer's storage: transfers, listings, refusals,
faults, and the identity check before any credential."""

from __future__ import annotations

import asyncio
import ftplib
import hashlib
import os
from pathlib import Path

import pytest
from tests.conftest import SimFactory
from tests.files.support import (
    config_for,
    listing_reply,
    no_reuse_client,
    random_file,
    storage_for,
)

from bambu_lan.errors import (
    AuthError,
    ConnectError,
    FileTransferError,
    RemoteFileNotFound,
    StorageFull,
    TrustError,
)
from bambu_lan.files import Storage, SyncStorage
from bambu_lan.sim import SimThread, SimulatedPrinter
from bambu_lan.trust import TrustConfig


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_card_has_the_a1_layout(sim: SimulatedPrinter) -> None:
    async with storage_for(sim) as storage:
        entries = await storage.entries("/")
        names = await storage.names("/")
    assert [e.path for e in entries if e.is_dir] == ["/cache", "/image", "/logger", "/timelapse"]
    assert names == ["/cache", "/image", "/logger", "/timelapse"]


async def test_upload_download_roundtrip_with_progress(
    sim: SimulatedPrinter, tmp_path: Path
) -> None:
    source = random_file(tmp_path / "part.gcode.3mf", 3_000_000 + 17)
    seen: list[tuple[int, int | None]] = []
    async with storage_for(sim) as storage:
        sent = await storage.upload(
            source, "/part.gcode.3mf", progress=lambda d, t: seen.append((d, t))
        )
        assert sent == source.stat().st_size
        assert await storage.size("/part.gcode.3mf") == sent
        got: list[int] = []
        target = tmp_path / "back.bin"
        await storage.download("/part.gcode.3mf", target, progress=lambda d, t: got.append(d))
    assert digest(target) == digest(source)
    assert sim.card is not None and digest(sim.card.local("/part.gcode.3mf")) == digest(source)
    done = [d for d, _ in seen]
    assert done == sorted(done) and done[-1] == sent and len(done) > 1
    assert {t for _, t in seen} == {sent}
    assert got[-1] == sent
    assert sorted(os.listdir(tmp_path)) == ["back.bin", "part.gcode.3mf"]  # no temporary file


async def test_mkdir_over_an_existing_file_says_it_is_a_file(
    sim: SimulatedPrinter, tmp_path: Path
) -> None:
    async with storage_for(sim) as storage:
        await storage.upload(random_file(tmp_path / "a", 100), "/part.3mf")
        with pytest.raises(FileTransferError) as caught:
            await storage.mkdir("/part.3mf")
        assert await storage.size("/part.3mf") == 100  # untouched
    assert not isinstance(caught.value, RemoteFileNotFound)
    assert "/part.3mf exists and is a file" in str(caught.value)
    assert "bambu-lan files rm" in caught.value.hint


async def test_listing_shows_sizes_and_folders(sim: SimulatedPrinter, tmp_path: Path) -> None:
    async with storage_for(sim) as storage:
        await storage.mkdir("/models")
        await storage.mkdir("/models")  # already there: fine
        await storage.upload(random_file(tmp_path / "a", 1234), "/models/a.gcode.3mf")
        entries = await storage.entries("/models")
        names = await storage.names("/models")
        await storage.delete("/models/a.gcode.3mf")
        assert await storage.names("/models") == []
        await storage.rmdir("/models")
        assert "/models" not in await storage.names("/")
    assert [(e.path, e.size, e.is_dir) for e in entries] == [("/models/a.gcode.3mf", 1234, False)]
    assert entries[0].modified and entries[0].modified_at is not None
    assert names == ["/models/a.gcode.3mf"]


async def test_x1_name_lists_carry_the_folder_and_come_back_the_same(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    x1 = await sim_factory("x1c")
    async with storage_for(x1) as storage:
        await storage.upload(random_file(tmp_path / "a", 10), "/cache/a.3mf")
        assert await storage.names("/cache") == ["/cache/a.3mf"]
    assert x1.ftps is not None and x1.ftps.stats.commands["NLST"] == 1


async def test_missing_files(sim: SimulatedPrinter, tmp_path: Path) -> None:
    async with storage_for(sim) as storage:
        assert await storage.size("/nope.3mf") is None
        assert not await storage.exists("/nope.3mf")
        with pytest.raises(RemoteFileNotFound, match="not found"):
            await storage.delete("/nope.3mf")
        with pytest.raises(RemoteFileNotFound):
            await storage.download("/nope.3mf", tmp_path / "x")
    assert not (tmp_path / "x").exists()


async def test_wrong_access_code_is_an_auth_error(sim: SimulatedPrinter) -> None:
    with pytest.raises(AuthError, match="530") as caught:
        async with storage_for(sim, access_code="00000000"):
            pass
    assert "00000000" not in str(caught.value)
    assert sim.ftps is not None and sim.ftps.stats.failed_logins == 1


async def test_wrong_serial_refused_before_user(sim: SimulatedPrinter) -> None:
    with pytest.raises(TrustError, match="no credentials were sent"):
        async with storage_for(sim, serial="03919A3B1200999"):
            pass
    assert sim.ftps is not None
    assert sim.ftps.stats.commands["USER"] == 0 and sim.ftps.stats.commands["PASS"] == 0


async def test_changed_certificate_refused_before_user(
    sim: SimulatedPrinter, tmp_path: Path
) -> None:
    pins = tmp_path / "known_printers"
    pins.write_text(f"{sim.serial} {'ab' * 32}\n")
    with pytest.raises(TrustError, match="changed since it was pinned"):
        async with storage_for(sim, trust=TrustConfig(known_printers=pins)):
            pass
    assert sim.ftps is not None and sim.ftps.stats.commands["USER"] == 0


async def test_pinned_on_first_use_then_trusted(sim: SimulatedPrinter, tmp_path: Path) -> None:
    pins = tmp_path / "known_printers"
    for _ in range(2):
        async with storage_for(sim, trust=TrustConfig(known_printers=pins)) as storage:
            await storage.names("/")
    assert sim.fingerprint in pins.read_text()


async def test_closed_port_is_a_connect_error(sim: SimulatedPrinter) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectError, match="refused the connection"):
        async with storage_for(sim, ftps_port=port):
            pass


async def test_card_full_removes_the_partial_file(sim_factory: SimFactory, tmp_path: Path) -> None:
    small = await sim_factory(card_size=1_000_000)
    async with storage_for(small) as storage:
        assert await storage.free_space() == 1_000_000
        with pytest.raises(StorageFull, match="full") as caught:
            await storage.upload(random_file(tmp_path / "big", 3_000_000), "/big.gcode.3mf")
        assert caught.value.hint and "files rm" in caught.value.hint
        assert not await storage.exists("/big.gcode.3mf")
        # The connection still works afterwards.
        await storage.upload(random_file(tmp_path / "ok", 1000), "/ok.gcode.3mf")
        assert await storage.size("/ok.gcode.3mf") == 1000


async def test_dropped_upload_leaves_no_half_file(sim: SimulatedPrinter, tmp_path: Path) -> None:
    assert sim.ftps is not None and sim.card is not None
    sim.ftps.drop_upload_after(1_000_000)
    async with storage_for(sim) as storage:
        with pytest.raises(ConnectError):
            await storage.upload(random_file(tmp_path / "f", 4_000_000), "/f.gcode.3mf")
        sim.ftps.drop_upload_after(None)
        assert not await storage.exists("/f.gcode.3mf")
    assert "/f.gcode.3mf" not in sim.card.names()


async def test_cancelled_upload_removes_the_partial_file(
    sim: SimulatedPrinter, tmp_path: Path
) -> None:
    assert sim.card is not None
    source = random_file(tmp_path / "f", 40_000_000)
    started = asyncio.Event()
    async with storage_for(sim) as storage:
        task = asyncio.create_task(
            storage.upload(source, "/f.gcode.3mf", progress=lambda d, t: started.set())
        )
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not await storage.exists("/f.gcode.3mf")
    assert "/f.gcode.3mf" not in sim.card.names()


async def test_data_connection_without_session_reuse_gets_522(sim: SimulatedPrinter) -> None:
    assert sim.ftps is not None
    client = await asyncio.to_thread(no_reuse_client, sim.host, sim.ftps.port, sim.access_code)
    try:
        reply = await asyncio.to_thread(listing_reply, client)
    finally:
        client.close()
    assert reply == "522 SSL connection failed: session reuse required"
    assert sim.ftps.stats.reuse_refusals == 1


async def test_data_needs_prot_p_and_login(sim: SimulatedPrinter) -> None:
    assert sim.ftps is not None

    def clear_data() -> tuple[str, str]:
        client = no_reuse_client(sim.host, sim.ftps.port, sim.access_code)  # type: ignore[union-attr]
        try:
            client.voidcmd("PROT C")
            try:
                client.nlst("/")
            except ftplib.error_perm as exc:
                refused = str(exc)
            client.sendcmd("USER bblp")
            try:
                client.sendcmd("SIZE /x")
            except ftplib.error_perm as exc:
                return refused, str(exc)
        finally:
            client.close()
        raise AssertionError("not refused")

    refused, not_logged_in = await asyncio.to_thread(clear_data)
    assert refused.startswith("522 Data connections must be encrypted")
    assert not_logged_in.startswith("530")


async def test_passive_ports_come_from_the_range(sim_factory: SimFactory, tmp_path: Path) -> None:
    from tests.files.vsftpd_printer import free_port_range

    first = free_port_range(3)
    printer = await sim_factory(pasv_ports=(first, first + 2))
    async with storage_for(printer) as storage:
        for i in range(4):
            await storage.upload(random_file(tmp_path / "f", 10), f"/f{i}")
    assert printer.ftps is not None and printer.ftps.stats.uploads == 4


def test_blocking_twin(sim_thread: SimThread[SimulatedPrinter], tmp_path: Path) -> None:
    sim = sim_thread.target
    source = random_file(tmp_path / "a.gcode.3mf", 600_000)
    with SyncStorage(config_for(sim)) as storage:
        storage.upload(source, "/a.gcode.3mf")
        storage.download("/a.gcode.3mf", tmp_path / "b")
        assert "/a.gcode.3mf" in storage.names("/")
        storage.delete("/a.gcode.3mf")
    assert digest(tmp_path / "b") == digest(source)


async def test_reprs_and_errors_never_show_the_access_code(sim: SimulatedPrinter) -> None:
    storage = Storage(config_for(sim))
    assert sim.access_code not in repr(storage) and sim.access_code not in repr(storage.sync)
    with pytest.raises(FileTransferError) as caught:
        async with storage:
            await storage.upload(Path("/nonexistent/x"), "/x")
    assert sim.access_code not in str(caught.value)


async def test_cancelled_download_leaves_the_connection_usable(
    sim: SimulatedPrinter, tmp_path: Path
) -> None:
    async with storage_for(sim) as storage:
        await storage.upload(random_file(tmp_path / "f", 40_000_000), "/f.bin")
        started = asyncio.Event()
        task = asyncio.create_task(
            storage.download("/f.bin", tmp_path / "g", progress=lambda d, t: started.set())
        )
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The aborted RETR's late reply must not be taken as the answer to what follows.
        assert await storage.size("/f.bin") == 40_000_000
        assert "/f.bin" in [e.path for e in await storage.entries("/")]
    assert not (tmp_path / "g").exists()


async def test_listing_a_missing_folder_is_not_found(sim: SimulatedPrinter) -> None:
    async with storage_for(sim) as storage:
        with pytest.raises(RemoteFileNotFound, match="/no/such"):
            await storage.entries("/no/such")
        assert await storage.entries("/cache") == []  # an empty folder is fine


async def test_downloading_a_folder_says_so(sim: SimulatedPrinter, tmp_path: Path) -> None:
    async with storage_for(sim) as storage:
        with pytest.raises(FileTransferError, match="is a folder"):
            await storage.download("/timelapse", tmp_path / "x")
    assert not (tmp_path / "x").exists()
