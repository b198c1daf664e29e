"""Authorizations: open, end, extend, sweep and reconcile sessions, and tell the Gate (an edge: SQL + Gate).

The order is always *database first, then Gate*: a session row is committed before ``AllowClient`` and ended
before ``RevokeClient``, so the table stays the source of truth and :func:`portal.core.sessions.sweep` can tell an
orphan in the Gate from a login in progress. Decisions are taken by :mod:`portal.core.sessions` (pure).

Used by every login method (SMS in ``portal.web.sms``, WeChat in ``portal.wechat.views``): :func:`complete_login`,
which plans the login (:mod:`portal.core.login_plan`) and stores the plan (:mod:`portal.store.login_store`).

A login binds the device to the address it logged in from (:mod:`portal.core.binding`): :func:`heal` re-allows only
that (MAC . IP) pair, :func:`reauthorize` only the same pair on the same DHCP lease. A refusal is logged with the
device id (an HMAC, never the MAC) and the addresses.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from keliu.accesslog import store as accesslog
from keliu.accesslog.chain import Nat
from keliu.gate import AllowClient, RevokeClient
from portal.core import binding, sessions
from portal.core.binding import Bound
from portal.core.i18n import CONSENT_VERSIONS
from portal.core.login_plan import (
    Authorized,
    Choices,
    Method,
    PhoneMember,
    UseCode,
    UseNonce,
    WechatMember,
    plan_login,
)
from portal.core.sessions import Active, EndSession, TouchSession
from portal.edges import leases
from portal.edges.clients import Client
from portal.store import limits, login_store, members, privacy
from portal.store.models import devices, landing_urls, portal_sessions
from portal.store.models import members as members_table
from router_config import portblock

if TYPE_CHECKING:
    from portal.services import Services

log = logging.getLogger("keliu.portal")


def open_session(conn: Connection, svc: Services, client: Client, member_id: int, method: str,
                 now: datetime) -> tuple[int, datetime]:
    """Insert a session (ending any open one of this device); returns (id, until). Caller commits, then allows."""
    conn.execute(sa.update(portal_sessions).where(portal_sessions.c.device_id == client.device_id,
                                                  portal_sessions.c.ended_at.is_(None))
                 .values(ended_at=now, end_reason="replaced"))
    until = sessions.grant_until(svc.policy, now)
    res = conn.execute(sa.insert(portal_sessions).values(
        member_id=member_id, device_id=client.device_id, store_id=svc.store_id, ip=client.ip, method=method,
        started_at=now, until=until, last_activity=now, bytes_up=0, bytes_down=0))
    return int(res.inserted_primary_key[0]), until  # type: ignore[index]


def complete_login(conn: Connection, svc: Services, client: Client, proof: UseCode | UseNonce,
                   member: PhoneMember | WechatMember, method: Method, choices: Choices, lang: str,
                   now: datetime) -> Authorized | None:
    """Everything a successful login stores, in the caller's transaction: its plan (:func:`plan_login`: the proof
    used up, member, consents, sensor registry, login record, device with its binding, session, the landing URL
    taken out), stored by the database's executor (:mod:`portal.store.login_store`). ``None`` (nothing stored) when the
    proof was used before. Call :func:`allow` after the transaction commits."""
    bound = bound_at_login(svc, client, now)
    plan = plan_login(proof=proof, member=member, method=method, store_id=svc.store_id, now=now,
                      device_id=client.device_id, ip=client.ip, lang=lang, choices=choices,
                      versions=CONSENT_VERSIONS,
                      registry_id=privacy.registry_id(svc, client.mac) if client.mac else None,
                      bound_ip=bound.ip, lease_tag=bound.lease_tag, policy=svc.policy, mac=client.mac or None,
                      nat=nat_of(svc, client.ip))
    return login_store.execute(conn, plan)


def nat_of(svc: Services, ip: str) -> Nat:
    """Where the access log says ``ip``'s connections leave: the configured public address and, with
    ``[router] nat_log = "portblock"``, the address's fixed block of source ports (RFC 7422)."""
    public = svc.cfg.accesslog.public_ip or None
    router = svc.cfg.router
    found = portblock.block(router.lan_cidr, ip) if router.nat_log == "portblock" else None
    return Nat(public, None, None) if found is None else Nat(public, found[0], found[1])


#: the columns of a session row its end's access record falls back on (a session older than the access log)
_ENDED = (portal_sessions.c.id, portal_sessions.c.store_id, portal_sessions.c.member_id, portal_sessions.c.ip,
          portal_sessions.c.started_at)


