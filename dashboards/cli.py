"""``keliu dashboards``: build the committed Grafana files and provision Grafana (composition root of the commands).

``build`` regenerates ``dashboards/grafana/json/*.json`` and the provisioning YAML from the code; ``build --check``
only reports stale files (exit 1). ``provision --url … --token …`` pushes the datasource (when an InfluxDB URL is
configured or given), a ``keliu`` folder with the fleet dashboard and one folder per configured mall.
"""
from __future__ import annotations

import click

from dashboards.errors import StaleDashboards
from dashboards.grafana import files, push
from keliu import config


@click.group("dashboards")
def dashboards() -> None:
    """Build Grafana dashboards as code and provision them."""


@dashboards.command("build")
@click.option("--check", is_flag=True, help="Only check that the committed files are up to date.")
def build(check: bool) -> None:
    """Regenerate dashboards/grafana/ (dashboard JSON and provisioning YAML) from the code."""

    cfg = config.load()
    if check:
        paths = files.stale(cfg.dashboards)
        if paths:
            raise StaleDashboards(paths)
        click.echo("Grafana files are up to date")
        return
    for path in files.write(cfg.dashboards):
        click.echo(f"wrote {path.relative_to(files.ROOT.parent.parent)}")


@dashboards.command("provision")
@click.option("--url", required=True, help="Grafana base URL, e.g. https://grafana.example.com")
@click.option("--token", required=True, envvar="GRAFANA_TOKEN", help="A Grafana service-account token.")
@click.option("--mall", "malls", multiple=True, help="Only these mall ids (default: every configured mall).")
@click.option("--influx-url", default=None, help="Also upsert the InfluxDB datasource (default: [analytics] influx_url).")
def provision(url: str, token: str, malls: tuple[str, ...], influx_url: str | None) -> None:
    """Push the dashboards to Grafana: folder `keliu` (fleet) and a folder per mall (store and mall views)."""

    cfg = config.load()
    known = {m.id: m.name for m in cfg.malls}
    for m in malls:
        cfg.mall(m)  # an unknown mall is a configuration error (exit 2)
    chosen = [(m, known[m]) for m in (malls or tuple(known))]
    influx_url = influx_url or cfg.analytics.influx_url
    commands = push.plan(cfg.dashboards, chosen, tz=cfg.timezone, influx_url=influx_url,
                         influx_token=cfg.analytics.influx_token)
    for line in push.apply(push.connect(url, token), commands):
        click.echo(line)
