"""The same FTPS client, unchanged, against a real vsftpd configured like a printer's storage
(implicit TLS, session reuse required, TLS forced on data, passive ports)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.files.support import listing_reply, no_reuse_client, random_file
from tests.files.vsftpd_printer import VsftpdPrinter, run_vsftpd

from bambu_lan.config import PrinterConfig, Secret
from bambu_lan.errors import AuthError, FileTransferError, RemoteFileNotFound, TrustError
from bambu_lan.files import Storage, SyncStorage
from bambu_lan.trust import TrustConfig

SERIAL = "03919A3B1200123"


@pytest.fixture(scope="module")
def vsftpd(sim_cert_dir: Path) -> Iterator[VsftpdPrinter]:
    with run_vsftpd(sim_cert_dir, SERIAL) as server:
        yield server


def config(server: VsftpdPrinter, **changes: object) -> PrinterConfig:
    return PrinterConfig(
        host=server.host,
        serial=str(changes.get("serial", server.serial)),
        access_code=Secret(str(changes.get("access_code", server.access_code))),
        trust=TrustConfig(ca_file=server.ca_path),
        ftps_port=server.port,
    )


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_roundtrip_listing_and_delete(vsftpd: VsftpdPrinter, tmp_path: Path) -> None:
    source = random_file(tmp_path / "part.gcode.3mf", 2_500_000 + 3)
    progress: list[int] = []
    async with Storage(config(vsftpd)) as storage:
        assert (
            await storage.upload(
                source, "/part.gcode.3mf", progress=lambda d, t: progress.append(d)
            )
            == source.stat().st_size
        )
        assert await storage.size("/part.gcode.3mf") == source.stat().st_size
        entries = {e.path: e for e in await storage.entries("/")}
        names = await storage.names("/")
        await storage.download("/part.gcode.3mf", tmp_path / "back")
        await storage.delete("/part.gcode.3mf")
        assert not await storage.exists("/part.gcode.3mf")
        with pytest.raises(RemoteFileNotFound):
            await storage.delete("/part.gcode.3mf")
        assert await storage.free_space() is None  # vsftpd does not say
    assert digest(tmp_path / "back") == digest(source)
    assert progress[-1] == source.stat().st_size
    assert entries["/part.gcode.3mf"].size == source.stat().st_size
    assert entries["/timelapse"].is_dir and entries["/part.gcode.3mf"].modified
    assert "/part.gcode.3mf" in names and "/cache" in names
    # On the real card, after the upload finished with 226 (not 426).
    assert not (vsftpd.card / "part.gcode.3mf").exists()


def test_mkdir_over_an_existing_file_says_it_is_a_file(
    vsftpd: VsftpdPrinter, tmp_path: Path
) -> None:
    with SyncStorage(config(vsftpd)) as storage:
        storage.upload(random_file(tmp_path / "a", 100), "/part.3mf")
        with pytest.raises(FileTransferError, match=r"/part\.3mf exists and is a file") as caught:
            storage.mkdir("/part.3mf")
    assert not isinstance(caught.value, RemoteFileNotFound)
    assert (vsftpd.card / "part.3mf").stat().st_size == 100


def test_blocking_twin_folders(vsftpd: VsftpdPrinter, tmp_path: Path) -> None:
    with SyncStorage(config(vsftpd)) as storage:
        assert storage.mkdir("/models/") == "/models"
        storage.mkdir("/models")
        storage.upload(random_file(tmp_path / "a", 100), "/models/a.3mf")
        assert storage.names("/models") == ["/models/a.3mf"]
        assert [e.name for e in storage.entries("/models")] == ["a.3mf"]
        storage.delete("/models/a.3mf")
        assert storage.entries("/models") == []  # empty, but there
        storage.rmdir("/models")
        with pytest.raises(RemoteFileNotFound):  # vsftpd lists a missing folder as empty
            storage.entries("/models")
        with pytest.raises(RemoteFileNotFound):
            storage.names("/models")
    assert not (vsftpd.card / "models").exists()


def test_wrong_access_code(vsftpd: VsftpdPrinter) -> None:
    with pytest.raises(AuthError, match="530"):
        SyncStorage(config(vsftpd, access_code="00000000")).connect()


def test_wrong_serial_is_refused_in_the_handshake(vsftpd: VsftpdPrinter) -> None:
    with pytest.raises(TrustError, match="no credentials were sent"):
        SyncStorage(config(vsftpd, serial="03919A3B1200999")).connect()


def test_vsftpd_refuses_a_new_tls_session_on_data_as_the_simulator_does(
    vsftpd: VsftpdPrinter,
) -> None:
    client = no_reuse_client(vsftpd.host, vsftpd.port, vsftpd.access_code)
    try:
        reply = listing_reply(client)
    finally:
        client.close()
    assert reply == "522 SSL connection failed: session reuse required"
