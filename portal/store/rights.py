"""A member's rights under PIPL arts. 44–47 (an edge: SQL): see their data, correct it, withdraw consents, be
deleted. Used by the member's own page (``portal.web.member_rights``), the admin (``portal.web.member_admin``) and
``keliu member`` (``portal.member_cli``); every function takes an open connection in the caller's transaction.

Deletion is a list of erasers, one per component (:class:`Component`): each forgets what its tables hold about one
member, in one transaction, before the portal's own (:data:`PORTAL`, last: it deletes the member row the others
refer to). The composition roots assemble the list (``portal.app.member_components``): the WeChat tables' eraser
lives in the WeChat layer, marketing's (``marketing.store.erase_member``) in marketing. Exporters are listed the
same way.

What deletion keeps: the access log the law requires (MPS Order 82, CSL art. 21: phone, MAC, addresses, times) is
not touched here; it stays until its retention ends and is then purged (docs/PRIVACY.md). The staff audit trail
keeps "member #17 deleted by …" (an id, no phone). An opt-out in the sensor registry stays: it is the phone's, not
the member's, and dropping it would make the sensor count the phone again.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from analytics.store import connected_visits, device_days, visits
from keliu import audit
from keliu.accounts.users import AdminUser
from keliu.tenants import STORES
from portal.core.login_plan import CONSENT_KINDS, MEMBER_PAGE_CONSENTS
from portal.errors import BadRequest, NotFound
from portal.services import Services
from portal.store import access
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
from sensor import consent as registry
from sensor.store import sightings

#: the consents a member may withdraw on their own (the access terms are the login's legal basis: withdrawing them
#: is deleting the account)
WITHDRAWABLE = (*(k for k in CONSENT_KINDS if k != "terms"), *MEMBER_PAGE_CONSENTS)

Exporter = Callable[[Connection, int], Any]
Eraser = Callable[[Connection, int], None]


@dataclass(frozen=True)
class Component:
    """What one component knows of a member: ``export`` returns a JSON-able value (or None: nothing),
    ``erase`` forgets it. ``name`` is the export's key."""

    name: str
    export: Exporter | None
    erase: Eraser


def _iso(v: Any) -> Any:
    return v.isoformat() if isinstance(v, datetime) else v


def _rows(conn: Connection, q: Any) -> list[dict[str, Any]]:
    return [{k: _iso(v) for k, v in r.items()} for r in conn.execute(q).mappings().all()]


def find(conn: Connection, phone_e164: str) -> int | None:
    """The member with this E.164 number."""
    mid = conn.execute(sa.select(members.c.id).where(members.c.phone_e164 == phone_e164)).scalar()
    return None if mid is None else int(mid)


def member_row(conn: Connection, member_id: int) -> Any:
    row = conn.execute(sa.select(members).where(members.c.id == member_id)).first()
    if row is None:
        raise NotFound(f"no member #{member_id}", "no_member")
    return row


def device_ids(conn: Connection, member_id: int) -> list[str]:
    """The portal's device ids this member logged in with or is linked to."""
    q = sa.union(sa.select(devices.c.device_id).where(devices.c.member_id == member_id),
                 sa.select(logins.c.device_id).where(logins.c.member_id == member_id),
                 sa.select(portal_sessions.c.device_id).where(portal_sessions.c.member_id == member_id))
    return sorted(str(d) for d in conn.execute(q).scalars())


def registry_ids(conn: Connection, member_id: int) -> list[str]:
    return sorted(str(r) for r in conn.execute(sa.select(member_registry.c.registry_id)
                                               .where(member_registry.c.member_id == member_id)).scalars())


def open_sessions(conn: Connection, member_id: int) -> list[int]:
    """The member's sessions still open (to end before a deletion: the Gate must let the phone go)."""
    return [int(i) for i in conn.execute(sa.select(portal_sessions.c.id).where(
        portal_sessions.c.member_id == member_id, portal_sessions.c.ended_at.is_(None))).scalars()]


# --- tenancy ----------------------------------------------------------------------------------------------------


def visible(user: AdminUser) -> sa.ColumnElement[bool]:
    """Which members a staff user may see: admins every member; a mall operator the members first seen in a store
    of the mall or who logged in at one; a store manager the members first seen in the store (a member belongs to
    no single store, so a store sees the members it brought in); the counter staff none."""
    if user.role == "admin":
        return sa.true()
    if user.role == "mall":
        mall_stores = sa.select(STORES.c.id).where(STORES.c.mall_id == user.mall_id)
        return sa.or_(members.c.first_store_id.in_(mall_stores),
                      sa.exists().where(logins.c.member_id == members.c.id, logins.c.store_id.in_(mall_stores)))
    if user.role == "store":
        return members.c.first_store_id == user.store_id
    return sa.false()


def may_change(user: AdminUser) -> bool:
    """Correcting, withdrawing for and deleting a member (at the member's request): admins and mall operators (the
    mall's service desk). Store managers may look and export, for a member standing at their counter."""
    return user.role in ("admin", "mall")


