"""``bambu-lan serve``: watch a farm and feed MQTT / Home Assistant, Prometheus, a history
database and notifications."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

EPILOG = """\b
Settings can also live in the config file's [serve] table (options win):
  [serve]
  mqtt = "mqtt://user:pass@192.168.1.2:1883"
  metrics_port = 9851
  http_port = 8080
  shard = "1/2"
  [[serve.notify]]
  urls = ["ntfy://ntfy.sh/my-farm"]
  quiet_hours = "22:00-07:00"

\b
Signals: SIGHUP re-reads the printers from the config file (a broken file keeps the
running config), SIGTERM or Ctrl-C stop cleanly (printers marked offline).
"""


@click.command(epilog=EPILOG)
@click.option(
    "--printer",
    "printers",
    multiple=True,
    metavar="NAME",
    help="Watch only this printer of the config file (repeatable). Default: all.",
)
@click.option("--mqtt", metavar="URL", help="Bridge to this broker: mqtt://user:pass@host:1883.")
@click.option(
    "--mqtt-ca-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CA of an mqtts:// broker with a private certificate.",
)
@click.option("--metrics-port", type=click.IntRange(0, 65535), help="Prometheus /metrics port.")
@click.option("--http-port", type=click.IntRange(0, 65535), help="Health endpoint and web page.")
@click.option("--bind", metavar="ADDR", help="Address of the ports [default: 127.0.0.1].")
@click.option("--db", metavar="URL", help="History: postgresql://... [default: SQLite file].")
@click.option("--no-history", is_flag=True, help="Keep no job history.")
@click.option("--shard", metavar="I/N", help="Watch only shard I of N (split a farm).")
@click.option(
    "--config-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="BAMBU_CONFIG",
    help="The config file [default: $BAMBU_CONFIG or ~/.config/bambu-lan/config.toml].",
)
@click.pass_context
def serve(
    ctx: click.Context,
    *,
    printers: tuple[str, ...],
    mqtt: str | None,
    mqtt_ca_file: Path | None,
    metrics_port: int | None,
    http_port: int | None,
    bind: str | None,
    db: str | None,
    no_history: bool,
    shard: str | None,
    config_file: Path | None,
) -> None:
    """Watch every printer of the config file and publish them: Home Assistant over MQTT,
    Prometheus, a job history and notifications. Runs until stopped.

    \b
      bambu-lan serve --mqtt mqtt://user:pass@broker:1883 --metrics-port 9851
      bambu-lan serve --printer workshop --http-port 8080
      bambu-lan history                    the jobs it recorded
    """
    import asyncio
    import importlib.util

    from bambu_lan.errors import ConfigError

    missing = [m for m in ("aiohttp", "prometheus_client") if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(
            f"serve needs {', '.join(missing)}, which is not installed",
            hint="pip install 'bambu-lan[serve]'",
        )
    from bambu_lan.serve.daemon import Daemon, read_farm_config, select_printers
    from bambu_lan.serve.settings import BrokerURL, Shard

    debug = bool(ctx.obj and ctx.obj.get("debug"))
    if not debug:
        from bambu_lan.cli.log_lines import stop_warning_lines

        stop_warning_lines()  # the log lines below show the library's warnings
        logging.basicConfig(
            level=logging.INFO,
            format="%(asctime)s %(levelname)s %(message)s",
            stream=sys.stderr,
        )
    options = {
        "printers": printers,
        "mqtt": BrokerURL.parse(mqtt) if mqtt else None,
        "mqtt_ca_file": mqtt_ca_file,
        "metrics_port": metrics_port,
        "http_port": http_port,
        "bind": bind,
        "db": db,
        "history": False if no_history else None,
        "shard": Shard.parse(shard) if shard else None,
    }
    farm = read_farm_config(config_file)
    settings = farm.settings.with_options(**options)
    chosen = select_printers(farm, settings)
    if not farm.printers:
        raise ConfigError(
            "no printers in the config file",
            hint="add one with [printers.NAME] host/serial/access_code (see `bambu-lan config`)",
        )
    daemon = Daemon(settings, chosen, config_file=config_file, options=options, freeze_heap=True)
    try:
        asyncio.run(daemon.run())
    except KeyboardInterrupt:
        sys.exit(130)
