"""The database edge shared by every component: declarative base, engine factory and migrations.

All tables hang off one :class:`Base`. Each component keeps its tables in its own module (``portal.store.models``,
``analytics.store``) and its alembic revisions in its own ``migrations/`` folder as a separate branch, so
``upgrade(engine)`` runs ``alembic upgrade heads`` over all of them. SQLite (the embedded default) and PostgreSQL
run the same code.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase

ROOT = Path(__file__).resolve().parent.parent

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that always hands back aware UTC values (SQLite stores them naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: keliu stores timezone-aware UTC only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


TS = UTCDateTime()


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine. For SQLite: create the parent folder, WAL journal, foreign keys on, a busy timeout. For
    PostgreSQL: a pool sized for a server process, no pre-ping, a 5 s connect timeout."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:":
            Path(db).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"timeout": 30})
        engine = sa.create_engine(url, **kwargs)

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            if db and db != ":memory:":
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    # PostgreSQL: a pool as large as a server process's concurrency (gunicorn's 8 threads, the sweeper), so that no
    # request opens and closes a connection of its own (an overflow connection is closed when returned); no
    # pre-ping round trip on every checkout: a connection that died is reported by its first statement, which
    # invalidates the pool (that request fails, closed; the next ones reconnect), and connections are renewed
    # hourly so none outlives a server-side idle limit; a database that does not answer fails within 5 s.
    if parsed.get_backend_name() == "postgresql":
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 10)
        kwargs.setdefault("pool_recycle", 3600)
        kwargs.setdefault("pool_pre_ping", False)
        connect_args = dict(kwargs.get("connect_args") or {})
        connect_args.setdefault("connect_timeout", 5)
        kwargs["connect_args"] = connect_args
    return sa.create_engine(url, **kwargs)


def write_first(conn: sa.Connection) -> None:
    """Make the transaction just begun on ``conn`` a writer from its first statement. On SQLite a transaction that
    reads and then writes fails at once with "database is locked" when another connection committed since its read
    began (the busy timeout does not cover that upgrade); ``BEGIN IMMEDIATE`` takes the write lock first, waiting
    for it within the busy timeout. PostgreSQL waits on its row locks anyway: nothing is sent there."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def dialect_insert(conn: sa.Connection, table: sa.Table) -> Any:
    """The dialect's INSERT, which has ``on_conflict_do_update``/``do_nothing`` on both databases keliu runs on."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    if conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)
    raise NotImplementedError(conn.dialect.name)  # pragma: no cover - only SQLite and PostgreSQL are supported


def upsert(conn: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows``, updating the non-key columns of rows whose primary key exists (natural keys)."""
    if not rows:
        return
    keys = [c.name for c in table.primary_key.columns]
    ins = dialect_insert(conn, table)
    stmt = ins.on_conflict_do_update(index_elements=keys,
                                     set_={c: ins.excluded[c] for c in rows[0] if c not in keys})
    for start in range(0, len(rows), 2000):
        conn.execute(stmt, list(rows[start:start + 2000]))


def version_locations() -> list[str]:
    """Every component's migrations folder that exists."""
    names = ["keliu", "portal", "marketing", "analytics", "sensor", "router_config", "dashboards"]
    return [str(ROOT / n / "migrations" / "versions") for n in names if (ROOT / n / "migrations" / "versions").is_dir()]


def alembic_config(engine: Engine) -> Any:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(ROOT / "keliu" / "migrations"))
    cfg.set_main_option("version_locations", " ".join(version_locations()))
    cfg.set_main_option("path_separator", "space")
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the schema up to date: ``alembic upgrade heads`` over every component's branch."""
    import logging

    from alembic import command

    # alembic logs every plugin and step at INFO; a component's own INFO logging should not show them.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    command.upgrade(alembic_config(engine), "heads")
