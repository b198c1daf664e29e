"""``keliu user``: the accounts of the admin and the dashboards by hand (an edge: the database).

``add`` creates an admin, a mall operator (``--mall``), a store manager or a store's staff (``--store``); ``list``,
``passwd`` and ``remove`` do what they say. A password comes from standard input (``--password-stdin``, one line);
without it one is generated, printed once, and must be changed at the first login. Unknown mall, store or user
ids are configuration errors: one line ``keliu: <key>: <reason>``, exit status 2.
"""
from __future__ import annotations

import secrets
import sys
from typing import Any, cast

import click

from keliu.errors import ConfigError, KeliuError


def _engine() -> Any:
    from keliu import config, db, tenants

    cfg = config.load()
    engine = db.make_engine(cfg.database_url)
    db.upgrade(engine)
    tenants.sync(engine, cfg)
    return engine


def _tenants(engine: Any) -> tuple[set[str], dict[str, str]]:
    import sqlalchemy as sa

    from keliu.tenants import MALLS, STORES

    with engine.connect() as conn:
        malls = {r.id for r in conn.execute(sa.select(MALLS.c.id))}
        stores = {r.id: r.mall_id for r in conn.execute(sa.select(STORES.c.id, STORES.c.mall_id))}
    return malls, stores


def _password(from_stdin: bool) -> tuple[str, bool]:
    """The new password and whether it was generated (then printed once, and to be changed at the first login)."""
    from keliu.accounts.users import password_problem

    if not from_stdin:
        return secrets.token_urlsafe(12), True
    line = sys.stdin.readline().rstrip("\r\n")
    problem = password_problem(line)
    if problem:
        raise ConfigError("password", problem)
    return line, False


def _check_name(name: str) -> None:
    from keliu.accounts.users import name_problem

    problem = name_problem(name)
    if problem:
        raise ConfigError("name", f"{name!r}: {problem}")


def _known(ident: str, known: Any, key: str) -> None:
    if ident not in known:
        listed = ", ".join(sorted(known)) or "none configured"
        raise ConfigError(key, f"no {key} {ident!r} (known: {listed})")


@click.group("user")
def user() -> None:
    """Accounts of the admin and the dashboards: admins, mall operators, store managers and staff."""


@user.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["admin", "mall", "store", "staff"]), required=True,
              help="admin: everything; mall: one mall's stores (--mall); store: one store (--store); "
                   "staff: one store's counter, no dashboard (--store).")
@click.option("--mall", "mall_id", metavar="MALL", help="The mall of a mall operator.")
@click.option("--store", "store_id", metavar="STORE", help="The store of a store manager or staff.")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from one line of standard input (else one is generated and printed once; "
                   "it must be changed at the first login).")
def add(name: str, role: str, mall_id: str | None, store_id: str | None, password_stdin: bool) -> None:
    """Create the user NAME."""
    from keliu.accounts.users import Role, create_user, load_user

    _check_name(name)
    if role == "mall" and not mall_id:
        raise ConfigError("mall", "required for --role mall")
    if role in ("store", "staff") and not store_id:
        raise ConfigError("store", f"required for --role {role}")
    if role != "mall" and mall_id:
        raise ConfigError("mall", f"only for --role mall (this is --role {role})")
    if role not in ("store", "staff") and store_id:
        raise ConfigError("store", f"only for --role store or staff (this is --role {role})")
    engine = _engine()
    malls, stores = _tenants(engine)
    if mall_id:
        _known(mall_id, malls, "mall")
    if store_id:
        _known(store_id, stores, "store")
        mall_id = stores[store_id]
    if load_user(engine, name) is not None:
        raise KeliuError(f"user {name!r} exists; `keliu user passwd {name}` sets a new password")
    password, generated = _password(password_stdin)
    create_user(engine, name, password, cast(Role, role), mall_id=mall_id, store_id=store_id, must_change=generated)
    where = f" of store {store_id}" if store_id else f" of mall {mall_id}" if mall_id else ""
    click.echo(f"added {name} ({role}{where})")
    if generated:
        click.echo(f"password: {password}  (to be changed at the first login)")


@user.command("list")
def list_cmd() -> None:
    """Every user with role, mall and store."""
    from keliu.accounts.users import list_users

    rows = [(u.name, u.role, u.mall_id or "-", u.store_id or "-", "must change password" if u.must_change else "")
            for u in list_users(_engine())]
    if not rows:
        click.echo("no users")
        return
    widths = [max(len(r[i]) for r in [("name", "role", "mall", "store", ""), *rows]) for i in range(4)]
    for r in [("name", "role", "mall", "store", ""), *rows]:
        click.echo(("  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4]).rstrip())


@user.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True,
              help="Read the new password from one line of standard input (else one is generated and printed "
                   "once; it must be changed at the first login).")
def passwd(name: str, password_stdin: bool) -> None:
    """Set a new password for NAME; every login of NAME ends."""
    from keliu.accounts.users import load_user, set_password

    engine = _engine()
    if load_user(engine, name) is None:
        raise ConfigError("name", f"no user {name!r}")
    password, generated = _password(password_stdin)
    set_password(engine, name, password, must_change=generated)
    click.echo(f"new password for {name}" + (f": {password}  (to be changed at the first login)" if generated
                                             else ""))


@user.command("remove")
@click.argument("name")
def remove(name: str) -> None:
    """Delete the user NAME (never the last admin)."""
    from keliu.accounts.users import list_users, load_user, remove_user

    engine = _engine()
    target = load_user(engine, name)
    if target is None:
        raise ConfigError("name", f"no user {name!r}")
    if target.role == "admin" and sum(u.role == "admin" for u in list_users(engine)) <= 1:
        raise KeliuError(f"{name} is the last admin; add another admin first")
    remove_user(engine, name)
    click.echo(f"removed {name}")
