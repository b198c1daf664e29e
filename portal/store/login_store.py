"""The two executors of a :class:`portal.core.login_plan.LoginPlan` (an edge: SQL in the caller's transaction).

- :func:`execute_portable`: statement by statement, on SQLite and PostgreSQL;
- :func:`execute_pg`: PostgreSQL only, the whole plan as one statement (one round trip instead of about ten): data-
  modifying CTEs built with SQLAlchemy Core from the same Table objects, every later write conditional on the proof
  being used up.

Both store exactly the same rows (``tests/portal/test_login_store.py`` compares every column of every table, by
reflection, for SMS and WeChat logins) and return the same :class:`portal.core.login_plan.Authorized`, or ``None`` when the
proof was already used (nothing is then stored). :func:`execute` picks one by the connection's dialect. The sensor's
registry is written through :mod:`sensor.consent`'s statement builders in both.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection

from keliu import db
from keliu.accesslog import chain as al_chain
from keliu.accesslog import store as accesslog
from keliu.db import TS
from portal.core.binding import Bound
from portal.core.login_plan import Authorized, LoginPlan, PhoneMember, UseCode
from portal.store import members as pm
from portal.store.models import (
    consents,
    devices,
    landing_urls,
    logins,
    member_registry,
    members,
    portal_sessions,
    sms_codes,
)
from portal.wechat import models as wm
from portal.wechat import store as wechat_store
from sensor import consent

# --- statement by statement -----------------------------------------------------------------------------------


def _use_code(conn: Connection, proof: UseCode, now: datetime) -> bool:
    return conn.execute(sa.update(sms_codes).where(
        sms_codes.c.id == proof.code_id, sms_codes.c.used_at.is_(None), sms_codes.c.tries < proof.max_tries)
        .values(used_at=now)).rowcount == 1


def _link_registry(conn: Connection, plan: LoginPlan, member_id: int) -> None:
    """The member's link to the stable sensor id its consent (c) registered (``member_registry``), kept after a
    withdrawal: deleting the member erases the registry entry and the sightings by it. Both executors run it as
    a statement of its own, only for a login that links (the one PostgreSQL statement would otherwise outgrow
    psycopg's query cache, see ``_pg_statement``)."""
    reg = plan.registry
    if reg is not None and reg.link:
        conn.execute(db.dialect_insert(conn, member_registry).values(
            registry_id=reg.device_id, member_id=member_id, since=plan.now).on_conflict_do_nothing())


def execute_portable(conn: Connection, plan: LoginPlan) -> Authorized | None:
    """Store the plan statement by statement; ``None`` (nothing stored) if its proof was used before."""
    now = plan.now
    if isinstance(plan.proof, UseCode):
        if not _use_code(conn, plan.proof, now):
            return None
    elif not wm.consume_nonce(conn, plan.proof.nonce, plan.proof.store_id, now, plan.proof.expires_at):
        return None
    if isinstance(plan.member, PhoneMember):
        member_id = pm.upsert_member(conn, store_id=plan.store_id, now=now, phone_e164=plan.member.phone_e164)
    else:
        member_id = wechat_store.member_for_wifi(conn, app_id=plan.member.app_id, openid=plan.member.openid,
                                                 store_id=plan.store_id, now=now)
    conn.execute(sa.insert(consents), [
        {"member_id": member_id, "kind": c.kind, "version": c.version, "granted": c.granted, "ts": now,
         "store_id": plan.store_id, "lang": plan.lang} for c in plan.consents])
    reg = plan.registry
    if reg is not None:
        conn.execute(consent.link_member(conn.dialect.name, reg.device_id, reg.since) if reg.link
                     else consent.withdraw(reg.device_id, "member"))
        _link_registry(conn, plan, member_id)
    conn.execute(sa.insert(logins).values(ts=now, store_id=plan.store_id, member_id=member_id,
                                          device_id=plan.device_id, method=plan.method, ip=plan.ip))
    pm.touch_device(conn, device_id=plan.device_id, member_id=member_id, store_id=plan.store_id, now=now,
                    reauth_until=plan.reauth_until, set_reauth=True, bound=Bound(plan.bound_ip, plan.lease_tag))
    conn.execute(sa.update(portal_sessions).where(portal_sessions.c.device_id == plan.device_id,
                                                  portal_sessions.c.ended_at.is_(None))
                 .values(ended_at=now, end_reason="replaced"))
    session_id = conn.execute(sa.insert(portal_sessions).values(
        member_id=member_id, device_id=plan.device_id, store_id=plan.store_id, ip=plan.ip, method=plan.method,
        started_at=now, until=plan.until, last_activity=now, bytes_up=0, bytes_down=0)
        .returning(portal_sessions.c.id)).scalar_one()
    url = conn.execute(sa.delete(landing_urls).where(landing_urls.c.device_id == plan.device_id)
                       .returning(landing_urls.c.url)).scalar()
    accesslog.append(conn, _access_record(plan, int(session_id), member_id))
    return Authorized(int(session_id), member_id, plan.until, None if url is None else str(url))


def _access_record(plan: LoginPlan, session_id: int | None, member_id: int | None) -> dict[str, Any]:
    """The login's record in the access log (MPS Order 82): a phone login by its number, a WeChat login by its
    openid (WeChat's own real-name registration stands behind it)."""
    if isinstance(plan.member, PhoneMember):
        phone, account = plan.member.phone_e164, None
    else:
        phone, account = None, f"wx:{plan.member.openid}"
    return accesslog.opening_record("login", plan.now, plan.store_id, session_id, member_id, phone, account,
                                    plan.mac, plan.ip, plan.nat, plan.method)


# --- PostgreSQL: one statement --------------------------------------------------------------------------------


def _p(name: str, type_: Any = None) -> sa.BindParameter[Any]:
    """A parameter of the one statement. Prefixed: a parameter named like a column would become a ``SET`` clause
    of the CTEs' ``UPDATE`` statements (SQLAlchemy takes execution parameters named like columns as values)."""
    return sa.bindparam("p_" + name, type_=type_ if type_ is not None else sa.String())


def _row(*cols: Any) -> sa.Select[Any]:
    """A ``SELECT`` feeding an ``INSERT``: its columns need no labels (shorter SQL, see ``v`` below)."""
    return sa.select(*cols).set_label_style(sa.SelectLabelStyle.LABEL_STYLE_NONE)


def _pg_statement(proof: str, member: str, n_consents: int) -> sa.Select[Any]:
    """The one statement for a kind of proof ("code", "nonce"), a kind of member ("phone", "wechat") and so many
    consent rows (built and compiled once: :func:`_compiled`). Everything the plan says comes in as bound
    parameters."""
    now = _p("now", TS)
    store, device, reauth_until = _p("store"), _p("device"), _p("reauth_until", TS)
    # the proof used up, or nothing at all
    if proof == "code":
        used = (sa.update(sms_codes).where(sms_codes.c.id == _p("code_id", sa.Integer()),
                                           sms_codes.c.used_at.is_(None),
                                           sms_codes.c.tries < _p("max_tries", sa.Integer()))
                .values(used_at=now).returning(sms_codes.c.id).cte("used"))
    else:
        used = (pg_insert(wm.extend_used).values(nonce=_p("nonce"), store_id=_p("nonce_store"), used_at=now,
                                                 expires_at=_p("nonce_expires", TS))
                .on_conflict_do_nothing(index_elements=[wm.extend_used.c.nonce])
                .returning(wm.extend_used.c.nonce).cte("used"))
    go = sa.select(*used.c).exists()
    # the plan's values, once, in a row only if the proof was used up: every write below selects or joins it (so
    # writes nothing without it), and the statement stays under the 4 KB up to which psycopg caches a query's
    # conversion (an SMS login's does; a WeChat login's is longer and pays about 0.3 ms). Rows to update or
    # delete are found by the device id as a parameter, not as ``v.device``: the planner picks the device's
    # index only for a value it can see (with ``v.device`` it walked every open session).
    v = sa.select(now.label("now"), store.label("store"), device.label("device"), _p("ip").label("ip"),
                  _p("method").label("method"), _p("lang").label("lang"), _p("until", TS).label("until"),
                  reauth_until.label("reauth_until"), _p("bound_ip").label("bound_ip"),
                  _p("lease_tag").label("lease_tag"), sa.literal(0).label("zero"),
                  sa.literal("").label("empty")).where(go).cte("v")
    ctes: list[sa.CTE] = []
    # the member, as members.upsert_member (and, for WeChat, wechat_store.member_for_wifi)
    member_cols = ["phone_e164", "wechat_openid", "wechat_unionid", "created_at", "first_store_id", "last_seen_at"]
    if member == "phone":
        upsert = pg_insert(members).from_select(member_cols, _row(
            _p("phone"), sa.null(), sa.null(), v.c.now, v.c.store, v.c.now))
        member_cte = upsert.on_conflict_do_update(
            index_elements=[members.c.phone_e164], set_={"last_seen_at": upsert.excluded.last_seen_at}
        ).returning(members.c.id).cte("member")
    else:
        ident = wm.identities
        app_id, openid = _p("app_id"), _p("openid")
        bound = (sa.select(ident.c.member_id).where(ident.c.app_id == app_id, ident.c.openid == openid,
                                                    ident.c.member_id.is_not(None), go).cte("bound"))
        created = pg_insert(members).from_select(member_cols, _row(
            sa.null(), openid, sa.null(), v.c.now, v.c.store, v.c.now).where(~sa.select(*bound.c).exists()))
        created_cte = created.on_conflict_do_update(
            index_elements=[members.c.wechat_openid], set_={"last_seen_at": created.excluded.last_seen_at}
        ).returning(members.c.id).cte("created")
        member_cte = sa.union_all(sa.select(bound.c.member_id.label("id")),
                                  sa.select(created_cte.c.id)).cte("member")
        # the identity, created or refreshed, and bound to the member unless it was bound already
        bind = pg_insert(ident).from_select(
            ["app_id", "openid", "member_id", "created_at", "updated_at", "nickname", "headimgurl"],
            _row(app_id, openid, member_cte.c.id, v.c.now, v.c.now, v.c.empty, v.c.empty)
            .select_from(member_cte.join(v, sa.true())), include_defaults=False)
        ctes.append(bind.on_conflict_do_update(
            index_elements=[ident.c.app_id, ident.c.openid],
            set_={"updated_at": bind.excluded.updated_at,
                  "member_id": sa.func.coalesce(ident.c.member_id, bind.excluded.member_id)}).cte("identity"))
    member_id = member_cte.c.id
    member_v = member_cte.join(v, sa.true())
    # consents, appended
    decided = sa.values(sa.column("kind", sa.String()), sa.column("version", sa.String()),
                        sa.column("granted", sa.Boolean()), name="c").data(
        [(_p(f"consent{i}_kind"), _p(f"consent{i}_version"), _p(f"consent{i}_granted", sa.Boolean()))
         for i in range(n_consents)])
    ctes.append(sa.insert(consents).from_select(
        ["member_id", "kind", "version", "granted", "ts", "store_id", "lang"],
        _row(member_id, decided.c.kind, decided.c.version, decided.c.granted, v.c.now, v.c.store, v.c.lang)
        .select_from(member_v.join(decided, sa.true()))).cte("consent"))
    # the sensor's registry: consent (c) linked, or a member's registration withdrawn
    reg_id = _p("reg_id")
    ctes.append(consent.link_member("postgresql", reg_id, _p("reg_since", sa.Float()),
                                    when=sa.and_(go, _p("reg_link", sa.Boolean()))).cte("registered"))
    ctes.append(consent.withdraw(reg_id, "member", when=sa.and_(go, _p("reg_unlink", sa.Boolean())))
                .cte("withdrawn"))
    ctes.append(sa.insert(logins).from_select(
        ["ts", "store_id", "member_id", "device_id", "method", "ip"],
        _row(v.c.now, v.c.store, member_id, v.c.device, v.c.method, v.c.ip).select_from(member_v)
    ).cte("login"))
    # the re-authorization choice is per device, whichever store it was made in (this store's row: below; one
    # statement must not modify a row twice)
    ctes.append(sa.update(devices).where(devices.c.device_id == device, devices.c.store_id != v.c.store)
                .values(reauth_until=v.c.reauth_until).cte("other_stores"))
    dev = pg_insert(devices).from_select(
        ["device_id", "member_id", "store_id", "first_seen", "last_seen", "reauth_until", "bound_ip", "lease_tag"],
        _row(v.c.device, member_id, v.c.store, v.c.now, v.c.now, v.c.reauth_until, v.c.bound_ip, v.c.lease_tag)
        .select_from(member_v))
    ctes.append(dev.on_conflict_do_update(
        index_elements=[devices.c.device_id, devices.c.store_id],
        set_={c: dev.excluded[c] for c in ("last_seen", "member_id", "reauth_until", "bound_ip", "lease_tag")}
    ).cte("device"))
    ctes.append(sa.update(portal_sessions).where(portal_sessions.c.device_id == device,
                                                 portal_sessions.c.ended_at.is_(None), v.c.device.is_not(None))
                .values(ended_at=v.c.now, end_reason="replaced").cte("replaced"))
    opened = sa.insert(portal_sessions).from_select(
        ["member_id", "device_id", "store_id", "ip", "method", "started_at", "until", "last_activity", "bytes_up",
         "bytes_down"],
        _row(member_id, v.c.device, v.c.store, v.c.ip, v.c.method, v.c.now, v.c.until, v.c.now, v.c.zero, v.c.zero)
        .select_from(member_v)
    ).returning(portal_sessions.c.id, portal_sessions.c.member_id).cte("opened")
    landing = (sa.delete(landing_urls).where(landing_urls.c.device_id == device, v.c.device.is_not(None))
               .returning(landing_urls.c.url).cte("landing"))
    # the access log's record, chained in this statement (keliu.accesslog.store.login_ctes)
    ctes += accesslog.login_ctes(opened, {
        "ts": v.c.now, "event": sa.literal_column("'login'"), "store_id": v.c.store,
        "phone": _p("phone") if member == "phone" else sa.null(),
        "account": sa.null() if member == "phone" else _p("account"),
        "mac": _p("mac"), "ip": v.c.ip, "public_ip": _p("pub"), "port_lo": _p("plo", sa.Integer()),
        "port_hi": _p("phi", sa.Integer()), "started_at": v.c.now, "ended_at": sa.null(), "detail": v.c.method,
    }, _p("body"), also=v)
    return (sa.select(opened.c.id, opened.c.member_id, sa.select(landing.c.url).scalar_subquery().label("url"))
            .add_cte(*ctes))


def _pg_params(plan: LoginPlan) -> dict[str, Any]:
    params: dict[str, Any] = {
        "now": plan.now, "store": plan.store_id, "device": plan.device_id, "ip": plan.ip, "method": plan.method,
        "lang": plan.lang, "until": plan.until, "reauth_until": plan.reauth_until, "bound_ip": plan.bound_ip,
        "lease_tag": plan.lease_tag,
        "reg_id": None if plan.registry is None else plan.registry.device_id,
        "reg_since": None if plan.registry is None else plan.registry.since,
        "reg_link": plan.registry is not None and plan.registry.link,
        "reg_unlink": plan.registry is not None and not plan.registry.link,
        "mac": plan.mac, "pub": plan.nat.public_ip, "plo": plan.nat.port_lo, "phi": plan.nat.port_hi,
        "body": al_chain.body(_access_record(plan, None, None)),
    }
    if isinstance(plan.proof, UseCode):
        params.update(code_id=plan.proof.code_id, max_tries=plan.proof.max_tries)
    else:
        params.update(nonce=plan.proof.nonce, nonce_store=plan.proof.store_id, nonce_expires=plan.proof.expires_at)
    if isinstance(plan.member, PhoneMember):
        params["phone"] = plan.member.phone_e164
    else:
        params.update(app_id=plan.member.app_id, openid=plan.member.openid,
                      account=f"wx:{plan.member.openid}")
    for i, c in enumerate(plan.consents):
        params.update({f"consent{i}_kind": c.kind, f"consent{i}_version": c.version,
                       f"consent{i}_granted": c.granted})
    return {"p_" + k: v for k, v in params.items()}


#: the one statement compiled, per kind and database dialect. SQLAlchemy 2.0 does not cache a statement that
#: holds PostgreSQL's ``INSERT … ON CONFLICT`` (``postgresql.Insert`` sets ``inherit_cache = False``): it would
#: compile this one on every login, about 5 ms, three times the cost of running it. Executing the Compiled object
#: keeps SQLAlchemy's parameter and result processing.
_COMPILED: dict[tuple[str, str, int, sa.Dialect], sa.Compiled] = {}


def _compiled(conn: Connection, plan: LoginPlan) -> sa.Compiled:
    key = ("code" if isinstance(plan.proof, UseCode) else "nonce",
           "phone" if isinstance(plan.member, PhoneMember) else "wechat", len(plan.consents), conn.dialect)
    compiled = _COMPILED.get(key)
    if compiled is None:
        compiled = _COMPILED[key] = _pg_statement(*key[:3]).compile(dialect=conn.dialect)
    return compiled


def execute_pg(conn: Connection, plan: LoginPlan) -> Authorized | None:
    """Store the plan in one PostgreSQL statement; ``None`` (nothing stored) if its proof was used before.

    The access log's chain head is locked first, in a statement of its own: inside the login statement PostgreSQL
    may lock it after the device's session row or before, and a logout locks the head first (the lock order of
    :mod:`keliu.accesslog.store`)."""
    accesslog.lock_head(conn)
    row = conn.execute(_compiled(conn, plan), _pg_params(plan)).first()  # type: ignore[call-overload]
    if row is None:
        return None
    _link_registry(conn, plan, int(row.member_id))
    return Authorized(int(row.id), int(row.member_id), plan.until, None if row.url is None else str(row.url))


def execute(conn: Connection, plan: LoginPlan) -> Authorized | None:
    """The plan stored by the fastest executor the database has."""
    return execute_pg(conn, plan) if conn.dialect.name == "postgresql" else execute_portable(conn, plan)