def member_for(conn: Connection, user: AdminUser, member_id: int) -> Any:
    """The member row if ``user`` may see it; NotFound otherwise (no hint that it exists)."""
    row = conn.execute(sa.select(members).where(members.c.id == member_id, visible(user))).first()
    if row is None:
        raise NotFound(f"no member #{member_id}", "no_member")
    return row


def listing(conn: Connection, user: AdminUser, phone_e164: str | None = None, limit: int = 50,
            offset: int = 0) -> list[Any]:
    q = sa.select(members).where(visible(user)).order_by(members.c.id.desc()).limit(limit).offset(offset)
    if phone_e164 is not None:
        q = q.where(members.c.phone_e164 == phone_e164)
    return list(conn.execute(q).all())


def mall_of(conn: Connection, member_id: int) -> str | None:
    """The mall of the member's first store (what the audit trail files a member's entries under)."""
    mall = conn.execute(sa.select(STORES.c.mall_id).join(members, members.c.first_store_id == STORES.c.id)
                        .where(members.c.id == member_id)).scalar()
    return None if mall is None else str(mall)


# --- export -----------------------------------------------------------------------------------------------------


def _export_portal(conn: Connection, member_id: int) -> dict[str, Any]:
    m = member_row(conn, member_id)
    regs = _rows(conn, sa.select(member_registry.c.registry_id, member_registry.c.since)
                 .where(member_registry.c.member_id == member_id).order_by(member_registry.c.since))
    for r in regs:
        r["registered_now"] = registry.kind_of(conn, r["registry_id"]) == "member"
    return {
        "member": {"id": m.id, "phone": m.phone_e164, "wechat_openid": m.wechat_openid,
                   "wechat_unionid": m.wechat_unionid, "created_at": _iso(m.created_at),
                   "first_store_id": m.first_store_id, "last_seen_at": _iso(m.last_seen_at)},
        "consents_now": pm.current_consents(conn, member_id),
        "consents": _rows(conn, sa.select(consents.c.kind, consents.c.version, consents.c.granted, consents.c.ts,
                                          consents.c.store_id, consents.c.lang, consents.c.source)
                          .where(consents.c.member_id == member_id).order_by(consents.c.id)),
        "devices": _rows(conn, sa.select(devices.c.device_id, devices.c.store_id, devices.c.first_seen,
                                         devices.c.last_seen, devices.c.reauth_until, devices.c.bound_ip)
                         .where(devices.c.member_id == member_id).order_by(devices.c.first_seen)),
        "logins": _rows(conn, sa.select(logins.c.ts, logins.c.store_id, logins.c.device_id, logins.c.method,
                                        logins.c.ip).where(logins.c.member_id == member_id).order_by(logins.c.id)),
        "sessions": _rows(conn, sa.select(portal_sessions.c.store_id, portal_sessions.c.device_id,
                                          portal_sessions.c.ip, portal_sessions.c.method,
                                          portal_sessions.c.started_at, portal_sessions.c.until,
                                          portal_sessions.c.ended_at, portal_sessions.c.end_reason,
                                          portal_sessions.c.bytes_up, portal_sessions.c.bytes_down)
                          .where(portal_sessions.c.member_id == member_id).order_by(portal_sessions.c.id)),
        "sensor_registry": regs,
    }


def export(conn: Connection, member_id: int, components: Sequence[Component], now: datetime) -> dict[str, Any]:
    """Everything keliu holds about the member, as one JSON-able dict (PIPL art. 45: access and copy)."""
    out: dict[str, Any] = {"format": "keliu-member-export/1", "exported_at": now.isoformat()}
    out.update(_export_portal(conn, member_id))
    for c in components:
        if c.export is not None and c.name != "portal":
            out[c.name] = c.export(conn, member_id)
    out["kept_by_law"] = ("The access log (phone, device address, network addresses, login and logout times) is "
                          "kept as MPS Order 82 and the Cybersecurity Law require, apart from this account, until its "
                          "retention ends; the police may ask for it, nobody else.")
    return out


# --- correct, withdraw -------------------------------------------------------------------------------------------


def change_phone(conn: Connection, member_id: int, new_e164: str) -> str | None:
    """Set the member's phone (already verified by SMS, or corrected by an admin); returns the old one. Refused if
    another member has the number (two accounts are not merged silently)."""
    m = member_row(conn, member_id)
    other = find(conn, new_e164)
    if other is not None and other != member_id:
        raise BadRequest("this number belongs to another member", "phone_taken")
    conn.execute(sa.update(members).where(members.c.id == member_id).values(phone_e164=new_e164))
    return m.phone_e164  # type: ignore[no-any-return]


