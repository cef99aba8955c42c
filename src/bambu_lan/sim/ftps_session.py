"""One control connection of the simulated printer's FTPS service (``ftps.FtpsServer``):
the commands, the passive data connections and their TLS session check, transfers to and
from the card."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import posixpath
import ssl
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING

log = logging.getLogger("bambu_lan.sim.ftps")

if TYPE_CHECKING:
    from bambu_lan.sim.ftps import FtpsServer

_CHUNK = 256 * 1024
_DATA_TIMEOUT = 10.0  # seconds to wait for the client's data connection
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_FEATURES = ("EPSV", "PASV", "PBSZ", "PROT", "REST STREAM", "SIZE", "TVFS", "UTF8")
# Commands allowed before login (the rest get 530).
_PRE_LOGIN = {"USER", "PASS", "QUIT", "FEAT", "SYST", "NOOP", "PBSZ", "PROT", "AUTH", "OPTS"}


def list_line(path: Path, name: str, now: float | None = None) -> str:
    """One ``LIST`` line in vsftpd's format (``ls -l`` style, numeric owner)."""
    st = path.stat()
    mode = stat.filemode(st.st_mode)
    moment = time.localtime(st.st_mtime)
    recent = abs((now or time.time()) - st.st_mtime) < 182 * 86400
    when = time.strftime("%H:%M", moment) if recent else f" {moment.tm_year}"
    date = f"{_MONTHS[moment.tm_mon - 1]} {moment.tm_mday:2d} {when}"
    return f"{mode}    1 1000     1000     {st.st_size:>8d} {date} {name}"


