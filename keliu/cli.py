"""The ``keliu`` command line (composition root).

Each component contributes one click group from its own ``cli`` module; they are imported lazily so that
``keliu --help`` stays fast and one component's missing optional dependency cannot break the others. Any
:class:`keliu.errors.KeliuError` becomes one line ``keliu: <message>`` on stderr: exit status 2 for a configuration
error, 1 for anything else.
"""
from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from keliu.errors import ConfigError, KeliuError

SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": ("keliu.demo", "demo", "Run the whole appliance on 127.0.0.1 with embedded defaults."),
    "portal": ("portal.cli", "portal", "Serve the captive portal, member pages, admin and dashboard."),
    "sensor": ("sensor.cli", "sensor", "Capture, replay and parse 802.11 probe requests."),
    "analytics": ("analytics.cli", "analytics", "Celery worker and beat, reports of visits and metrics."),
    "router": ("router_config.cli", "router", "Render and apply the firewall, DHCP and AP config; the Gate by hand."),
    "bench": ("keliu.testing.cli", "bench", "The network-namespace test bench (router, internet, phones) by hand."),
    "dashboards": ("dashboards.cli", "dashboards", "Build Grafana dashboards as code and provision them."),
    "config": ("keliu.cli", "config_cmd", "Check the configuration and print it (secrets hidden)."),
    "db": ("keliu.cli", "db_cmd", "Create or upgrade the database schema."),
    "accesslog": ("keliu.accesslog.cli", "accesslog",
                  "The access and NAT log the law requires: verify, query, export, anchor, purge."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in SUBCOMMANDS:
            return None
        module, attr, _ = SUBCOMMANDS[name]
        cmd = getattr(importlib.import_module(module), attr)
        assert isinstance(cmd, click.Command)
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help from the table, without importing every component.
        with formatter.section("Commands"):
            formatter.write_dl([(n, SUBCOMMANDS[n][2]) for n in sorted(SUBCOMMANDS)])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="keliu")
def cli() -> None:
    """客流 keliu: the captive portal and foot-traffic sensor of a shop's Wi-Fi router.

    Configuration comes from ./keliu.toml (or the file named by KELIU_CONFIG), then KELIU_* environment
    variables. See docs/keliu.example.toml.
    """


@click.command("config")
@click.option("--check", is_flag=True, help="Only validate; print nothing on success.")
def config_cmd(check: bool) -> None:
    """Validate the configuration and print the effective values (secrets are never stored here)."""
    import dataclasses
    import json

    from keliu import config
    from keliu.redaction import redact_url

    cfg = config.load()
    if not check:
        click.echo(json.dumps(config.redacted(dataclasses.asdict(cfg)), indent=2, ensure_ascii=False,
                              default=lambda value: redact_url(str(value))))


@click.command("db")
def db_cmd() -> None:
    """Create or upgrade the schema of KELIU_DATABASE_URL and sync the configured malls and stores."""
    from keliu import config, db, tenants

    cfg = config.load()
    engine = db.make_engine(cfg.database_url)
    db.upgrade(engine)
    tenants.sync(engine, cfg)
    click.echo(f"schema up to date: {engine.url.render_as_string(hide_password=True)}")


def main(argv: list[str] | None = None) -> Any:
    try:
        return cli.main(args=argv, prog_name="keliu", standalone_mode=False)
    except ConfigError as exc:
        click.echo(f"keliu: {exc}", err=True)
        sys.exit(2)
    except KeliuError as exc:
        click.echo(f"keliu: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("keliu: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
