"""Tenants: operator → mall → store. Tables shared by the portal, analytics and dashboards.

The configuration's ``[[malls]]`` and ``[[stores]]`` are the source of truth; :func:`sync` (an edge) upserts them
into the database at start-up so that foreign keys and the dashboards can rely on them.
"""
from __future__ import annotations

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


def sync(engine: Engine, cfg: Config) -> None:
    """Upsert the configured malls and stores. Stores removed from the config stay (their history does)."""
    with engine.begin() as conn:
        for m in cfg.malls:
            row = conn.execute(sa.select(Mall.__table__).where(Mall.__table__.c.id == m.id)).first()
            if row is None:
                conn.execute(sa.insert(Mall.__table__).values(id=m.id, name=m.name))
            else:
                conn.execute(sa.update(Mall.__table__).where(Mall.__table__.c.id == m.id).values(name=m.name))
        t = Store.__table__
        for s in cfg.stores:
            values = {"mall_id": s.mall, "name": s.name, "timezone": s.timezone}
            if conn.execute(sa.select(t.c.id).where(t.c.id == s.id)).first() is None:
                conn.execute(sa.insert(t).values(id=s.id, **values))
            else:
                conn.execute(sa.update(t).where(t.c.id == s.id).values(**values))
