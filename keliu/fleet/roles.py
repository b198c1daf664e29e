"""Router roles in the central PostgreSQL (an edge: DDL as the tables' owner).

:func:`apply_policies` enables row level security with the policies of :mod:`keliu.fleet.policy` on every table
that exists (idempotent: run it again after ``keliu db upgrade`` adds tables); :func:`add_router` creates or resets
a store's login role with a fresh random password and returns the password (never stored by keliu);
:func:`remove_router` drops it.
"""
from __future__ import annotations

import secrets

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from keliu.errors import ConfigError, ServiceError
from keliu.fleet import policy


def _tables(conn: sa.Connection) -> set[str]:
    return set(sa.inspect(conn).get_table_names())


def _check_postgres(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        raise ConfigError("database_url", "fleet roles need the central PostgreSQL (a single store has no routers "
                                          "to separate)")


def apply_policies(engine: Engine) -> list[str]:
    """Row level security on every router table present; returns the tables it covers."""
    _check_postgres(engine)
    with engine.begin() as conn:
        tables = _tables(conn)
        for stmt in policy.policies_sql(tables):
            conn.exec_driver_sql(stmt)
    return sorted(tables & policy.TABLES.keys())


def add_router(engine: Engine, store_id: str) -> tuple[str, str]:
    """Create (or reset the password of) the store's router role; returns ``(role, password)``."""
    _check_postgres(engine)
    role = policy.role_name(store_id)
    apply_policies(engine)
    password = secrets.token_urlsafe(24)
    try:
        with engine.begin() as conn:
            row = conn.execute(sa.text("SELECT mall_id FROM stores WHERE id = :s"), {"s": store_id}).first()
            if row is None:
                raise ConfigError("fleet.store", f"no store {store_id!r} in the database (run keliu db with the "
                                                 "fleet's [[stores]] first)")
            for stmt in policy.router_sql(role, store_id, policy.check_id(str(row.mall_id)), password,
                                          _tables(conn)):
                conn.exec_driver_sql(stmt)
    except sa.exc.DBAPIError as exc:
        raise ServiceError(f"creating role {role}: {exc.orig}") from exc
    return role, password


def remove_router(engine: Engine, store_id: str) -> str:
    """Drop the store's router role and its grants (its rows stay: they are the store's, not the role's)."""
    _check_postgres(engine)
    role = policy.role_name(store_id)
    with engine.begin() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first()
        conn.execute(sa.text("DELETE FROM fleet_routers WHERE role_name = :r"), {"r": role})
        if exists:
            conn.exec_driver_sql(f"DROP OWNED BY {policy.q(role)}")
            conn.exec_driver_sql(f"DROP ROLE {policy.q(role)}")
    return role


def list_routers(engine: Engine) -> list[tuple[str, str, str]]:
    _check_postgres(engine)
    with engine.connect() as conn:
        if "fleet_routers" not in _tables(conn):
            return []
        rows = conn.execute(sa.text("SELECT role_name, store_id, mall_id FROM fleet_routers ORDER BY store_id"))
        return [(r.role_name, r.store_id, r.mall_id) for r in rows]
