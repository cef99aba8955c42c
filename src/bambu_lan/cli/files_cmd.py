"""``bambu-lan files``: the printer's storage (SD card) over FTPS: ls, put, get, rm, mkdir."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from bambu_lan.cli.options import (
    ConnectionParams,
    connection_options,
    echo_json,
    ftps_port_option,
    json_errors,
    json_option,
    run,
)

if TYPE_CHECKING:
    from bambu_lan.config import PrinterConfig
    from bambu_lan.files import Progress, Storage

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def with_storage(cfg: PrinterConfig, action: Callable[[Storage], Awaitable[T]]) -> T:
    """Connect to the storage, run ``action``, close."""

    async def main() -> T:
        from bambu_lan.files import Storage

        async with Storage(cfg) as storage:
            return await action(storage)

    return run(main())


def human_size(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


@contextlib.contextmanager
def progress_bar(label: str, total: int | None, enabled: bool) -> Iterator[Progress | None]:
    """A progress bar on stderr when it is a terminal (never with --json or in a pipe)."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)

        def update(done: int, size: int | None) -> None:
            bar.update(task, completed=done, total=size)

        yield update


@click.group()
def files() -> None:
    """The printer's storage (SD card) over FTPS: list, upload, download, delete.

    Each subcommand takes the connection options (--host, --serial, --access-code or BAMBU_*
    variables, or --printer NAME), --ftps-port and --json. The printer's identity is checked
    as for MQTT (CA or pinned certificate) before the access code is sent.

    \b
    Examples:
      bambu-lan files ls                      the card's top folder
      bambu-lan files ls /timelapse           timelapse videos
      bambu-lan files put part.gcode.3mf      upload to /part.gcode.3mf
      bambu-lan files get /timelapse/video.avi
      bambu-lan files rm /cache/old.3mf
    """


def _command(name: str) -> Callable[[Callable[..., Any]], click.Command]:
    def decorate(func: Callable[..., Any]) -> click.Command:
        return files.command(name)(connection_options(json_option(ftps_port_option(func))))

    return decorate


@_command("ls")
@click.argument("path", default="/", metavar="[PATH]")
def ls(conn: ConnectionParams, as_json: bool, ftps_port: int | None, path: str) -> None:
    """List a folder of the printer's card (default: the top folder).

    Dates are shown as the printer gives them (printer clocks are often off).
    """
    from bambu_lan.protocol.ftp_listing import printable, remote_path

    with json_errors(as_json):
        cfg = conn.resolve(ftps_port=ftps_port)
        folder = remote_path(path)
        entries = with_storage(cfg, lambda s: s.entries(folder))
    if as_json:
        echo_json({"ok": True, "path": folder, "entries": [e.to_dict() for e in entries]})
        return
    if not entries:
        click.echo(f"{folder}: empty")
        return
    for entry in entries:
        size = "<dir>" if entry.is_dir else human_size(entry.size)
        name = printable(entry.name, 300) + ("/" if entry.is_dir else "")
        click.echo(f"{size:>10}  {printable(entry.modified):<12}  {name}")


@_command("put")
@click.argument("local", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("remote", required=False, metavar="[REMOTE]")
def put(
    conn: ConnectionParams, as_json: bool, ftps_port: int | None, local: Path, remote: str | None
) -> None:
    """Upload LOCAL to the card (default: /NAME; into REMOTE/NAME when REMOTE is a folder).

    A failed upload removes its partial file from the card.
    """
    from bambu_lan.errors import ConfigError

    with json_errors(as_json):
        if not local.is_file():
            raise ConfigError(
                f"no such file: {local}", hint="give the path of a file on this computer"
            )
        target = remote or "/"
        if target.endswith("/"):
            target += local.name
        cfg = conn.resolve(ftps_port=ftps_port)
        size = local.stat().st_size
        started = time.monotonic()
        with progress_bar(f"upload {local.name}", size, not as_json) as progress:

            async def upload(storage: Storage) -> int:
                nonlocal target
                if await storage.is_dir(target):  # into a folder, as cp does
                    target = target.rstrip("/") + "/" + local.name
                return await storage.upload(local, target, progress=progress)

            sent = with_storage(cfg, upload)
        seconds = time.monotonic() - started
    if as_json:
        echo_json({"ok": True, "local": str(local), "remote": target, "bytes": sent,
                   "seconds": round(seconds, 3)})  # fmt: skip
        return
    click.echo(f"uploaded {local} to {target} ({human_size(sent)} in {seconds:.1f} s)")


@_command("get")
@click.argument("remote", metavar="REMOTE")
@click.argument("local", required=False, type=click.Path(path_type=Path))
@click.option("--force", "-f", is_flag=True, help="Overwrite LOCAL if it exists.")
def get(
    *,
    conn: ConnectionParams,
    as_json: bool,
    ftps_port: int | None,
    remote: str,
    local: Path | None,
    force: bool,
) -> None:
    """Download REMOTE from the card (default: into the current folder, same name).

    The file appears only when complete (a failed download leaves nothing behind).
    """
    import posixpath

    from bambu_lan.errors import ConfigError

    with json_errors(as_json):
        name = posixpath.basename(remote.rstrip("/"))
        if not name:
            raise ConfigError(f"{remote} is a folder", hint="name a file, e.g. /timelapse/x.avi")
        target = local if local is not None else Path(name)
        if target.is_dir():
            target = target / name
        if target.exists() and not force:
            raise ConfigError(f"{target} exists", hint="pass --force to overwrite it")
        cfg = conn.resolve(ftps_port=ftps_port)
        started = time.monotonic()
        with progress_bar(f"download {name}", None, not as_json) as progress:
            got = with_storage(cfg, lambda s: s.download(remote, target, progress=progress))
        seconds = time.monotonic() - started
    if as_json:
        echo_json({"ok": True, "remote": remote, "local": str(target), "bytes": got,
                   "seconds": round(seconds, 3)})  # fmt: skip
        return
    click.echo(f"downloaded {remote} to {target} ({human_size(got)} in {seconds:.1f} s)")


@_command("rm")
@click.argument("remote", metavar="REMOTE")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation on a terminal.")
def rm(
    conn: ConnectionParams, as_json: bool, ftps_port: int | None, remote: str, yes: bool
) -> None:
    """Delete a file from the card."""
    if not yes and not as_json and sys.stdin.isatty():
        click.confirm(f"Delete {remote} from the printer?", abort=True)
    with json_errors(as_json):
        cfg = conn.resolve(ftps_port=ftps_port)
        with_storage(cfg, lambda s: s.delete(remote))
    if as_json:
        echo_json({"ok": True, "deleted": remote})
        return
    click.echo(f"deleted {remote}")


@_command("mkdir")
@click.argument("remote", metavar="REMOTE")
def mkdir(conn: ConnectionParams, as_json: bool, ftps_port: int | None, remote: str) -> None:
    """Make a folder on the card (an existing one is fine)."""
    with json_errors(as_json):
        cfg = conn.resolve(ftps_port=ftps_port)
        made = with_storage(cfg, lambda s: s.mkdir(remote))
    if as_json:
        echo_json({"ok": True, "created": made})
        return
    click.echo(f"created {made}")
