"""Job history: a row per simulated print in SQLite (default) and a real PostgreSQL; jobs that
end while the database is unavailable are kept and written later; migrations; the CLI."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from bambu_lan.cli.main import cli
from bambu_lan.protocol.events import EventKind
from bambu_lan.serve.daemon import Daemon, build_sinks, read_farm_config, select_printers
from bambu_lan.serve.history import HistorySink
from bambu_lan.serve.history_store import MIGRATIONS, SqliteStore, open_store
from bambu_lan.serve.settings import default_history_path
from bambu_lan.sim import SimulatedPrinter

from .postgres import PostgresCluster
from .support import RecordingSink
from .test_daemon import daemon_for, write_config


async def print_job(
    daemon: Daemon, rec: RecordingSink, sim: SimulatedPrinter, name: str, count: int = 1
) -> None:
    sim.model.start_print(layers=3, name=name, layer_seconds=1, prepare_seconds=0.5, tray=2)
    done = EventKind.JOB_FINISHED
    await rec.wait_for(lambda: rec.kinds(sim.serial).count(done) >= count, timeout=30)


async def test_a_finished_job_becomes_a_row_in_the_default_sqlite(
    sim: SimulatedPrinter, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.toml", {"workshop": sim})
    rec = RecordingSink()
    farm = read_farm_config(config)
    sinks = build_sinks(farm.settings)
    history = next(s for s in sinks if isinstance(s, HistorySink))
    daemon = Daemon(farm.settings, select_printers(farm, farm.settings), sinks=[*sinks, rec])
    await daemon.start()
    try:
        await rec.wait_for(lambda: sim.serial in rec.states)
        await print_job(daemon, rec, sim, "benchy")
        await rec.wait_for(lambda: history.written == 1)
    finally:
        await daemon.stop()
    path = default_history_path()
    assert path.exists() and str(tmp_path) in str(path)  # the XDG data folder
    jobs = await SqliteStore(path).query()
    assert len(jobs) == 1
    job = jobs[0]
    assert job.serial == sim.serial and job.printer == "workshop" and job.model == "A1"
    assert job.outcome == "finished" and job.name == "benchy" and job.seen_start
    assert job.layers == 3 and job.layer_reached == 3
    assert job.filament.startswith("PETG") or job.filament  # tray 2 of the simulated AMS
    assert 0 < job.duration_seconds < 60


def test_history_cli_json_csv_table_and_filters(tmp_path: Path) -> None:
    from bambu_lan.serve.history_store import JobRecord

    records = [
        JobRecord(
            job_id=f"01S00A00000000{i}-1",
            serial=f"01S00A00000000{i}",
            printer=f"p{i}",
            model="A1",
            file="cube.3mf",
            name=name,
            plate=1,
            started_at=ended - 600,
            ended_at=ended,
            outcome=outcome,
            layers=10,
            layer_reached=10,
            filament="PLA #FF0000",
            alerts=alerts,
        )
        for i, (name, ended, outcome, alerts) in enumerate(
            [
                ("old", time.time() - 10 * 86400, "finished", ()),
                ("=cmd|evil", time.time() - 60, "failed", ("print_error 0300_4000",)),
                ("\x1b]0;pwned\x07benchy", time.time() - 30, "finished", ()),
            ]
        )
    ]

    async def fill() -> None:
        store = SqliteStore(default_history_path())
        await store.add(records)
        await store.add(records)  # idempotent: nothing twice
        await store.close()

    asyncio.run(fill())
    runner = CliRunner()
    out = runner.invoke(cli, ["history", "--json"])
    assert out.exit_code == 0, out.output
    rows = [json.loads(line) for line in out.output.splitlines()]
    assert [r["printer"] for r in rows] == ["p2", "p1", "p0"]  # newest first
    assert rows[1]["alerts"] == ["print_error 0300_4000"] and rows[1]["duration_seconds"] == 600
    out = runner.invoke(cli, ["history", "--csv", "--since", "1d"])
    parsed = list(csv.DictReader(io.StringIO(out.output)))
    assert [r["printer"] for r in parsed] == ["p2", "p1"]
    assert parsed[1]["name"] == "'=cmd|evil"  # no formula for a spreadsheet
    out = runner.invoke(cli, ["history", "--printer", "p0"])
    assert "old" in out.output and "p1" not in out.output
    out = runner.invoke(cli, ["history", "--printer", "01S00A000000001", "--limit", "1"])
    assert "failed" in out.output
    out = runner.invoke(cli, ["history"])
    assert "\x1b" not in out.output and "benchy" in out.output  # terminal-safe
    out = runner.invoke(cli, ["history", "--printer", "nobody"])
    assert "no jobs recorded" in out.output


def test_history_cli_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(cli, ["history"])
    assert out.exit_code != 0 and "no history yet" in str(out.exception or out.output)
    out = runner.invoke(cli, ["history", "--db", "sqlite:///x.db", "--since", "yesterday-ish"])
    assert "neither a duration nor a date" in str(out.exception or out.output)


async def test_a_job_ending_while_sqlite_is_locked_is_kept_and_written_later(
    sim: SimulatedPrinter, tmp_path: Path, serve_logs: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "h.sqlite3"
    history = HistorySink(
        f"sqlite:///{db}", spool=tmp_path / "spool.jsonl", store=SqliteStore(db, timeout=0.2)
    )
    config = write_config(tmp_path / "c.toml", {"workshop": sim})
    rec = RecordingSink()
    daemon = daemon_for(config, history, rec)
    await daemon.start()
    blocker = sqlite3.connect(db, isolation_level=None)
    try:
        await rec.wait_for(lambda: sim.serial in rec.states)
        await history.store.open()
        blocker.execute("BEGIN EXCLUSIVE")  # another program holds the database
        await print_job(daemon, rec, sim, "locked")
        await rec.wait_for(lambda: "locked" in history.last_error)
        assert history.pending and history.written == 0
        assert (tmp_path / "spool.jsonl").exists()
        assert daemon.health()["sinks"]["history"]["ok"] is False
        blocker.execute("ROLLBACK")
        await rec.wait_for(lambda: history.written == 1, timeout=30)
        assert not history.pending and not (tmp_path / "spool.jsonl").exists()
    finally:
        blocker.close()
        await daemon.stop()
    errors = [r.getMessage() for r in serve_logs.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "1 job(s) kept" in errors[0] and "locked" in errors[0]
    assert any("database back" in r.getMessage() for r in serve_logs.records)
    assert [j.name for j in await SqliteStore(db).query()] == ["locked"]


async def test_kept_jobs_survive_a_restart_through_the_spool(tmp_path: Path) -> None:
    from bambu_lan.serve.history_store import JobRecord

    spool = tmp_path / "spool.jsonl"
    record = JobRecord(
        job_id="X-1", serial="01S00A000000001", printer="p", model="A1", file="f.3mf",
        name="n", plate=1, started_at=1.0, ended_at=61.0, outcome="failed", layers=3,
        layer_reached=1, filament="PLA #FFFFFF", alerts=("print_error 0300_4000",),
    )  # fmt: skip
    first = HistorySink(f"sqlite:///{tmp_path / 'unused.sqlite3'}", spool=spool)
    first.keep(record)  # a job ended; the process stops before any write (never started)
    assert spool.exists()
    second = HistorySink(f"sqlite:///{tmp_path / 'h.sqlite3'}", spool=spool)
    from bambu_lan.serve.hub import Hub

    await second.start(Hub())
    try:
        assert second.pending == [record]
        await second.flush()
        assert second.written == 1
    finally:
        await second.stop()
    assert await SqliteStore(tmp_path / "h.sqlite3").query() == [record]
    assert not spool.exists()


async def test_migrations_upgrade_an_old_database(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for statement in MIGRATIONS[0]:
        conn.execute(statement.replace("DOUBLE PRECISION", "REAL"))
    conn.execute("INSERT INTO schema_version VALUES (1)")
    conn.execute(
        "INSERT INTO jobs VALUES ('a', 's', 'p', 'A1', 'f', 'n', NULL, 1, 2, 'finished', 1, 1, "
        "1, '', '[]')"
    )
    conn.close()
    store = open_store(f"sqlite:///{db}")
    jobs = await store.query()
    await store.close()
    assert [j.job_id for j in jobs] == ["a"] and jobs[0].seen_start is True
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == len(MIGRATIONS)
    conn.close()


@pytest.fixture
def postgres() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster()
    cluster.start()
    yield cluster
    cluster.remove()


async def test_postgresql_history_and_a_job_kept_while_it_is_down(
    sim: SimulatedPrinter, tmp_path: Path, postgres: PostgresCluster
) -> None:
    history = HistorySink(postgres.url, spool=tmp_path / "spool.jsonl", max_delay=1.0)
    config = write_config(tmp_path / "c.toml", {"workshop": sim})
    rec = RecordingSink()
    daemon = daemon_for(config, history, rec)
    await daemon.start()
    try:
        await rec.wait_for(lambda: sim.serial in rec.states)
        await print_job(daemon, rec, sim, "first")
        await rec.wait_for(lambda: history.written == 1)
        postgres.stop()
        await print_job(daemon, rec, sim, "while-down", count=2)
        await rec.wait_for(lambda: bool(history.last_error))
        assert [j.name for j in history.pending] == ["while-down"]
        postgres.start()
        await rec.wait_for(lambda: history.written == 2, timeout=30)
    finally:
        await daemon.stop()
    store = open_store(postgres.url)
    try:
        jobs = await store.query(["workshop"])
    finally:
        await store.close()
    assert [j.name for j in jobs] == ["while-down", "first"]
    assert all(j.serial == sim.serial and j.outcome == "finished" for j in jobs)
    # Secrets: nothing of the URL's password shape leaks (trust auth here: none to leak).
    assert "postgresql://" in daemon.health()["sinks"]["history"]["database"]
