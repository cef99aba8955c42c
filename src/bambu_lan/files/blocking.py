"""``SyncStorage``: the printer's storage over FTPS, blocking (the package's docstring
says what the printers need, and why ftplib)."""

from __future__ import annotations

import contextlib
import ftplib
import logging
import os
import re
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from bambu_lan.config import PrinterConfig
from bambu_lan.errors import (
    AuthError,
    BambuError,
    FileTransferError,
    RemoteFileNotFound,
)
from bambu_lan.ftps_client import ImplicitFtps, close_data, transfer_error
from bambu_lan.protocol.ftp_listing import (
    RemoteEntry,
    name_list_paths,
    parse_list_line,
    printable,
    remote_path,
)
from bambu_lan.protocol.topics import USERNAME
from bambu_lan.trust import HandshakeCheck, client_context

log = logging.getLogger("bambu_lan.files")

#: ``progress(done_bytes, total_bytes_or_None)``, called after every block.
Progress = Callable[[int, int | None], None]

BLOCK_SIZE = 256 * 1024  # one buffer per transfer, reused: memory stays flat for any file size
DEFAULT_TIMEOUT = 30.0


class SyncStorage:
    """The printer's storage over FTPS, blocking. One control connection, opened on first use.

    ``port`` defaults to the config's ``ftps_port`` (990). Not safe to share between threads.
    """

    def __init__(
        self,
        cfg: PrinterConfig,
        *,
        port: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        block_size: int = BLOCK_SIZE,
    ) -> None:
        self.config = cfg.validate()
        self.port = port or cfg.ftps_port
        self.timeout = timeout
        self.block_size = block_size
        self.check: HandshakeCheck | None = None
        self._ftp: ImplicitFtps | None = None
        self._abort = threading.Event()

    def __repr__(self) -> str:
        c = self.config
        return f"SyncStorage(host={c.host!r}, serial={c.serial!r}, port={self.port})"

    @property
    def where(self) -> str:
        return f"{self.config.host}:{self.port}"

    # -- connection --

    def connect(self) -> None:
        """Connect and log in (done by the first operation if not called)."""
        if self._ftp is not None:
            return
        cfg = self.config
        self.check = HandshakeCheck(cfg.serial, cfg.trust, cfg.host)
        ftp = ImplicitFtps(context=client_context(self.check), timeout=self.timeout)
        try:
            ftp.connect(cfg.host, self.port, self.timeout)
            try:
                ftp.login(USERNAME, cfg.access_code.reveal())
            except ftplib.error_perm as exc:
                if str(exc).startswith("530"):
                    raise AuthError(
                        f"the printer's storage at {self.where} refused the access code "
                        f"(FTP {printable(str(exc))})"
                    ) from None
                raise
            ftp.prot_p()  # PBSZ 0, PROT P: the data channel is encrypted too
            ftp.voidcmd("TYPE I")
        except BaseException as exc:
            with contextlib.suppress(Exception):
                ftp.close()
            if self.check.failure is not None:
                raise self.check.failure from None
            raise self._error(exc, "connect") from None
        self._ftp = ftp

    def close(self) -> None:
        """Say goodbye (QUIT) and close. Idempotent."""
        ftp, self._ftp = self._ftp, None
        if ftp is None:
            return
        with contextlib.suppress(Exception):
            ftp.quit()
        with contextlib.suppress(Exception):
            ftp.close()

    def abort(self) -> None:
        """Stop a transfer running on another thread at its next block (it raises)."""
        self._abort.set()

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _live(self) -> ImplicitFtps:
        self.connect()
        assert self._ftp is not None
        return self._ftp

    def _error(self, exc: BaseException, what: str, path: str = "") -> BambuError:
        return transfer_error(exc, what, path, where=self.where, host=self.config.host)

    @contextlib.contextmanager
    def _op(self, what: str, path: str = "") -> Iterator[ImplicitFtps]:
        ftp = self._live()
        try:
            yield ftp
        except BambuError:
            raise
        except (ftplib.Error, OSError, EOFError, ssl.SSLError) as exc:
            if not isinstance(exc, ftplib.error_perm):
                self._drop()  # the control connection is in an unknown state: start afresh
            raise self._error(exc, what, path) from None

    def _drop(self) -> None:
        ftp, self._ftp = self._ftp, None
        if ftp is not None:
            with contextlib.suppress(Exception):
                ftp.close()

    # -- operations --

    def entries(self, folder: str = "/") -> list[RemoteEntry]:
        """The folder's files and subfolders (``LIST``), dates as the printer gives them."""
        folder = remote_path(folder)
        with self._op("list", folder) as ftp:
            lines = ftp.lines(f"LIST {folder}")
            now = datetime.now()
            entries = [e for line in lines if (e := parse_list_line(line, folder, now)) is not None]
            if not entries:
                self._require_folder(ftp, folder)
        return sorted(entries, key=lambda e: (not e.is_dir, e.path))

    def names(self, folder: str = "/") -> list[str]:
        """Absolute paths of the folder's entries (``NLST``; both printer styles)."""
        folder = remote_path(folder)
        names: list[str] = []
        with self._op("list", folder) as ftp:
            try:
                names = ftp.lines(f"NLST {folder}")
            except ftplib.error_perm as exc:
                if not str(exc).startswith("550"):  # vsftpd: 550 for an empty folder too
                    raise
            if not names:
                self._require_folder(ftp, folder)
        return sorted(name_list_paths(names, folder))

    def _require_folder(self, ftp: ImplicitFtps, folder: str) -> None:
        """An empty listing is also what vsftpd-like servers answer for a missing folder."""
        if folder != "/" and not self._is_dir(ftp, folder):
            raise RemoteFileNotFound(
                f"list {folder}: no such folder on the printer",
                hint="list the folder above it with `bambu-lan files ls`",
            )

    def size(self, path: str) -> int | None:
        """The file's size in bytes, or None when it does not exist."""
        path = remote_path(path)
        with self._op("size", path) as ftp:
            try:
                reply = ftp.sendcmd(f"SIZE {path}")
            except ftplib.error_perm as exc:
                if str(exc).startswith("550"):
                    return None
                raise
        try:
            return int(reply[3:].strip())
        except ValueError:
            return None

    def exists(self, path: str) -> bool:
        return self.size(path) is not None

    def delete(self, path: str) -> None:
        """Delete a file (``RemoteFileNotFound`` if there is none)."""
        path = remote_path(path)
        with self._op("delete", path) as ftp:
            ftp.delete(path)

    def mkdir(self, path: str) -> str:
        """Make a folder; returns its path. An existing folder is fine; an existing file of
        that name is a ``FileTransferError`` that says so."""
        path = remote_path(path)
        with self._op("mkdir", path) as ftp:
            try:
                ftp.mkd(path)
            except ftplib.error_perm as exc:
                if not str(exc).startswith("550"):
                    raise
                if self._is_dir(ftp, path):
                    return path  # there already: fine
                if self._is_file(ftp, path):
                    raise FileTransferError(
                        f"mkdir {path}: {path} exists and is a file",
                        hint=f"pick another name, or delete the file: `bambu-lan files rm {path}`",
                    ) from None
                raise
        return path

    def rmdir(self, path: str) -> None:
        path = remote_path(path)
        with self._op("rmdir", path) as ftp:
            ftp.rmd(path)

    def is_dir(self, path: str) -> bool:
        """Whether ``path`` is a folder on the card."""
        path = remote_path(path)
        if path == "/":
            return True
        with self._op("check", path) as ftp:
            return self._is_dir(ftp, path)

    def _is_file(self, ftp: ImplicitFtps, path: str) -> bool:
        try:
            ftp.sendcmd(f"SIZE {path}")
        except ftplib.error_perm:
            return False
        return True

    def _is_dir(self, ftp: ImplicitFtps, path: str) -> bool:
        try:
            ftp.cwd(path)
        except ftplib.error_perm:
            return False
        ftp.cwd("/")
        return True

    def free_space(self) -> int | None:
        """Free bytes on the card where the printer says it (``AVBL``), else None."""
        with self._op("free space") as ftp:
            try:
                reply = ftp.sendcmd("AVBL")
            except ftplib.error_perm:
                return None  # 500/502: this printer does not say
        match = re.search(r"\d+", reply[3:])
        return int(match.group()) if match else None

    def upload(
        self,
        local: str | os.PathLike[str] | IO[bytes],
        remote: str,
        *,
        progress: Progress | None = None,
    ) -> int:
        """Stream ``local`` (a path or a binary file) to ``remote``; returns the bytes sent.

        On any failure the partial remote file is deleted (over a fresh connection if the
        old one broke), so a half file is never left to be printed.
        """
        remote = remote_path(remote)
        if isinstance(local, (str, os.PathLike)):
            path = Path(local)
            try:
                handle: IO[bytes] = path.open("rb")
            except OSError as exc:
                raise FileTransferError(
                    f"cannot read {path}: {exc.strerror or exc}", hint="check the path"
                ) from None
            with handle:
                return self._upload(handle, remote, _file_size(handle), progress)
        return self._upload(local, remote, _file_size(local), progress)

    def _upload(
        self, source: IO[bytes], remote: str, total: int | None, progress: Progress | None
    ) -> int:
        self._abort.clear()
        ftp = self._live()
        try:
            conn = ftp.transfercmd(f"STOR {remote}")
        except (ftplib.Error, OSError, EOFError) as exc:
            self._drop_unless_perm(exc)
            raise self._error(exc, "upload", remote) from None
        try:
            try:
                sent = self._send_stream(conn, source, total, progress)
            except OSError as exc:  # the printer cut the data connection: ask it why
                close_data(conn)
                raise self._why_data_broke(ftp, exc) from None
            close_data(conn)
            ftp.voidresp()
        except BaseException as exc:  # Ctrl-C and cancellation included: no half file stays
            self._remove_partial(remote)
            if isinstance(exc, (ftplib.Error, OSError, EOFError)):
                raise self._error(exc, "upload", remote) from None
            raise
        return sent

    def _why_data_broke(self, ftp: ImplicitFtps, exc: BaseException) -> BaseException:
        """The printer's reason when it cut a data connection (552 card full), else ``exc``."""
        sock = ftp.sock
        try:
            if sock is not None:
                sock.settimeout(min(self.timeout, 5.0))
            ftp.getresp()  # a 2xx here would be odd: the transfer still failed
        except ftplib.Error as reply:
            return reply
        except (OSError, EOFError, ValueError):
            pass
        finally:
            with contextlib.suppress(OSError):
                if sock is not None:
                    sock.settimeout(self.timeout)
        return exc

    def _drop_unless_perm(self, exc: BaseException) -> None:
        if not isinstance(exc, ftplib.error_perm):
            self._drop()

    def _send_stream(
        self, conn: socket.socket, source: IO[bytes], total: int | None, progress: Progress | None
    ) -> int:
        buffer = bytearray(self.block_size)
        view = memoryview(buffer)
        readinto = getattr(source, "readinto", None)
        sent = 0
        while True:
            if self._abort.is_set():
                raise FileTransferError("upload aborted")
            if readinto is not None:
                n = readinto(buffer)
                chunk = view[:n] if n else b""
            else:
                chunk = source.read(self.block_size)
                n = len(chunk)
            if not n:
                break
            conn.sendall(chunk)
            sent += n
            if progress is not None:
                progress(sent, total)
        return sent

    def _remove_partial(self, remote: str) -> None:
        """Delete what a failed upload left, reconnecting if needed; warn if impossible."""
        try:
            self._drop()  # the old control connection may be mid-transfer: start clean
            with self._op("delete", remote) as ftp, contextlib.suppress(ftplib.error_perm):
                ftp.delete(remote)
        except BambuError as exc:
            log.warning(
                "%s: could not remove the partial upload %s (%s); delete it before printing",
                self.config.label,
                remote,
                exc,
            )

    def download(
        self,
        remote: str,
        local: str | os.PathLike[str] | IO[bytes],
        *,
        progress: Progress | None = None,
    ) -> int:
        """Stream ``remote`` into ``local`` (a path or a binary file); returns the bytes.

        A path is written through a temporary file beside it and renamed at the end: a failed
        download leaves no partial file.
        """
        remote = remote_path(remote)
        if not isinstance(local, (str, os.PathLike)):
            return self._download(remote, local, progress)
        target = Path(local)
        try:
            fd, tmp = tempfile.mkstemp(
                prefix=f".{target.name}.", suffix=".part", dir=target.parent or "."
            )
        except OSError as exc:
            raise FileTransferError(
                f"cannot write to {target.parent}: {exc.strerror or exc}",
                hint="check the folder exists and is writable",
            ) from None
        try:
            with os.fdopen(fd, "wb") as handle:
                received = self._download(remote, handle, progress)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return received

    def _download(self, remote: str, sink: IO[bytes], progress: Progress | None) -> int:
        self._abort.clear()
        total = self.size(remote)
        if total is None:
            with self._op("download", remote) as ftp:
                is_dir = self._is_dir(ftp, remote)
            if is_dir:
                raise FileTransferError(
                    f"download {remote}: that is a folder",
                    hint=f"list it with `bambu-lan files ls {remote}` and name a file in it",
                )
            raise RemoteFileNotFound(
                f"download {remote}: not found on the printer",
                hint="list the folder with `bambu-lan files ls`",
            )
        received = 0
        with self._op("download", remote) as ftp:
            conn = ftp.transfercmd(f"RETR {remote}")
            try:
                received = self._receive_stream(conn, sink, total, progress)
            except BaseException:
                # Aborted or broken mid-RETR: the server's late 426/226 is still on its way
                # and would answer our next command. Start the next one on a fresh connection.
                close_data(conn)
                self._drop()
                raise
            close_data(conn)
            ftp.voidresp()
        if received != total:
            raise FileTransferError(
                f"download {remote}: got {received} of {total} bytes", hint="retry"
            )
        return received

    def _receive_stream(
        self, conn: socket.socket, sink: IO[bytes], total: int | None, progress: Progress | None
    ) -> int:
        buffer = bytearray(self.block_size)
        view = memoryview(buffer)
        received = 0
        while True:
            if self._abort.is_set():
                raise FileTransferError("download aborted")
            n = conn.recv_into(buffer)
            if not n:
                return received
            sink.write(view[:n])
            received += n
            if progress is not None:
                progress(received, total)


def _file_size(handle: IO[bytes]) -> int | None:
    try:
        return os.fstat(handle.fileno()).st_size - handle.tell()
    except (OSError, AttributeError, ValueError):
        return None
