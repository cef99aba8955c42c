"""The printer's storage over FTPS (protocol.md §8): list, upload, download, delete, make folder.

::

    async with Storage.from_config(cfg) as storage:
        for entry in await storage.entries("/timelapse"):
            print(entry.path, entry.size)
        await storage.upload("part.gcode.3mf", "/part.gcode.3mf", progress=show)

``SyncStorage`` is the blocking twin for scripts; ``Storage`` runs it on a thread of its own.

The printers' FTPS service is picky, and this module does what it needs:

* implicit TLS from the first byte on port 990, TLS 1.2, and the same trust as MQTT: the
  identity check runs inside the TLS handshake (``trust.client_context``), so a printer we do
  not trust never receives ``USER``/``PASS``;
* ``PBSZ 0``, ``PROT P``, binary, passive; every data connection resumes the control
  connection's TLS session (vsftpd-style servers answer ``522`` otherwise);
* after a transfer, our close_notify goes out but we never wait for the printer's (it never
  answers it; waiting hangs, not sending it gives ``426`` on vsftpd);
  (``bambu_lan.ftps_client`` holds that FTP layer and the error mapping);
* uploads and downloads stream through one fixed buffer (constant memory) with progress
  callbacks; a failed upload removes its partial file, a failed download leaves no local file.

Why the standard library's ftplib and not an asyncio FTP library: asyncio's TLS transport
cannot resume a TLS session on a new connection (``loop.create_connection`` takes no
``session``). Measured: aioftp 0.28.3 against vsftpd set up like a printer logs in, then hangs
on the first data connection (it starts a fresh TLS handshake before sending ``STOR``, which
vsftpd answers only after the command, and would refuse anyway: ``522``). ftplib with
``wrap_socket(session=...)`` does it in a few lines, and blocking sockets on a worker thread
upload 50 MB on loopback faster than curl (docs/benchmarks.md, section 6).
"""

from __future__ import annotations

from bambu_lan.files.asyncio_twin import Storage
from bambu_lan.files.blocking import BLOCK_SIZE, DEFAULT_TIMEOUT, Progress, SyncStorage
from bambu_lan.protocol.ftp_listing import RemoteEntry

__all__ = ["BLOCK_SIZE", "DEFAULT_TIMEOUT", "Progress", "RemoteEntry", "Storage", "SyncStorage"]
