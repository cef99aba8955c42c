"""``bambu-lan files``: ls, put, get, rm, mkdir against the simulated A1, in-process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from tests.cli.conftest import Cli, Result
from tests.files.support import random_file

from bambu_lan.sim import SimulatedPrinter


def card(sim: SimulatedPrinter) -> list[str]:
    assert sim.card is not None
    return sim.card.names()


def test_put_ls_get_rm(
    cli: Cli, storage_env: SimulatedPrinter, tmp_path: Path, no_secret: Callable[[Result], None]
) -> None:
    source = random_file(tmp_path / "part.gcode.3mf", 300_000)
    put = cli("files", "put", str(source))
    assert put.code == 0, put.err
    assert "uploaded" in put.out and "/part.gcode.3mf" in put.out
    assert "/part.gcode.3mf" in card(storage_env)

    listing = cli("files", "ls")
    assert listing.code == 0, listing.err
    assert any(line.endswith("part.gcode.3mf") and "300.0 kB" in line for line in listing.lines)
    assert any(line.endswith("timelapse/") for line in listing.lines)

    as_json = cli("files", "ls", "/", "--json").json()
    assert as_json["ok"] is True and as_json["path"] == "/"
    sizes = {e["path"]: e["size"] for e in as_json["entries"]}
    assert sizes["/part.gcode.3mf"] == 300_000

    target = tmp_path / "out"
    target.mkdir()
    got = cli("files", "get", "/part.gcode.3mf", str(target), "--json")
    assert got.code == 0, got.err
    assert got.json()["bytes"] == 300_000
    assert (target / "part.gcode.3mf").read_bytes() == source.read_bytes()

    again = cli("files", "get", "/part.gcode.3mf", str(target))
    assert again.code == 2 and "exists" in again.err and "hint: pass --force" in again.err

    removed = cli("files", "rm", "/part.gcode.3mf", "--yes")
    assert removed.code == 0, removed.err
    assert "/part.gcode.3mf" not in card(storage_env)
    for result in (put, listing, got, again, removed):
        no_secret(result)


def test_put_into_a_folder_and_mkdir(
    cli: Cli, storage_env: SimulatedPrinter, tmp_path: Path
) -> None:
    made = cli("files", "mkdir", "/models", "--json")
    assert made.code == 0 and made.json() == {"ok": True, "created": "/models"}
    source = random_file(tmp_path / "a.3mf", 10)
    assert cli("files", "put", str(source), "/models/").code == 0
    assert "/models/a.3mf" in card(storage_env)
    into = cli("files", "put", str(source), "/cache", "--json")  # a folder, like cp
    assert into.code == 0, into.err
    assert into.json()["remote"] == "/cache/a.3mf" and "/cache/a.3mf" in card(storage_env)
    missing = cli("files", "ls", "/no/such/folder")
    assert missing.code == 2 and "no such folder" in missing.err
    over_a_file = cli("files", "mkdir", "/models/a.3mf")
    assert over_a_file.code == 2
    assert over_a_file.err.splitlines() == [
        "error: mkdir /models/a.3mf: /models/a.3mf exists and is a file",
        "hint: pick another name, or delete the file: `bambu-lan files rm /models/a.3mf`",
    ]


@pytest.mark.parametrize(
    ("args", "message", "hint"),
    [
        (("files", "rm", "/nope.3mf", "-y"), "not found on the printer", "files ls"),
        (("files", "get", "/nope.3mf", "/tmp/never-written"), "not found", "files ls"),
        (("files", "put", "/no/such/file"), "no such file", "path of a file"),
        (("files", "ls", "--access-code", "00000000"), "refused the access code", "access code"),
        (("files", "ls", "--serial", "03919A3B1200999"), "no credentials were sent", "serial"),
        (("files", "ls", "--ftps-port", "1"), "refused the connection", "--ftps-port"),
    ],
)
def test_errors_are_one_line_with_a_hint(
    *,
    cli: Cli,
    storage_env: SimulatedPrinter,
    args: tuple[str, ...],
    message: str,
    hint: str,
    no_secret: Callable[[Result], None],
) -> None:
    result = cli(*args)
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert lines[0].startswith("error: ") and message in lines[0], result.err
    assert lines[1].startswith("hint: ") and hint in lines[1], result.err
    assert "Traceback" not in result.err
    no_secret(result)
    assert not Path("/tmp/never-written").exists()


def test_errors_as_json(cli: Cli, storage_env: SimulatedPrinter) -> None:
    result = cli("files", "rm", "/nope.3mf", "--json")
    assert result.code == 2
    data = result.json()
    assert data["ok"] is False and data["error"]["type"] == "RemoteFileNotFound"


def test_ftps_port_from_the_config_file(
    cli: Cli, storage_env: SimulatedPrinter, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert storage_env.ftps is not None
    monkeypatch.delenv("BAMBU_FTPS_PORT")
    (isolated_env / "config.toml").write_text(
        f"[printers.shop]\nftps_port = {storage_env.ftps.port}\n"
    )
    assert cli("files", "ls", "--printer", "shop").code == 0


def test_ctrl_c_mid_upload_exits_130_and_leaves_no_partial_file(
    storage_env: SimulatedPrinter, tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    assert storage_env.card is not None
    big = tmp_path / "big.gcode.3mf"
    with big.open("wb") as handle:
        handle.truncate(2_000_000_000)  # sparse: cheap to make, slow enough to interrupt
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "bambu-lan"), "files", "put", str(big)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ),
    )  # fmt: skip
    partial = storage_env.card.local("/big.gcode.3mf")
    deadline = time.monotonic() + 120  # generous: a loaded machine starts processes slowly
    # No event crosses the process boundary: watch the card until the upload is under way.
    while not (partial.exists() and partial.stat().st_size > 1_000_000):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the upload did not start"
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert b"Traceback" not in err
    assert "/big.gcode.3mf" not in storage_env.card.names()


def test_sim_command_serves_its_card(cli: Cli, sim_cert_dir: Path, tmp_path: Path) -> None:
    import json
    import signal
    import subprocess
    import sys

    card = tmp_path / "card"
    sim = subprocess.Popen(
        [str(Path(sys.executable).parent / "bambu-lan"), "sim", "--port", "0", "--json",
         "--cert-dir", str(sim_cert_dir), "--card-dir", str(card), "--card-size", "5000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert sim.stdout is not None
        (info,) = json.loads(sim.stdout.readline())
        assert info["ftps_port"] and (card / "timelapse").is_dir()
        common = ("--host", info["host"], "--port", str(info["port"]), "--serial",
                  info["serial"], "--access-code", info["access_code"], "--ca-file",
                  info["ca_path"], "--ftps-port", str(info["ftps_port"]))  # fmt: skip
        source = random_file(tmp_path / "small.3mf", 1000)
        assert cli("files", "put", str(source), *common).code == 0
        assert (card / "small.3mf").read_bytes() == source.read_bytes()
        full = cli("files", "put", str(random_file(tmp_path / "big.3mf", 10_000)), *common)
        assert full.code == 2 and "full" in full.err
        assert not (card / "big.3mf").exists()
    finally:
        sim.send_signal(signal.SIGINT)
        sim.communicate(timeout=20)
    assert card.is_dir()  # a card folder given by the user is kept


def test_hostile_names_on_the_card_never_reach_the_terminal_raw(
    cli: Cli, storage_env: SimulatedPrinter
) -> None:
    assert storage_env.card is not None
    storage_env.card.write("/\x1b]0;owned\x07evil\x1b[2J.3mf", b"x")
    listing = cli("files", "ls")
    assert listing.code == 0, listing.err
    assert "\x1b" not in listing.out and "\x07" not in listing.out
    assert any("evil" in line for line in listing.lines)
    as_json = cli("files", "ls", "--json").json()  # JSON stays exact
    assert any("\x1b" in entry["name"] for entry in as_json["entries"])
