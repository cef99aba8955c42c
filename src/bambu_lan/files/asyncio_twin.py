"""``Storage``: the asyncio twin of ``SyncStorage``, every call run in order on a thread of
its own."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
from collections.abc import Callable
from types import TracebackType
from typing import IO, Any, Self, TypeVar

from bambu_lan.config import PrinterConfig
from bambu_lan.errors import BambuError
from bambu_lan.files.blocking import BLOCK_SIZE, DEFAULT_TIMEOUT, Progress, SyncStorage
from bambu_lan.protocol.ftp_listing import RemoteEntry
from bambu_lan.trust import HandshakeCheck

T = TypeVar("T")


class Storage:
    """The printer's storage over FTPS for asyncio: every call of ``SyncStorage`` as a
    coroutine, run in order on a thread of this object's own. Progress callbacks run on the
    event loop. Cancelling a transfer aborts it at the next block (and cleans up)."""

    def __init__(
        self,
        cfg: PrinterConfig,
        *,
        port: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        block_size: int = BLOCK_SIZE,
    ) -> None:
        self.sync = SyncStorage(cfg, port=port, timeout=timeout, block_size=block_size)
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="bambu-lan-ftps")

    @classmethod
    def from_config(cls, cfg: PrinterConfig, **kwargs: Any) -> Storage:
        return cls(cfg, **kwargs)

    def __repr__(self) -> str:
        return repr(self.sync).replace("SyncStorage", "Storage", 1)

    @property
    def check(self) -> HandshakeCheck | None:
        """The identity check of the current connection (what certificate was seen)."""
        return self.sync.check

    async def _run(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, lambda: func(*args, **kwargs))
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            self.sync.abort()
            with contextlib.suppress(BambuError, OSError):
                await future  # let the worker clean up (partial upload removed) first
            raise

    def _on_loop(self, progress: Progress | None) -> Progress | None:
        if progress is None:
            return None
        loop = asyncio.get_running_loop()

        def on_loop(done: int, total: int | None) -> None:
            loop.call_soon_threadsafe(progress, done, total)

        return on_loop

    async def connect(self) -> None:
        await self._run(self.sync.connect)

    async def close(self) -> None:
        await self._run(self.sync.close)
        self._pool.shutdown(wait=False)

    async def __aenter__(self) -> Self:
        try:
            await self.connect()
        except BaseException:
            self._pool.shutdown(wait=False)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def entries(self, folder: str = "/") -> list[RemoteEntry]:
        return await self._run(self.sync.entries, folder)

    async def names(self, folder: str = "/") -> list[str]:
        return await self._run(self.sync.names, folder)

    async def size(self, path: str) -> int | None:
        return await self._run(self.sync.size, path)

    async def exists(self, path: str) -> bool:
        return await self._run(self.sync.exists, path)

    async def is_dir(self, path: str) -> bool:
        return await self._run(self.sync.is_dir, path)

    async def delete(self, path: str) -> None:
        await self._run(self.sync.delete, path)

    async def mkdir(self, path: str) -> str:
        return await self._run(self.sync.mkdir, path)

    async def rmdir(self, path: str) -> None:
        await self._run(self.sync.rmdir, path)

    async def free_space(self) -> int | None:
        return await self._run(self.sync.free_space)

    async def upload(
        self,
        local: str | os.PathLike[str] | IO[bytes],
        remote: str,
        *,
        progress: Progress | None = None,
    ) -> int:
        return await self._run(self.sync.upload, local, remote, progress=self._on_loop(progress))

    async def download(
        self,
        remote: str,
        local: str | os.PathLike[str] | IO[bytes],
        *,
        progress: Progress | None = None,
    ) -> int:
        return await self._run(self.sync.download, remote, local, progress=self._on_loop(progress))


__all__ = ["Progress", "RemoteEntry", "Storage", "SyncStorage"]
