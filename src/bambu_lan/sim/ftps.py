"""The simulated printer's storage service: implicit FTPS, answering like the printers' vsftpd.

What a client meets (protocol.md §8, and a real vsftpd set up like a printer):

* TLS 1.2 from the first byte with the printer's certificate (implicit TLS, port 990 on a
  printer); user ``bblp`` with the access code, else ``530 Login incorrect.``;
* ``PBSZ 0`` + ``PROT P`` before any data connection (``522`` otherwise); passive only
  (``PASV``/``EPSV``), ports from a configurable range;
* every data connection must resume the control connection's TLS session:
  ``522 SSL connection failed: session reuse required`` otherwise;
* the card is a folder of its own (``SimCard``) with a size limit: ``552`` when full (the
  partial file stays, as on a real card: cleaning up is the client's job);
* ``NLST`` names are bare (A1/P1) or carry the folder (X1), per model.

Faults for tests: ``drop_upload_after(n)`` cuts both connections once an upload has sent
``n`` bytes. ``stats`` counts logins, refusals and commands (``USER`` included, so a test can
prove no credentials were sent to a printer the client did not trust).

This module is the server (listening, sessions, faults); one control connection's commands
are ``ftps_session.FtpsSession``, the card is ``ftps_card.SimCard``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import ssl
from dataclasses import dataclass, field

from bambu_lan.sim.ftps_card import SimCard
from bambu_lan.sim.ftps_session import FtpsSession, list_line

log = logging.getLogger(__name__)


@dataclass
class FtpsStats:
    """Counters since start (a test reads them; nothing resets them)."""

    connections: int = 0  # TLS handshakes completed on the control port
    logins: int = 0
    failed_logins: int = 0
    reuse_refusals: int = 0  # data connections refused for not resuming the TLS session
    uploads: int = 0  # STORs completed
    downloads: int = 0
    commands: collections.Counter[str] = field(default_factory=collections.Counter)


def ftps_server_context(base: ssl.SSLContext) -> ssl.SSLContext:
    """``base`` with TLS session tickets off, so a resumed data connection shows the control
    connection's session id (what "the same session" means here)."""
    base.options |= ssl.OP_NO_TICKET
    return base


class FtpsServer:
    """The storage service of one simulated printer.

    Arguments:
        access_code: the password of user ``bblp`` (the printer's LAN access code).
        card: the storage; a fresh temporary card when None (removed by ``stop``).
        pasv_ports: ``(first, last)`` passive ports, or None for any free port.
        nlst_with_folder: X1 style ``NLST`` ("cache/x.3mf") instead of bare names.
    """

    def __init__(
        self,
        access_code: str,
        card: SimCard | None = None,
        *,
        pasv_ports: tuple[int, int] | None = None,
        nlst_with_folder: bool = False,
    ) -> None:
        self.access_code = access_code
        self._own_card = card is None
        self.card = card if card is not None else SimCard()
        self.pasv_ports = pasv_ports
        self.nlst_with_folder = nlst_with_folder
        self.stats = FtpsStats()
        self.drop_uploads_after: int | None = None
        self.ssl_context: ssl.SSLContext | None = None
        self.port = 0
        self._server: asyncio.Server | None = None
        self._sessions: set[FtpsSession] = set()
        self._next_pasv = 0

    def __repr__(self) -> str:
        return f"<FtpsServer port={self.port} card={self.card.root}>"

    @property
    def running(self) -> bool:
        return self._server is not None

    def tls(self) -> ssl.SSLContext:
        assert self.ssl_context is not None, "the FTPS server is not started"
        return self.ssl_context

    def passive_ports(self) -> list[int]:
        """Ports to try for the next passive listener (round robin over the range)."""
        if self.pasv_ports is None:
            return [0]
        first, last = self.pasv_ports
        span = last - first + 1
        start = self._next_pasv % span
        self._next_pasv += 1
        return [first + (start + i) % span for i in range(span)]

    def drop_upload_after(self, size: int | None) -> None:
        """Fault: drop the connection once an upload has sent ``size`` bytes (None: off)."""
        self.drop_uploads_after = size

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext) -> None:
        """Listen with implicit TLS; ``ssl_context`` is the printer's server context."""
        if self._server is not None:
            raise RuntimeError("the FTPS server is already started")
        self.ssl_context = ftps_server_context(ssl_context)
        self._server = await asyncio.start_server(self._serve, host, port, ssl=self.ssl_context)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and drop every connection. Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for session in list(self._sessions):
            session.abort()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2)
        if self._own_card:
            self.card.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        session = FtpsSession(self, reader, writer)
        self._sessions.add(session)
        try:
            await session.run()
        except (OSError, ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        except Exception:
            log.exception("FTPS session failed")
        finally:
            self._sessions.discard(session)
            await session.close()


__all__ = ["FtpsServer", "FtpsSession", "FtpsStats", "SimCard", "list_line"]