def log_ended(conn: Connection, rows: Sequence[Any], event: str, now: datetime) -> None:
    """The access log's record of each ended session (``rows``: :data:`_ENDED`), after every session update of the
    transaction, which took the chain head first (:func:`keliu.accesslog.store.lock_head`: the lock order of every
    session writer, the login statement's too, so that a logout and a login of one device never deadlock)."""
    for r in rows:
        accesslog.ended(conn, event=event, ts=now, session_id=r.id, store_id=r.store_id, member_id=r.member_id,
                        ip=r.ip, started_at=r.started_at)


def bound_at_login(svc: Services, client: Client, now: datetime) -> Bound:
    """The binding a login stores: its address and, if the DHCP lease of that address is the MAC's, its tag. An
    unconfirmed lease does not stop the login (the SMS or WeChat proof authorizes it); it only rules out seamless
    re-authorization until the next login."""
    tag = binding.tag_at_login(leases.read(svc.leases), client.mac, client.ip, svc.keys.device, now.timestamp())
    if tag is None and svc.leases is not None:
        log.warning("login of device %s at %s: no DHCP lease of its MAC on that address; it will not be "
                    "re-authorized without SMS", client.device_id, client.ip)
    return Bound(client.ip, tag)


def allow(svc: Services, client: Client, until: datetime) -> None:
    svc.captive_memo.pop(client.device_id, None)
    svc.gate.execute(sessions.allow(client.mac, client.ip, until))


def _lookup_statement() -> sa.Select[tuple[datetime | None, str | None, int | None]]:
    device = sa.bindparam("device_id", type_=sa.String)
    now = sa.bindparam("now", type_=portal_sessions.c.until.type)

    def open_session(col: sa.Column[Any]) -> sa.ScalarSelect[Any]:
        return (sa.select(col).where(
            portal_sessions.c.device_id == device, portal_sessions.c.ended_at.is_(None),
            portal_sessions.c.until > now).order_by(portal_sessions.c.id.desc()).limit(1).scalar_subquery())

    member = (sa.select(devices.c.member_id).where(
        devices.c.device_id == device, devices.c.member_id.is_not(None), devices.c.reauth_until > now)
        .order_by(devices.c.last_seen.desc()).limit(1).scalar_subquery())
    return sa.select(open_session(portal_sessions.c.until), open_session(portal_sessions.c.ip), member)


#: built once: building a statement and its cache key cost more than running it on the probe path
_LOOKUP = _lookup_statement()


@dataclass(frozen=True)
class Lookup:
    """What the probe path knows of a device after one round trip."""

    #: end of the device's open session, and the address it was opened from
    until: datetime | None
    ip: str | None
    #: the member the device may be re-authorized for
    reauth_member: int | None


def lookup(conn: Connection, device_id: str, now: datetime) -> Lookup:
    """The device's open session and re-authorization: one round trip, for the probe path."""
    row = conn.execute(_LOOKUP, {"device_id": device_id, "now": now}).one()
    return Lookup(row[0], None if row[1] is None else str(row[1]), None if row[2] is None else int(row[2]))


def active_session(conn: Connection, device_id: str, now: datetime,
                   ip: str | None = None) -> sa.Row[tuple[object, ...]] | None:
    """The device's open session; with ``ip``, only if it was opened from that address (a device with the same
    MAC at another address is not the one that logged in)."""
    row = conn.execute(sa.select(portal_sessions).where(
        portal_sessions.c.device_id == device_id, portal_sessions.c.ended_at.is_(None),
        portal_sessions.c.until > now).order_by(portal_sessions.c.id.desc()).limit(1)).first()
    return None if row is None or (ip is not None and row.ip != ip) else row


def reauthorize(svc: Services, client: Client, now: datetime) -> Authorized | None:
    """Seamless re-authorization (无感认证) of a returning member's device, if they agreed to it."""
    with svc.engine.begin() as conn:
        member_id = members.reauth_member(conn, client.device_id, now)
        if member_id is None:
            return None
        bound = members.bound_of(conn, client.device_id, svc.store_id)
        refused = binding.reauth_refusal(bound, client.mac, client.ip, leases.read(svc.leases), svc.keys.device,
                                         now.timestamp())
        if refused is not None:
            log.warning("reauth refused: device %s at %s (bound to %s): %s", client.device_id, client.ip,
                        bound.ip if bound is not None else "-", refused)
            return None
        accesslog.lock_head(conn)  # before the device and session rows: the lock order (keliu.accesslog.store)
        members.record_login(conn, member_id=member_id, store_id=svc.store_id, device_id=client.device_id,
                             method="reauth", ip=client.ip, now=now)
        members.touch_device(conn, device_id=client.device_id, member_id=member_id, store_id=svc.store_id, now=now)
        session_id, until = open_session(conn, svc, client, member_id, "reauth", now)
        landing = take_landing(conn, client.device_id)
        m = conn.execute(sa.select(members_table.c.phone_e164, members_table.c.wechat_openid)
                         .where(members_table.c.id == member_id)).one()
        accesslog.append(conn, accesslog.opening_record(
            "reauth", now, svc.store_id, session_id, member_id, m.phone_e164,
            None if m.phone_e164 is not None or m.wechat_openid is None else f"wx:{m.wechat_openid}",
            client.mac or None, client.ip, nat_of(svc, client.ip), "reauth"))
    allow(svc, client, until)
    log.info("reauth device %s session %s", client.device_id, session_id)
    return Authorized(session_id, member_id, until, landing)


