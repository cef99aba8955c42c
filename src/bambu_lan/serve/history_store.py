"""Where the job history lives: SQLite (a file, the default) or PostgreSQL (shared by several
``serve`` instances), one schema, versioned migrations.

Both stores offer the same three calls: ``open()`` (connect and migrate), ``add(jobs)``
(idempotent: a job already written is skipped, so a retry after a half-failed write never
duplicates) and ``query(...)``. SQLite runs on one dedicated thread (its connection belongs to
that thread); PostgreSQL uses psycopg 3's async connection.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson

from bambu_lan.errors import ConfigError


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One job, as the history keeps it."""

    job_id: str  # <serial>-<start time in ms>: unique, stable across retries
    serial: str
    printer: str  # the config file's name
    model: str
    file: str
    name: str
    plate: int | None
    started_at: float  # unix time; when serve first saw the job if it started before
    ended_at: float
    outcome: str  # finished, failed, cancelled, unknown (ended while serve was away)
    layers: int
    layer_reached: int
    filament: str  # e.g. "PLA #FF6A13" (the tray in use), "" when unknown
    alerts: tuple[str, ...] = ()  # HMS codes and print errors seen during the job
    seen_start: bool = True  # False: serve started while the job was already running

    @property
    def duration_seconds(self) -> float:
        return max(self.ended_at - self.started_at, 0.0)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["alerts"] = list(self.alerts)
        data["duration_seconds"] = round(self.duration_seconds, 1)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobRecord:
        data = {k: v for k, v in data.items() if k != "duration_seconds"}
        data["alerts"] = tuple(data.get("alerts") or ())
        return cls(**data)


COLUMNS = (
    "job_id", "serial", "printer", "model", "file", "name", "plate", "started_at", "ended_at",
    "outcome", "duration_seconds", "layers", "layer_reached", "filament", "alerts", "seen_start",
)  # fmt: skip

