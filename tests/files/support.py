"""Helpers for the storage tests: a client config for a simulated printer, a client that does
not resume the TLS session (what printers refuse), and a file of random bytes."""

from __future__ import annotations

import contextlib
import ftplib
import os
import socket
import ssl
from pathlib import Path
from typing import Any

from bambu_lan.config import PrinterConfig, Secret
from bambu_lan.files import Storage
from bambu_lan.sim import SimulatedPrinter
from bambu_lan.trust import TrustConfig


def config_for(sim: SimulatedPrinter, **changes: Any) -> PrinterConfig:
    assert sim.ftps is not None
    trust = changes.pop("trust", TrustConfig(ca_file=sim.ca_path))
    return PrinterConfig(
        host=changes.pop("host", sim.host),
        serial=changes.pop("serial", sim.serial),
        access_code=Secret(changes.pop("access_code", sim.access_code)),
        trust=trust,
        ftps_port=changes.pop("ftps_port", sim.ftps.port),
        **changes,
    )


def storage_for(sim: SimulatedPrinter, **changes: Any) -> Storage:
    return Storage(config_for(sim, **changes))


def random_file(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


class NoReuseFtps(ftplib.FTP_TLS):
    """Implicit FTPS whose data connections start a new TLS session (plain FTP_TLS style)."""

    def connect_implicit(self, host: str, port: int) -> str:
        self.host, self.port = host, port
        raw = socket.create_connection((host, port), 10)
        self.af = raw.family
        self.sock = self.context.wrap_socket(raw)
        self.file = self.sock.makefile("r", encoding="utf-8")
        self.welcome = self.getresp()
        return self.welcome

    def ntransfercmd(self, cmd: str, rest: Any = None) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)  # noqa: S321
        try:
            return self.context.wrap_socket(conn), size  # no session=: a fresh handshake
        except (ssl.SSLError, OSError):
            conn.close()
            raise ftplib.error_perm(self.getresp()) from None  # noqa: S321


def listing_reply(client: ftplib.FTP_TLS) -> str:
    """The final reply to an NLST over a data connection whose TLS session is new."""
    conn = client.transfercmd("NLST /")
    try:
        with contextlib.suppress(OSError):
            conn.recv(100)
    finally:
        conn.close()
    try:
        return client.getresp()
    except ftplib.Error as exc:
        return str(exc)


def no_reuse_client(host: str, port: int, access_code: str) -> NoReuseFtps:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    client = NoReuseFtps(context=context, timeout=10)
    client.connect_implicit(host, port)
    client.login("bblp", access_code)
    client.prot_p()
    return client