class FtpsSession:
    """One control connection of the simulated FTPS service: the vsftpd-like command loop."""

    def __init__(
        self,
        server: FtpsServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.user: str | None = None
        self.logged_in = False
        self.pbsz = False
        self.prot_private = False
        self.cwd = "/"
        self.pasv: asyncio.Server | None = None
        self.data: asyncio.Future[asyncio.Transport] | None = None
        ssl_object = writer.get_extra_info("ssl_object")
        self.tls_session = ssl_object.session if ssl_object is not None else None

    async def reply(self, text: str) -> None:
        self.writer.write(text.encode("utf-8", "replace") + b"\r\n")
        await self.writer.drain()

    def path(self, arg: str) -> str:
        joined = posixpath.join(self.cwd, arg) if arg else self.cwd
        return posixpath.normpath("/" + joined.lstrip("/")) if joined else "/"

    async def run(self) -> None:
        await self.reply("220 (vsFTPd 3.0.5)")
        while True:
            line = await self.reader.readline()
            if not line:
                return
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            verb, _, arg = text.partition(" ")
            verb = verb.upper()
            self.server.stats.commands[verb] += 1
            if not self.logged_in and verb not in _PRE_LOGIN:
                await self.reply("530 Please login with USER and PASS.")
                continue
            handler = getattr(self, f"cmd_{verb.lower()}", None) if verb.isalpha() else None
            if handler is None:
                await self.reply("500 Unknown command.")
                continue
            if await handler(arg):
                return

    async def close(self) -> None:
        self._close_pasv()
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 1)

    def abort(self) -> None:
        self._close_pasv()
        self.writer.transport.abort()

    # -- login and settings --

    async def cmd_user(self, arg: str) -> bool:
        self.user, self.logged_in = arg, False
        await self.reply("331 Please specify the password.")
        return False

    async def cmd_pass(self, arg: str) -> bool:
        server = self.server
        if self.user is None:
            await self.reply("503 Login with USER first.")
            return False
        ok = self.user == "bblp" and hmac.compare_digest(arg.encode(), server.access_code.encode())
        if not ok:
            server.stats.failed_logins += 1
            await self.reply("530 Login incorrect.")
            return True  # vsftpd hangs up after a failed login
        self.logged_in = True
        server.stats.logins += 1
        await self.reply("230 Login successful.")
        return False

    async def cmd_auth(self, arg: str) -> bool:
        await self.reply("534 Already in TLS (implicit).")
        return False

    async def cmd_pbsz(self, arg: str) -> bool:
        self.pbsz = True
        await self.reply("200 PBSZ set to 0.")
        return False

    async def cmd_prot(self, arg: str) -> bool:
        level = arg.strip().upper()
        if level == "P":
            self.prot_private = True
            await self.reply("200 PROT now Private.")
        elif level == "C":
            self.prot_private = False
            await self.reply("200 PROT now Clear.")
        else:
            await self.reply("536 PROT not supported.")
        return False

    async def cmd_syst(self, arg: str) -> bool:
        await self.reply("215 UNIX Type: L8")
        return False

    async def cmd_feat(self, arg: str) -> bool:
        lines = ["211-Features:", *(f" {f}" for f in _FEATURES), "211 End"]
        await self.reply("\r\n".join(lines))
        return False

    async def cmd_opts(self, arg: str) -> bool:
        await self.reply("200 Always in UTF8 mode.")
        return False

    async def cmd_noop(self, arg: str) -> bool:
        await self.reply("200 NOOP ok.")
        return False

    async def cmd_type(self, arg: str) -> bool:
        kind = arg.strip().upper()[:1]
        if kind == "I":
            await self.reply("200 Switching to Binary mode.")
        elif kind == "A":
            await self.reply("200 Switching to ASCII mode.")
        else:
            await self.reply("500 Unrecognised TYPE command.")
        return False

    async def cmd_quit(self, arg: str) -> bool:
        await self.reply("221 Goodbye.")
        return True

    # -- folders and files --

    async def cmd_pwd(self, arg: str) -> bool:
        await self.reply(f'257 "{self.cwd}" is the current directory')
        return False

    async def cmd_cwd(self, arg: str) -> bool:
        target = self.path(arg)
        if self.server.card.local(target).is_dir():
            self.cwd = target
            await self.reply("250 Directory successfully changed.")
        else:
            await self.reply("550 Failed to change directory.")
        return False

    async def cmd_cdup(self, arg: str) -> bool:
        return await self.cmd_cwd("..")

    async def cmd_size(self, arg: str) -> bool:
        local = self.server.card.local(self.path(arg))
        if local.is_file():
            await self.reply(f"213 {local.stat().st_size}")
        else:
            await self.reply("550 Could not get file size.")
        return False

    async def cmd_mdtm(self, arg: str) -> bool:
        local = self.server.card.local(self.path(arg))
        if local.is_file():
            stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(local.stat().st_mtime))
            await self.reply(f"213 {stamp}")
        else:
            await self.reply("550 Could not get file modification time.")
        return False

    async def cmd_dele(self, arg: str) -> bool:
        local = self.server.card.local(self.path(arg))
        if local.is_file():
            local.unlink()
            await self.reply("250 Delete operation successful.")
        else:
            await self.reply("550 Delete operation failed.")
        return False

    async def cmd_mkd(self, arg: str) -> bool:
        target = self.path(arg)
        local = self.server.card.local(target)
        if local.exists() or not local.parent.is_dir():
            await self.reply("550 Create directory operation failed.")
        else:
            local.mkdir()
            await self.reply(f'257 "{target}" created')
        return False

    async def cmd_rmd(self, arg: str) -> bool:
        local = self.server.card.local(self.path(arg))
        try:
            if local == self.server.card.root:
                raise OSError("the root")
            local.rmdir()
        except OSError:
            await self.reply("550 Remove directory operation failed.")
        else:
            await self.reply("250 Remove directory operation successful.")
        return False

    async def cmd_avbl(self, arg: str) -> bool:
        free = self.server.card.free()
        if free is None:
            await self.reply("550 Free space unknown.")
        else:
            await self.reply(f"213 {free}")
        return False

    # -- data connections --

    def _close_pasv(self) -> None:
        if self.pasv is not None:
            self.pasv.close()
            self.pasv = None
        if self.data is not None and self.data.done() and not self.data.cancelled():
            with contextlib.suppress(Exception):
                self.data.result().abort()
        self.data = None

    async def _open_pasv(self) -> int | None:
        self._close_pasv()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[asyncio.Transport] = loop.create_future()
        host = self.writer.get_extra_info("sockname")[0]
        for port in self.server.passive_ports():
            try:
                self.pasv = await loop.create_server(lambda: _Accepted(future), host, port)
            except OSError:
                continue
            self.data = future
            return int(self.pasv.sockets[0].getsockname()[1])
        return None

    async def cmd_pasv(self, arg: str) -> bool:
        port = await self._open_pasv()
        if port is None:
            await self.reply("425 Could not listen for passive connection.")
            return False
        host = self.writer.get_extra_info("sockname")[0].replace(".", ",")
        await self.reply(f"227 Entering Passive Mode ({host},{port >> 8},{port & 0xFF}).")
        return False

    async def cmd_epsv(self, arg: str) -> bool:
        port = await self._open_pasv()
        if port is None:
            await self.reply("425 Could not listen for passive connection.")
            return False
        await self.reply(f"229 Entering Extended Passive Mode (|||{port}|)")
        return False

    async def cmd_port(self, arg: str) -> bool:
        await self.reply("500 Illegal PORT command.")  # printers are reached passive only
        return False

    async def cmd_eprt(self, arg: str) -> bool:
        return await self.cmd_port(arg)

    async def _data_connection(
        self, opening: str
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """Accept the passive connection, answer ``opening`` (150), then the TLS handshake
        that must resume this control connection's session; None after an error reply."""
        if not self.prot_private:
            await self.reply("522 Data connections must be encrypted.")
            return None
        if self.data is None:
            await self.reply("425 Use PORT or PASV first.")
            return None
        future = self.data
        try:
            raw = await asyncio.wait_for(future, _DATA_TIMEOUT)
        except TimeoutError:
            self._close_pasv()
            await self.reply("425 Failed to establish connection.")
            return None
        if self.pasv is not None:
            self.pasv.close()
            self.pasv = None
        self.data = None
        await self.reply(opening)
        # The client may have sent its ClientHello already (curl does, before the 150): it
        # waits in the socket, unread, until the TLS layer takes over the paused transport.
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=_CHUNK * 2)
        protocol = asyncio.StreamReaderProtocol(reader)
        try:
            tls = await loop.start_tls(
                raw, protocol, self.server.tls(), server_side=True,
                ssl_handshake_timeout=_DATA_TIMEOUT,
            )  # fmt: skip
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError):
            raw.abort()
            await self.reply("522 SSL connection failed: session reuse required")
            return None
        if tls is None:
            raw.abort()
            await self.reply("426 Connection closed; transfer aborted.")
            return None
        writer = asyncio.StreamWriter(tls, protocol, reader, loop)
        ssl_object = writer.get_extra_info("ssl_object")
        session = ssl_object.session if ssl_object is not None else None
        same = (
            ssl_object is not None
            and ssl_object.session_reused
            and session is not None
            and self.tls_session is not None
            and session.id == self.tls_session.id
        )
        if not same:
            self.server.stats.reuse_refusals += 1
            writer.transport.abort()
            await self.reply("522 SSL connection failed: session reuse required")
            return None
        return reader, writer

    async def _end_data(self, writer: asyncio.StreamWriter) -> None:
        """Close our side: close_notify goes out; the client's is not awaited."""
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 0.5)
        if not writer.transport.is_closing():
            writer.transport.abort()

    async def _listing(self, arg: str, *, long: bool) -> None:
        args = [a for a in arg.split() if not a.startswith("-")]
        target = self.path(args[0] if args else "")
        card = self.server.card
        local = card.local(target)
        if local.is_dir():
            children = sorted(local.iterdir(), key=lambda p: p.name)
        elif local.exists():
            children = [local]
        else:
            children = []
        lines: list[str] = []
        now = time.time()
        for child in children:
            if long:
                lines.append(list_line(child, child.name, now))
            elif self.server.nlst_with_folder and target != "/" and child != local:
                lines.append(f"{target.strip('/')}/{child.name}")
            else:
                lines.append(child.name)
        opened = await self._data_connection("150 Here comes the directory listing.")
        if opened is None:
            return
        _, writer = opened
        writer.write("".join(line + "\r\n" for line in lines).encode("utf-8", "replace"))
        with contextlib.suppress(OSError, ConnectionError):
            await writer.drain()
        await self._end_data(writer)
        await self.reply("226 Directory send OK.")

    async def cmd_list(self, arg: str) -> bool:
        await self._listing(arg, long=True)
        return False

    async def cmd_nlst(self, arg: str) -> bool:
        await self._listing(arg, long=False)
        return False

    async def cmd_retr(self, arg: str) -> bool:
        local = self.server.card.local(self.path(arg))
        if not local.is_file():
            self._close_pasv()
            await self.reply("550 Failed to open file.")
            return False
        size = local.stat().st_size
        opened = await self._data_connection(
            f"150 Opening BINARY mode data connection for {posixpath.basename(arg)} ({size} bytes)."
        )
        if opened is None:
            return False
        _, writer = opened
        try:
            with local.open("rb") as handle:
                while chunk := handle.read(_CHUNK):
                    writer.write(chunk)
                    await writer.drain()
        except (OSError, ConnectionError):
            writer.transport.abort()
            await self.reply("426 Failure writing network stream.")
            return False
        await self._end_data(writer)
        self.server.stats.downloads += 1
        await self.reply("226 Transfer complete.")
        return False

    async def cmd_stor(self, arg: str) -> bool:
        server = self.server
        target = self.path(arg)
        local = server.card.local(target)
        if not arg or local.is_dir() or not local.parent.is_dir():
            self._close_pasv()
            await self.reply("553 Could not create file.")
            return False
        opened = await self._data_connection("150 Ok to send data.")
        if opened is None:
            return False
        reader, writer = opened
        free = server.card.free()
        written = 0
        full = dropped = broken = False
        with local.open("wb") as handle:
            while True:
                try:
                    chunk = await reader.read(_CHUNK)
                except (OSError, ConnectionError, ssl.SSLError):
                    broken = True
                    break
                if not chunk:
                    break
                if free is not None and written + len(chunk) > free:
                    handle.write(chunk[: max(0, free - written)])
                    full = True
                    break
                handle.write(chunk)
                written += len(chunk)
                limit = server.drop_uploads_after
                if limit is not None and written >= limit:
                    dropped = True
                    break
        if dropped:
            writer.transport.abort()
            self.abort()  # the whole connection is gone, as when a printer drops off Wi-Fi
            return True
        if full:
            writer.transport.abort()
            await self.reply("552 Could not write: no space left on the card.")
            return False
        await self._end_data(writer)
        if broken:
            await self.reply("426 Failure reading network stream.")
            return False
        server.stats.uploads += 1
        await self.reply("226 Transfer complete.")
        return False


class _Accepted(asyncio.Protocol):
    """A passive data connection, accepted and left unread until TLS takes it over."""

    def __init__(self, future: asyncio.Future[asyncio.Transport]) -> None:
        self.future = future

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.pause_reading()
        if self.future.done():
            transport.abort()  # one data connection per PASV
        else:
            self.future.set_result(transport)