#: Migrations by version: each runs once, in order, in one transaction with its version bump.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE jobs (
            job_id TEXT PRIMARY KEY,
            serial TEXT NOT NULL,
            printer TEXT NOT NULL,
            model TEXT NOT NULL,
            file TEXT NOT NULL,
            name TEXT NOT NULL,
            plate INTEGER,
            started_at DOUBLE PRECISION NOT NULL,
            ended_at DOUBLE PRECISION NOT NULL,
            outcome TEXT NOT NULL,
            duration_seconds DOUBLE PRECISION NOT NULL,
            layers INTEGER NOT NULL,
            layer_reached INTEGER NOT NULL,
            filament TEXT NOT NULL,
            alerts TEXT NOT NULL
        )""",
        "CREATE INDEX jobs_ended_at ON jobs (ended_at)",
        "CREATE INDEX jobs_serial ON jobs (serial, ended_at)",
    ),
    ("ALTER TABLE jobs ADD COLUMN seen_start INTEGER NOT NULL DEFAULT 1",),
)


def _row(job: JobRecord) -> tuple[Any, ...]:
    return (
        job.job_id, job.serial, job.printer, job.model, job.file, job.name, job.plate,
        job.started_at, job.ended_at, job.outcome, job.duration_seconds, job.layers,
        job.layer_reached, job.filament, orjson.dumps(list(job.alerts)).decode(),
        int(job.seen_start),
    )  # fmt: skip


def _record(row: Sequence[Any]) -> JobRecord:
    data = dict(zip(COLUMNS, row, strict=True))
    data.pop("duration_seconds")
    data["alerts"] = tuple(orjson.loads(data["alerts"]))
    data["seen_start"] = bool(data["seen_start"])
    return JobRecord(**data)


def _where(serials: Sequence[str], since: float | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    if serials:
        clauses.append(f"(serial IN ({', '.join('?' for _ in serials)}) OR printer IN "
                       f"({', '.join('?' for _ in serials)}))")  # fmt: skip
        args += [*serials, *serials]
    if since is not None:
        clauses.append("ended_at >= ?")
        args.append(since)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


# Only fixed column names and placeholders go into the SQL text; values are always bound.
_INSERT = (
    f"INSERT INTO jobs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)}) "  # noqa: S608
    "ON CONFLICT (job_id) DO NOTHING"
)


def _select(
    serials: Sequence[str], since: float | None, limit: int | None
) -> tuple[str, list[Any]]:
    where, args = _where(serials, since)
    sql = f"SELECT {', '.join(COLUMNS)} FROM jobs{where} ORDER BY ended_at DESC"  # noqa: S608
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return sql, args


class HistoryStore(Protocol):
    url: str

    async def open(self) -> None: ...
    async def add(self, jobs: Sequence[JobRecord]) -> int: ...
    async def query(
        self, serials: Sequence[str] = (), since: float | None = None, limit: int | None = None
    ) -> list[JobRecord]: ...
    async def close(self) -> None: ...


@dataclass
class SqliteStore:
    path: Path
    timeout: float = 5.0  # a locked database is waited for this long, then retried later
    url: str = ""
    _pool: concurrent.futures.ThreadPoolExecutor = field(
        default_factory=lambda: concurrent.futures.ThreadPoolExecutor(1, "bambu-history")
    )
    _conn: sqlite3.Connection | None = None

    def __post_init__(self) -> None:
        self.url = f"sqlite:///{self.path}"

    async def _run(self, func: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, func, *args)

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
            try:
                _migrate_sqlite(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _add(self, rows: list[tuple[Any, ...]]) -> int:
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            before = conn.total_changes
            conn.executemany(_INSERT, rows)
            conn.execute("COMMIT")
            return conn.total_changes - before
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._drop()  # a fresh connection next time (disk full, file replaced, ...)
            raise

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _query(self, sql: str, args: list[Any]) -> list[JobRecord]:
        return [_record(row) for row in self._connect().execute(sql, args)]

    async def open(self) -> None:
        await self._run(self._connect)

    async def add(self, jobs: Sequence[JobRecord]) -> int:
        return int(await self._run(self._add, [_row(j) for j in jobs]))

    async def query(
        self, serials: Sequence[str] = (), since: float | None = None, limit: int | None = None
    ) -> list[JobRecord]:
        sql, args = _select(serials, since, limit)
        result: list[JobRecord] = await self._run(self._query, sql, args)
        return result

    async def close(self) -> None:
        await self._run(self._drop)
        self._pool.shutdown(wait=False)


def _migrate_sqlite(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    current = row[0] or 0
    for version, statements in enumerate(MIGRATIONS[current:], start=current + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in statements:
                conn.execute(statement.replace("DOUBLE PRECISION", "REAL"))
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


@dataclass
class PostgresStore:
    url: str
    connect_timeout: float = 5.0
    _conn: Any = None

    async def _connect(self) -> Any:
        import psycopg

        if self._conn is None or self._conn.closed:
            conn = await psycopg.AsyncConnection.connect(
                self.url, connect_timeout=max(int(self.connect_timeout), 1), autocommit=True
            )
            try:
                await _migrate_postgres(conn)
            except BaseException:
                await conn.close()
                raise
            self._conn = conn
        return self._conn

    async def open(self) -> None:
        await self._connect()

    async def add(self, jobs: Sequence[JobRecord]) -> int:
        conn = await self._connect()
        try:
            async with conn.transaction(), conn.cursor() as cur:
                added = 0
                for job in jobs:
                    await cur.execute(_INSERT.replace("?", "%s"), _row(job))
                    added += cur.rowcount
                return added
        except BaseException:
            await self._drop()
            raise

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except Exception:  # already broken: nothing to close cleanly
                return

    async def query(
        self, serials: Sequence[str] = (), since: float | None = None, limit: int | None = None
    ) -> list[JobRecord]:
        conn = await self._connect()
        sql, args = _select(serials, since, limit)
        async with conn.cursor() as cur:
            await cur.execute(sql.replace("?", "%s"), args)
            return [_record(row) for row in await cur.fetchall()]

    async def close(self) -> None:
        await self._drop()


async def _migrate_postgres(conn: Any) -> None:
    async with conn.transaction():
        # One migrator at a time when several instances start together.
        await conn.execute("SELECT pg_advisory_xact_lock(4242001)")
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        cur = await conn.execute("SELECT MAX(version) FROM schema_version")
        row = await cur.fetchone()
        current = (row[0] if row else None) or 0
        for version, statements in enumerate(MIGRATIONS[current:], start=current + 1):
            for statement in statements:
                await conn.execute(statement)
            await conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))


def open_store(url: str) -> HistoryStore:
    """A store for ``sqlite:///path`` (or a bare path) or ``postgresql://...``."""
    scheme = urlsplit(url).scheme
    if scheme in ("postgresql", "postgres"):
        return PostgresStore(url)
    if scheme == "sqlite":
        path = url.removeprefix("sqlite://")
        if not path or path == "/":
            raise ConfigError(f"no file in the database URL {url!r}", hint="sqlite:///path/file")
        return SqliteStore(Path(path).expanduser())
    if scheme == "" or len(scheme) == 1:  # a plain path (or a Windows drive letter)
        return SqliteStore(Path(url).expanduser())
    raise ConfigError(
        f"unknown database URL {redact_url(url)!r}",
        hint="use postgresql://user:pass@host/db, or sqlite:///path/to/history.sqlite3",
    )


def redact_url(url: str) -> str:
    """The URL with its password replaced by stars."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":********@", 1)
    return url


def now() -> float:
    return time.time()
