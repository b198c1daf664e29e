"""Tenants: operator → mall → store. Tables shared by the portal, analytics and dashboards.

The configuration's ``[[malls]]`` and ``[[stores]]`` are the source of truth; :func:`sync` (an edge) upserts them
into the database at start-up so that foreign keys and the dashboards can rely on them.
"""
from __future__ import annotations

from typing import cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, mapped_column

from keliu.config import Config
from keliu.db import Base


class Mall(Base):
    __tablename__ = "malls"
    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), default="")


class Store(Base):
    __tablename__ = "stores"
    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    mall_id: Mapped[str] = mapped_column(sa.ForeignKey("malls.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200), default="")
    timezone: Mapped[str] = mapped_column(sa.String(64), default="Asia/Shanghai")


#: the two tables as Core tables (what ``Model.__table__`` is at run time)
MALLS = cast(sa.Table, Mall.__table__)
STORES = cast(sa.Table, Store.__table__)


def sync(engine: Engine, cfg: Config) -> None:
    """Upsert the configured malls and stores. Stores removed from the config stay (their history does)."""
    malls, t = MALLS, STORES
    with engine.begin() as conn:
        for m in cfg.malls:
            row = conn.execute(sa.select(malls).where(malls.c.id == m.id)).first()
            if row is None:
                conn.execute(sa.insert(malls).values(id=m.id, name=m.name))
            else:
                conn.execute(sa.update(malls).where(malls.c.id == m.id).values(name=m.name))
        for s in cfg.stores:
            values = {"mall_id": s.mall, "name": s.name, "timezone": s.timezone}
            if conn.execute(sa.select(t.c.id).where(t.c.id == s.id)).first() is None:
                conn.execute(sa.insert(t).values(id=s.id, **values))
            else:
                conn.execute(sa.update(t).where(t.c.id == s.id).values(**values))
