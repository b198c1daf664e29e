"""The device registry the portal writes and the sensor reads: consented members and opt-outs (an edge).

The portal never hands the sensor a MAC. When a shopper consents to membership analytics, or opts out, the portal
computes ``sensor.identity.member_device_id(master, mac)`` from the MAC it sees on its own network (the master key
is ``keliu.keys.secret_bytes(var_dir, "device_hmac")``) and registers that id here:

    from sensor import consent
    from sensor.identity import member_device_id
    consent.register(engine, member_device_id(master, mac), "member")   # or "optout"
    consent.unregister(engine, device_id)                              # consent withdrawn / opt-out undone

A caller that writes the registry inside a bigger statement (the portal's one-statement login) builds it from
:func:`link_member` and :func:`withdraw`, which return SQLAlchemy constructs over :data:`registry_table`: the rules
of the registry (an opt-out wins over membership) stay here, whoever executes them.

The sensor reloads the registry every ``registry_seconds``: a member's sightings then carry the stable member id
(the portal links it to the member), an opted-out device's sightings are dropped before anything is stored.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from sensor.identity import Registry

Kind = Literal["member", "optout"]

_md = sa.MetaData()
registry_table = sa.Table(
    "sensor_device_registry", _md,
    sa.Column("device_id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("since", sa.Float, nullable=False),
)


def _value(value: Any, type_: Any) -> sa.ColumnElement[Any]:
    return value if isinstance(value, sa.ColumnElement) else sa.literal(value, type_)


def link_member(dialect: str, device_id: Any, since: Any,
                when: sa.ColumnElement[bool] | None = None) -> postgresql.Insert | sqlite.Insert:
    """``INSERT`` registering ``device_id`` as a consented member's since ``since`` (epoch seconds), unless it is
    registered already (a member stays one; an opt-out stays one). ``device_id``, ``since``: values or SQL
    expressions (bound parameters); ``when``: a condition for writing at all; ``dialect``: "postgresql" or
    "sqlite" (the ``ON CONFLICT`` clause is theirs)."""
    t = registry_table
    src = sa.select(_value(device_id, sa.String()), sa.literal("member", sa.String()), _value(since, sa.Float()))
    if when is not None:
        src = src.where(when)
    if dialect == "postgresql":
        return postgresql.insert(t).from_select(["device_id", "kind", "since"], src).on_conflict_do_nothing(
            index_elements=[t.c.device_id])
    if dialect == "sqlite":
        return sqlite.insert(t).from_select(["device_id", "kind", "since"], src).on_conflict_do_nothing(
            index_elements=[t.c.device_id])
    raise ValueError(f"dialect must be 'postgresql' or 'sqlite', not {dialect!r}")


def withdraw(device_id: Any, kind: Kind | None = None, when: sa.ColumnElement[bool] | None = None) -> sa.Delete:
    """``DELETE`` forgetting ``device_id`` (only if it is registered as ``kind``, when given: withdrawing analytics
    consent must not undo an opt-out); ``when``: a condition for deleting at all."""
    t = registry_table
    cond = t.c.device_id == _value(device_id, sa.String())
    if kind is not None:
        cond = cond & (t.c.kind == kind)
    if when is not None:
        cond = cond & when
    return sa.delete(t).where(cond)


def register(engine: Any, device_id: str, kind: Kind, now: float | None = None) -> None:
    """Record ``device_id`` as a consented member's or an opted-out device (an opt-out wins over membership).

    ``engine`` may also be a Connection: the rows are then written in the caller's transaction."""
    if kind not in ("member", "optout"):
        raise ValueError(f"kind must be 'member' or 'optout', not {kind!r}")
    t = registry_table
    with _tx(engine) as conn:
        old = conn.execute(sa.select(t.c.kind).where(t.c.device_id == device_id)).scalar()
        if old is None:
            conn.execute(sa.insert(t).values(device_id=device_id, kind=kind, since=time.time() if now is None else now))
        elif old != "optout":
            conn.execute(sa.update(t).where(t.c.device_id == device_id).values(kind=kind))


def unregister(engine: Any, device_id: str, kind: Kind | None = None) -> None:
    """Forget ``device_id`` (only if it is registered as ``kind``, when given: withdrawing analytics consent must not
    undo an opt-out)."""
    with _tx(engine) as conn:
        conn.execute(withdraw(device_id, kind))


def kind_of(engine: Any, device_id: str) -> str | None:
    with _tx(engine) as conn:
        kind = conn.execute(sa.select(registry_table.c.kind).where(registry_table.c.device_id == device_id)).scalar()
    return None if kind is None else str(kind)


@contextlib.contextmanager
def _tx(engine_or_conn: Any) -> Iterator[Any]:
    if isinstance(engine_or_conn, sa.Connection):
        yield engine_or_conn
    else:
        with engine_or_conn.begin() as conn:
            yield conn


def load(engine: Any) -> Registry:
    """The registry as the identity layer uses it."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(registry_table.c.device_id, registry_table.c.kind)).all()
    return Registry(members=frozenset(d for d, k in rows if k == "member"),
                    optouts=frozenset(d for d, k in rows if k == "optout"))