def heal(svc: Services, client: Client, until: datetime, session_ip: str, now: datetime) -> bool:
    """An authorized device reached the portal: re-allow it if the Gate lost it (reboot). False: it is captive.

    Only the (MAC . IP) pair its session was opened from, and only while the DHCP lease of that address is the
    MAC's (:func:`portal.core.binding.heal_refusal`): the same MAC from another address is a clone, or a phone on a new
    lease, which logs in again. If the Gate holds the pair, the request came over a connection DNATed before the
    login (a browser's kept-alive or preconnected socket): allowing again would rewrite the element and, for a
    moment, send the client's new connections to the portal too, so nothing is done (the answer closes that
    connection)."""
    same_ip = client.ip == session_ip
    if same_ip and any(c.mac == client.mac and c.ip == client.ip for c in svc.gate.clients()):
        return True
    # the lease file is read only for the right address: a clone's probe storm costs no file read
    known = leases.read(svc.leases) if same_ip else binding.NO_LEASE_FILE
    refused = binding.heal_refusal(session_ip, client.mac, client.ip, known, now.timestamp())
    if refused is not None:
        log.warning("heal refused: device %s at %s (session at %s): %s", client.device_id, client.ip, session_ip,
                    refused)
        return False
    allow(svc, client, until)
    return True


def end_device(svc: Services, client: Client, reason: str, now: datetime) -> bool:
    """Logout: end the device's open session, then revoke it (cutting open connections). Not from another address
    than the session's: a device that cloned the MAC would cut the phone that logged in (and withdraw its
    re-authorization)."""
    with svc.engine.begin() as conn:
        accesslog.lock_head(conn)  # first: the lock order (keliu.accesslog.store)
        elsewhere = active_session(conn, client.device_id, now)
        if elsewhere is not None and elsewhere.ip != client.ip:
            log.warning("%s refused: device %s at %s (session at %s): other_ip", reason, client.device_id, client.ip,
                        elsewhere.ip)
            return False
        ended = conn.execute(sa.update(portal_sessions).where(portal_sessions.c.device_id == client.device_id,
                                                              portal_sessions.c.ended_at.is_(None))
                             .values(ended_at=now, end_reason=reason).returning(*_ENDED)).all()
        n = len(ended)
        if reason == "logout":
            # logging out also withdraws seamless re-authorization on this device
            members.touch_device(conn, device_id=client.device_id, member_id=None, store_id=svc.store_id, now=now,
                                 reauth_until=None, set_reauth=True)
        log_ended(conn, ended, reason, now)
    svc.gate.execute(RevokeClient(client.mac))
    return n > 0


def _gate_client(svc: Services, device_id: str) -> tuple[str, str] | None:
    for c in svc.gate.clients():
        if svc.device_of(c.mac) == device_id:
            return c.mac, c.ip
    return None


def kick(svc: Services, session_id: int, now: datetime, reason: str = "kick") -> bool:
    with svc.engine.begin() as conn:
        row = conn.execute(sa.select(portal_sessions.c.device_id).where(
            portal_sessions.c.id == session_id, portal_sessions.c.ended_at.is_(None))).first()
        if row is None:
            return False
        accesslog.lock_head(conn)  # before the session row: the lock order (keliu.accesslog.store)
        ended = conn.execute(sa.update(portal_sessions).where(portal_sessions.c.id == session_id)
                             .values(ended_at=now, end_reason=reason).returning(*_ENDED)).all()
        log_ended(conn, ended, reason, now)
    found = _gate_client(svc, row.device_id)
    if found is not None:
        svc.gate.execute(RevokeClient(found[0]))
    log.info("kicked session %s", session_id)
    return True


