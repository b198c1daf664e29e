"""The ``keliu`` command line (composition root).

Each component contributes one click group from its own ``cli`` module; they are imported lazily so that
``keliu --help`` stays fast and one component's missing optional dependency cannot break the others. Any
:class:`keliu.errors.KeliuError` becomes one line ``keliu: <message>`` on stderr: exit status 2 for a configuration
error, 1 for anything else.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path
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
    "user": ("keliu.accounts.cli", "user", "Accounts of the admin and dashboards: add, list, passwd, remove."),
    "config": ("keliu.cli", "config_cmd", "Check the configuration and print it (secrets hidden)."),
    "db": ("keliu.cli", "db_cmd", "Create or upgrade the database schema."),
    "member": ("portal.member_cli", "member", "A member's rights: export, correct, delete; import from a CRM."),
    "audit": ("keliu.audit_cli", "audit_cmd", "The staff audit trail: who viewed, exported or changed what."),
    "token": ("keliu.cli", "token_cmd", "API bearer tokens for POS systems and integrations."),
    "pos": ("keliu.cli", "pos_cmd", "POS sales: import a CSV or XLSX export."),
    "staff": ("marketing.staff_cli", "staff", "Staff attribution: settings per store, staff phones, flags."),
    "fleet": ("keliu.fleet.cli", "fleet",
              "Least privilege in a fleet: router roles with row level security, broker users, CA, device key."),
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
@click.option("-v", "--verbose", count=True, help="Say more: -v progress lines, -vv debugging.")
def cli(verbose: int) -> None:
    """客流 keliu: the captive portal and foot-traffic sensor of a shop's Wi-Fi router.

    Configuration comes from ./keliu.toml (or the file named by KELIU_CONFIG), then KELIU_* environment
    variables. See docs/keliu.example.toml. Quiet by default; -v says more.
    """
    from keliu import console

    console.set_verbosity(verbose)
    # the analytics worker and beat run every component's tasks: the app is composed here, where layers meet
    click.get_current_context().meta["keliu.celery_app"] = _celery_app


def _celery_app(cfg: Any) -> Any:
    from keliu.tasks import make_app

    return make_app(cfg)


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


@click.group("token")
def token_cmd() -> None:
    """API bearer tokens (stored hashed; a token is printed once, at creation)."""


@token_cmd.command("create")
@click.option("--role", type=click.Choice(["store", "mall"]), required=True)
@click.option("--store", "store_id", help="the store a store token acts for")
@click.option("--mall", "mall_id", help="the mall a mall token acts for (every store in it)")
@click.option("--name", help="a name to list and revoke it by (default: generated)")
def token_create(role: str, store_id: str | None, mall_id: str | None, name: str | None) -> None:
    """Create a token and print it (only its SHA-256 is stored)."""
    from datetime import UTC, datetime

    from keliu import config, db
    from keliu.accounts import tokens

    engine = db.make_engine(config.load().database_url)
    name, token = tokens.create_token(engine, role=role, store_id=store_id, mall_id=mall_id,  # type: ignore[arg-type]
                                      name=name, now=datetime.now(UTC))
    click.echo(f"{name}\t{token}")


@token_cmd.command("list")
def token_list() -> None:
    """List tokens: name, role, tenant, created, revoked (never the token)."""
    from keliu import config, db
    from keliu.accounts import tokens

    for t in tokens.list_tokens(db.make_engine(config.load().database_url)):
        click.echo("\t".join([t.name, t.role, t.store_id or t.mall_id or "", t.created_at.isoformat(),
                              t.revoked_at.isoformat() if t.revoked_at else "live"]))


@token_cmd.command("revoke")
@click.argument("name")
def token_revoke(name: str) -> None:
    """Revoke a token by name (the servers refuse it within 5 s: they remember a checked token that long)."""
    from datetime import UTC, datetime

    from keliu import config, db
    from keliu.accounts import tokens

    tokens.revoke_token(db.make_engine(config.load().database_url), name, datetime.now(UTC))
    click.echo(f"revoked {name}")


@click.group("pos")
def pos_cmd() -> None:
    """POS sales and refunds (docs/MARKETING.md: the file format)."""


@pos_cmd.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--store", "store_id", required=True, help="the store whose POS exported the file")
@click.option("--strict", is_flag=True, help="import nothing if any row is rejected")
@click.option("--rejects", type=click.Path(dir_okay=False, path_type=Path),
              help="write every rejected row (line, column, reason) to this CSV file")
def pos_import(file: Path, store_id: str, strict: bool, rejects: Path | None) -> None:
    """Import a CSV or XLSX export: idempotent on (store, transaction id); refunds linked to their sale; valid
    rows stored in one transaction (nothing half-imported); rejected rows reported."""
    from marketing.cli import run_import
    from portal.store.marketing_members import PortalMembers

    run_import(file, store_id, strict=strict, rejects=rejects, directory=PortalMembers())


def _db_reason(exc: Exception) -> str:
    """One line for a database error that reached the command line (the driver's first line; a missing table
    means a schema keliu has not created or upgraded yet)."""
    first = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    missing = "no such table" in first or ("relation" in first and "does not exist" in first)
    return f"{first} (the schema is not keliu's yet: run `keliu db`)" if missing else first


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
    except Exception as exc:
        # SQLAlchemy is loaded only by the commands that use a database: look for its errors only then
        sa_exc = sys.modules.get("sqlalchemy.exc")
        if sa_exc is None or not isinstance(exc, sa_exc.DBAPIError):
            raise
        click.echo(f"keliu: database: {_db_reason(exc)}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
