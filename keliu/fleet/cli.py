"""``keliu fleet``: the operator's least-privilege commands, run on the central host (a composition root).

    keliu fleet policies                 row level security on every router table (again after keliu db)
    keliu fleet router add STORE         the store router's PostgreSQL role (and RabbitMQ user: --broker)
    keliu fleet router remove STORE      drop them
    keliu fleet router list
    keliu fleet ca init                  the fleet's CA in var/fleet/
    keliu fleet cert issue NAME          a server or router certificate signed by it
    keliu fleet key export --to CERT     the mall's device key, encrypted to one router
    keliu fleet key import FILE          (on the router) decrypt it into var/keys/device_hmac
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click


def _engine() -> Any:
    from keliu import config, db

    return db.make_engine(config.load().database_url)


def write_secret(path: Path, text: str) -> None:
    """Write ``text`` to a new file readable by its owner only (refuses to overwrite)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


@click.group("fleet")
def fleet() -> None:
    """Least privilege in a fleet: router roles with row level security, broker users, a CA, the device key."""


@fleet.command("policies")
def policies_cmd() -> None:
    """Enable row level security and the routers' policies on every table (idempotent)."""
    from keliu.fleet import roles

    tables = roles.apply_policies(_engine())
    click.echo(f"router access rules on {len(tables)} tables")


@fleet.group("router")
def router() -> None:
    """Per-router credentials."""


@router.command("add")
@click.argument("store_id")
@click.option("--password-file", type=click.Path(dir_okay=False, path_type=Path),
              help="write the password to this new file (mode 0600) instead of printing it")
@click.option("--broker", is_flag=True,
              help="also create the router's RabbitMQ user (rabbitmqctl, on the broker's host)")
@click.option("--vhost", default="/", show_default=True, help="the broker's virtual host")
def router_add(store_id: str, password_file: Path | None, broker: bool, vhost: str) -> None:
    """Create (or reset) STORE's router role: its rows only. The password is shown once (or written to
    --password-file); put it in the router's KELIU_DATABASE_URL."""
    from keliu.fleet import roles

    role, password = roles.add_router(_engine(), store_id)
    lines = [f"postgresql\t{role}\t{password}"]
    if broker:
        from keliu.fleet import rabbit

        user, bpw = rabbit.add_user(store_id, vhost=vhost)
        lines.append(f"rabbitmq\t{user}\t{bpw}\tqueue {rabbit.queue_name(store_id)}")
    text = "\n".join(lines) + "\n"
    if password_file:
        write_secret(password_file, text)
        click.echo(f"{role}: credentials written to {password_file} (0600)")
    else:
        click.echo(text, nl=False)


@router.command("remove")
@click.argument("store_id")
@click.option("--broker", is_flag=True, help="also delete the router's RabbitMQ user")
def router_remove(store_id: str, broker: bool) -> None:
    """Drop STORE's router role (its rows stay)."""
    from keliu.fleet import roles

    click.echo(f"dropped {roles.remove_router(_engine(), store_id)}")
    if broker:
        from keliu.fleet import rabbit

        click.echo(f"deleted broker user {rabbit.delete_user(store_id)}")


@router.command("list")
def router_list() -> None:
    """Role, store and mall of every router."""
    from keliu.fleet import roles

    for role, store, mall in roles.list_routers(_engine()):
        click.echo(f"{role}\t{store}\t{mall}")


def _fleet_dir(directory: Path | None) -> Path:
    if directory is not None:
        return directory
    from keliu import config

    return Path(config.load().var_dir) / "fleet"


@fleet.group("ca")
def ca_group() -> None:
    """The fleet's certificate authority (var/fleet/ca.key, ca.pem)."""


@ca_group.command("init")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="where the CA lives (default: <var_dir>/fleet)")
@click.option("--days", default=3650, show_default=True)
def ca_init(directory: Path | None, days: int) -> None:
    """Create the CA key (0600) and certificate; never replaces one."""
    from datetime import UTC, datetime

    from keliu.fleet import ca

    click.echo(f"CA certificate: {ca.init_ca(_fleet_dir(directory), datetime.now(UTC), days=days)}")


@fleet.group("cert")
def cert_group() -> None:
    """Certificates signed by the fleet's CA."""


@cert_group.command("issue")
@click.argument("name", required=False)
@click.option("--server", is_flag=True, help="the central host's certificate (PostgreSQL, RabbitMQ)")
@click.option("--router", "store_id", help="a router's client certificate, named (common name) after the store's "
                                           "router role, keliu_router_<store>")
@click.option("--dns", multiple=True, help="a DNS name of the server (repeat)")
@click.option("--ip", "ips", multiple=True, help="an IP address of the server (repeat)")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--days", default=825, show_default=True)
def cert_issue(name: str | None, server: bool, store_id: str | None, dns: tuple[str, ...], ips: tuple[str, ...],
               directory: Path | None, days: int) -> None:
    """Issue NAME.key (0600) and NAME.pem in the CA's directory."""
    from datetime import UTC, datetime

    from keliu.fleet import ca, policy

    if store_id is not None:
        name = policy.role_name(store_id)
    if not name:
        raise click.UsageError("give NAME or --router STORE")
    out = ca.issue(_fleet_dir(directory), name, datetime.now(UTC), dns=dns, ips=ips, server=server, days=days)
    click.echo(f"{out.cert}\n{out.key}")