def extend(svc: Services, session_id: int, minutes: int, now: datetime) -> datetime | None:
    with svc.engine.begin() as conn:
        row = conn.execute(sa.select(portal_sessions).where(
            portal_sessions.c.id == session_id, portal_sessions.c.ended_at.is_(None))).first()
        if row is None:
            return None
        accesslog.lock_head(conn)  # before the session row: the lock order (keliu.accesslog.store)
        until = sessions.extend(row.until, now, minutes, svc.policy)
        conn.execute(sa.update(portal_sessions).where(portal_sessions.c.id == session_id)
                     .values(until=until, last_activity=now))
        accesslog.ended(conn, event="extend", ts=now, session_id=row.id, store_id=row.store_id,
                        member_id=row.member_id, ip=row.ip, started_at=row.started_at)
    found = _gate_client(svc, row.device_id)
    if found is not None:
        svc.gate.execute(AllowClient(found[0], found[1], until.timestamp()))
    return until


def _active(conn: Connection) -> list[Active]:
    rows = conn.execute(sa.select(portal_sessions).where(portal_sessions.c.ended_at.is_(None))).all()
    return [Active(r.id, r.device_id, r.ip, r.until, r.last_activity, r.bytes_up, r.bytes_down) for r in rows]


def sweep(svc: Services, now: datetime) -> list[object]:
    """End expired and idle sessions and revoke orphans in the Gate. Run periodically by the server."""
    gate_clients = svc.gate.clients()  # before the table: see sessions.sweep
    with svc.engine.begin() as conn:
        decisions = sessions.sweep(_active(conn), gate_clients, svc.device_of, now, svc.policy)
        if any(isinstance(d, EndSession) for d in decisions):
            accesslog.lock_head(conn)  # before the session rows: the lock order (keliu.accesslog.store)
        ended: list[tuple[str, Sequence[Any]]] = []
        for d in decisions:
            if isinstance(d, EndSession):
                ended.append((d.reason, conn.execute(
                    sa.update(portal_sessions).where(portal_sessions.c.id == d.session_id,
                                                     portal_sessions.c.ended_at.is_(None))
                    .values(ended_at=now, end_reason=d.reason).returning(*_ENDED)).all()))
            elif isinstance(d, TouchSession):
                conn.execute(sa.update(portal_sessions).where(portal_sessions.c.id == d.session_id)
                             .values(last_activity=d.last_activity, bytes_up=d.bytes_up, bytes_down=d.bytes_down))

        limits.prune(conn, now)
        for reason, rows in ended:
            log_ended(conn, rows, reason, now)
    for d in decisions:
        if isinstance(d, RevokeClient):
            svc.gate.execute(d)
    return list(decisions)


def reconcile(svc: Services, now: datetime) -> list[AllowClient]:
    """At start-up: make the Gate hold exactly the clients that have an open session."""
    gate_clients = svc.gate.clients()
    with svc.engine.begin() as conn:
        accesslog.lock_head(conn)  # first: the lock order (keliu.accesslog.store)
        expired = conn.execute(sa.update(portal_sessions).where(portal_sessions.c.ended_at.is_(None),
                                                                portal_sessions.c.until <= now)
                               .values(ended_at=now, end_reason="expired").returning(*_ENDED)).all()
        active = _active(conn)
        log_ended(conn, expired, "expired", now)
    allowed = sessions.reconcile(active, gate_clients, svc.device_of, now)
    svc.gate.reconcile(allowed)
    return allowed


# --- landing URLs ---------------------------------------------------------------------------------------------

LANDING_KEEP = timedelta(minutes=10)


def remember_landing(svc: Services, device_id: str, url: str, now: datetime) -> None:
    """Keep the first URL a captive client asked for (a later one replaces it after 10 minutes)."""
    with svc.engine.begin() as conn:
        row = conn.execute(sa.select(landing_urls.c.ts).where(landing_urls.c.device_id == device_id)).first()
        if row is None:
            try:
                with conn.begin_nested():
                    conn.execute(sa.insert(landing_urls).values(device_id=device_id, url=url, ts=now))
            except sa.exc.IntegrityError:
                pass  # a concurrent request of the same client stored its first URL
        elif now - row.ts > LANDING_KEEP:
            conn.execute(sa.update(landing_urls).where(landing_urls.c.device_id == device_id)
                         .values(url=url, ts=now))


def take_landing(conn: Connection, device_id: str) -> str | None:
    row = conn.execute(sa.delete(landing_urls).where(landing_urls.c.device_id == device_id)
                       .returning(landing_urls.c.url)).first()
    return None if row is None else str(row.url)
