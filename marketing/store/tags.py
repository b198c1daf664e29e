"""Member tags (an edge: SQL): the ``member_tags`` table (revision ``marketing_0003_campfeat``) and its writers.

One row per (member, tag): :func:`set_tag` adds one (idempotent), :func:`unset_tag` removes it, :func:`tags_of`
lists a member's, :func:`known` every tag some member carries (a campaign's segment may name only those: an unknown
tag is a typo, refused at creation, marketing.store.campaign_admin). Segments read the table in SQL
(marketing.store.segments); erasing a member deletes their rows (marketing.store.erasure). The tag itself is
checked by :func:`marketing.core.tags.normalize`. Every function runs in the caller's transaction; the callers
(the console's member page, ``keliu member tag``) audit the change.
"""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from keliu import db
from keliu.db import TS, Base
from marketing.core import tags as tags_core

member_tags = sa.Table(
    "member_tags", Base.metadata,
    sa.Column("member_id", sa.ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("tag", sa.String(tags_core.MAX_LEN), primary_key=True, index=True),
    sa.Column("created_at", TS, nullable=False),
    #: the console user (or ``cli``) who set it
    sa.Column("created_by", sa.String(64), nullable=False),
)


def set_tag(conn: Connection, member_id: int, tag: str, by: str, now: datetime) -> bool:
    """Give ``member_id`` the tag (normalized); whether it is new. FieldInvalid for a bad tag."""
    t = member_tags
    stmt = db.dialect_insert(conn, t).values(member_id=member_id, tag=tags_core.normalize(tag), created_at=now,
                                             created_by=by[:64])
    return conn.execute(stmt.on_conflict_do_nothing(index_elements=[t.c.member_id, t.c.tag])
                        .returning(t.c.tag)).first() is not None


def unset_tag(conn: Connection, member_id: int, tag: str) -> bool:
    """Take the tag from ``member_id``; whether they had it."""
    t = member_tags
    return bool(conn.execute(sa.delete(t).where(t.c.member_id == member_id,
                                                t.c.tag == tags_core.normalize(tag))).rowcount)


def tags_of(conn: Connection, member_id: int) -> list[str]:
    t = member_tags
    return list(conn.execute(sa.select(t.c.tag).where(t.c.member_id == member_id).order_by(t.c.tag)).scalars())


def known(conn: Connection) -> frozenset[str]:
    """Every tag some member carries."""
    return frozenset(conn.execute(sa.select(member_tags.c.tag).distinct()).scalars())


def erase_member(conn: Connection, member_id: int) -> int:
    return int(conn.execute(sa.delete(member_tags).where(member_tags.c.member_id == member_id)).rowcount)
