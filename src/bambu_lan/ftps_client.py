"""The FTP layer under ``bambu_lan.files``: ftplib made to speak to printers (protocol.md §8).

Implicit TLS from the first byte (the identity check runs in the handshake, before any
credential); data connections that resume the control connection's TLS session (printers
answer ``522`` otherwise); data connections ended with our close_notify but without waiting
for the printer's (it never answers; not sending it gets ``426`` from vsftpd); and the one
mapping of ftplib, socket and TLS errors to bambu-lan's.
"""

from __future__ import annotations

import contextlib
import ftplib
import select
import socket
import ssl
from typing import Any

from bambu_lan.errors import (
    AuthError,
    BambuError,
    ConnectError,
    FileTransferError,
    RemoteFileNotFound,
    StorageFull,
)
from bambu_lan.protocol.ftp_listing import printable


class ImplicitFtps(ftplib.FTP_TLS):
    """ftplib's FTP_TLS with implicit TLS and session-resuming data connections."""

    def connect(  # type: ignore[override]
        self, host: str, port: int, timeout: float, source_address: Any = None
    ) -> str:
        self.host, self.port, self.timeout = host, port, timeout
        raw = socket.create_connection((host, port), timeout)
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # The handshake runs here and with it the identity check (trust.client_context):
            # a printer we do not trust is left before USER/PASS are written.
            self.sock = self.context.wrap_socket(raw)
        except BaseException:
            raw.close()
            raise
        self.af = self.sock.family
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome

    def lines(self, cmd: str) -> list[str]:
        """A listing's lines; like ``retrlines``, minus the wait for the printer's
        close_notify."""
        self.sendcmd("TYPE A")
        try:
            conn = self.transfercmd(cmd)
            try:
                with conn.makefile("rb") as stream:
                    data = stream.read()
            finally:
                close_data(conn)
            self.voidresp()
        finally:
            self.sendcmd("TYPE I")
        return data.decode(self.encoding, "replace").splitlines()

    def ntransfercmd(
        self, cmd: str, rest: int | str | None = None
    ) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)  # noqa: S321 (TLS added below)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            # The same TLS session as the control connection: printers refuse others (522).
            assert isinstance(self.sock, ssl.SSLSocket)
            tls = self.context.wrap_socket(conn, session=self.sock.session)
        except (ssl.SSLError, OSError) as exc:
            conn.close()
            reply = ""
            with contextlib.suppress(Exception):
                reply = self.getresp()
            message = reply or f"522 data connection TLS failed: {exc}"
            raise ftplib.error_perm(message) from None  # noqa: S321 (an error, not a call)
        return tls, size


def close_data(conn: socket.socket) -> None:
    """End a data connection: our close_notify goes out, the printer's is not awaited."""
    if isinstance(conn, ssl.SSLSocket):
        with contextlib.suppress(OSError, ValueError):
            conn.setblocking(False)
            for _ in range(50):
                try:
                    conn.unwrap()
                    break
                except ssl.SSLWantReadError:
                    break  # ours is sent; theirs may never come
                except ssl.SSLWantWriteError:
                    select.select([], [conn], [], 0.1)
    conn.close()


def transfer_error(
    exc: BaseException, what: str, path: str = "", *, where: str, host: str
) -> BambuError:
    """One place where ftplib, socket and TLS errors become ours (``where``: host:port)."""
    target = f" {path}" if path else ""
    if isinstance(exc, BambuError):
        return exc
    if isinstance(exc, ftplib.Error):
        reply = printable(str(exc))
        code = reply[:3]
        if code == "550":
            return RemoteFileNotFound(
                f"{what}{target}: not found on the printer ({reply})",
                hint="list the folder with `bambu-lan files ls`",
            )
        if code == "552":
            return StorageFull(f"{what}{target}: the printer's card is full ({reply})")
        if code == "530":
            return AuthError(f"the printer's storage refused us: {reply}")
        if code == "522":
            return FileTransferError(
                f"{what}{target}: the printer refused the data connection ({reply})",
                hint="the printer wants the data connection to resume the control "
                "connection's TLS session; report this with `--debug` output",
            )
        if code == "553":
            return FileTransferError(
                f"{what}{target}: the printer refused the name ({reply})",
                hint="use a short ASCII file name; some firmware refuses writes without "
                "Developer Mode",
            )
        return FileTransferError(f"{what}{target}: the printer answered {reply}")
    if isinstance(exc, ConnectionRefusedError):
        return ConnectError(
            f"{where} refused the connection (the printer's FTPS service)",
            hint="is this the printer's IP, and LAN-only mode on? The FTPS port is 990 "
            "(--ftps-port)",
        )
    if isinstance(exc, TimeoutError):
        return ConnectError(
            f"{what}{target}: no answer from {where} (timed out)",
            hint="check the printer is on and reachable; retry",
        )
    if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        return ConnectError(
            f"{what}{target}: connection to {where} lost (closed mid-transfer)",
            hint="check the printer is on and its Wi-Fi is steady; retry",
        )
    if isinstance(exc, ssl.SSLError):
        return ConnectError(
            f"TLS with {where} failed during {what}: {exc.reason or exc}",
            hint="the printer speaks TLS 1.2 only; run `bambu-lan doctor` for details",
        )
    if isinstance(exc, socket.gaierror):
        return ConnectError(f"unknown host {host!r}: {exc.strerror}")
    if isinstance(exc, (OSError, EOFError)):
        detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return ConnectError(f"{what}{target}: connection to {where} lost ({detail})")
    return FileTransferError(f"{what}{target} failed: {exc}")