def withdraw(conn: Connection, member_id: int, kinds: Sequence[str], store_id: str, lang: str,
             now: datetime) -> list[str]:
    """Withdraw the consents ``kinds`` (those granted now; returns them): a refusal row each; analytics also takes
    the member's devices out of the sensor's registry (an opt-out stays) and erases the sightings, visits (connected
    ones too) and device-days stored under their stable ids; re-authorization ends on their devices."""
    bad = [k for k in kinds if k not in WITHDRAWABLE]
    if bad:
        raise BadRequest(f"cannot withdraw {', '.join(bad)}: only {', '.join(WITHDRAWABLE)}", "bad_consent")
    member_row(conn, member_id)
    now_granted = pm.current_consents(conn, member_id)
    done = [k for k in kinds if now_granted.get(k)]
    for k in done:
        pm.record_consent(conn, member_id, store_id, k, False, lang, now)
    if "analytics" in done:
        # the consent was the only basis of linking visits to the member (PIPL art. 47): the visits stored under
        # the stable id go too, and from now on the phone is counted anonymously like everyone else's
        rids = registry_ids(conn, member_id)
        for rid in rids:
            conn.execute(registry.withdraw(rid, "member"))
        _erase_sightings(conn, rids)
    if "reauth" in done:
        conn.execute(sa.update(devices).where(devices.c.member_id == member_id).values(reauth_until=None))
    return done


# --- delete -----------------------------------------------------------------------------------------------------


def _erase_sightings(conn: Connection, rids: Sequence[str]) -> None:
    if rids:
        for t in (sightings, visits, connected_visits, device_days):
            conn.execute(sa.delete(t).where(t.c.device.in_(rids)))


def erase_sensor(conn: Connection, member_id: int) -> None:
    """The member's stable device ids: out of the sensor's registry (as a member; an opt-out stays) and out of the
    stored sightings, visits (connected ones too) and device-days (the counts already rolled up stay: they hold no
    device)."""
    rids = registry_ids(conn, member_id)
    if not rids:
        return
    conn.execute(sa.delete(registry.registry_table).where(registry.registry_table.c.device_id.in_(rids),
                                                          registry.registry_table.c.kind == "member"))
    _erase_sightings(conn, rids)
    conn.execute(sa.delete(member_registry).where(member_registry.c.member_id == member_id))


def own_devices(conn: Connection, member_id: int) -> list[str]:
    """The member's device ids no other member used (those rows are another member's data too)."""
    mine = device_ids(conn, member_id)
    if not mine:
        return []
    shared = set(conn.execute(sa.union(
        sa.select(logins.c.device_id).where(logins.c.device_id.in_(mine), logins.c.member_id != member_id),
        sa.select(devices.c.device_id).where(devices.c.device_id.in_(mine), devices.c.member_id != member_id)))
        .scalars())
    return [d for d in mine if d not in shared]


def erase_portal(conn: Connection, member_id: int) -> None:
    """The member row and everything of the portal's keyed to the member or to their own devices."""
    own = own_devices(conn, member_id)
    for t in (portal_sessions, logins, consents):
        conn.execute(sa.delete(t).where(t.c.member_id == member_id))
    conn.execute(sa.delete(devices).where(sa.or_(devices.c.member_id == member_id, devices.c.device_id.in_(own))))
    conn.execute(sa.delete(landing_urls).where(landing_urls.c.device_id.in_(own)))
    # codes the member's devices asked for, and those of a phone change on the member page (device "member-<id>")
    conn.execute(sa.delete(sms_codes).where(sa.or_(sms_codes.c.device_id.in_(own),
                                                   sms_codes.c.device_id == page_device(member_id))))
    conn.execute(sa.delete(members).where(members.c.id == member_id))


def page_device(member_id: int) -> str:
    """The device id an SMS code for a phone change on the member page is bound to (no MAC there: the member may
    use the page from anywhere)."""
    return f"member-{member_id}"


#: the portal's own parts: the sensor's ids first (they are found through ``member_registry``), the member row
#: last (every other component's rows refer to it)
SENSOR = Component("sensor", None, erase_sensor)
PORTAL = Component("portal", None, erase_portal)


def delete(conn: Connection, member_id: int, components: Sequence[Component]) -> None:
    """Erase the member everywhere, with every component's eraser in order, ``PORTAL`` last (appended if the list
    lacks it). In the caller's transaction: all or nothing. End the member's open sessions first (the Gate)."""
    member_row(conn, member_id)
    chain = [c for c in components if c is not PORTAL] + [PORTAL]
    for c in chain:
        c.erase(conn, member_id)


def delete_member(svc: Services, member_id: int, components: Sequence[Component], actor: AdminUser | str,
                  address: str | None) -> None:
    """End the member's open sessions (the Gate lets the phone go; the access log records it), then erase the
    member with every component's eraser and record who did it, in one transaction."""
    with svc.engine.connect() as conn:
        member_row(conn, member_id)
        open_ids = open_sessions(conn, member_id)
        mall_id = mall_of(conn, member_id)
    now = svc.now()
    for sid in open_ids:
        access.kick(svc, sid, now, reason="deleted")
    with svc.engine.begin() as conn:
        delete(conn, member_id, components)
        audit.record(conn, actor, "member.delete", f"member:{member_id}", address,
                     {"components": [c.name for c in components]}, mall_id=mall_id, now=now)
