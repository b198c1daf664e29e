"""A campaign's lifecycle, the one for the console and for scripts alike (an edge: SQL): who may see and act on
which, create, edit, approve, pause, archive — each change and its audit entry in one transaction
(:func:`keliu.audit.record`). Only ``approved`` campaigns send (marketing.execution reads the status in every
send's transaction, so a pause stops the sends still queued).

Tenancy: an admin every campaign; a mall operator the mall's trade-area campaigns and its stores' campaigns; a
store manager their store's; staff none. The spec and its rules are :mod:`marketing.core.campaign_spec`'s (pure);
it is stored in the ``campaigns`` row itself (the ``params`` and ``message`` documents beside the columns), where
the executor reads it. Approval checks the rules again against the configured SMS provider and its approved
templates (:func:`marketing.core.campaign_spec.problems`): a refused approval names every problem. A status change
is one conditional ``UPDATE … WHERE status IN (…)``: two managers pressing "approve" and "archive" at once cannot
both win. The holdout's share is fixed once members were enrolled (changing it would mix two designs in one
analysis). A webhook campaign gets its signing secret at creation.
"""
from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from keliu import audit
from keliu.accounts.users import AdminUser
from marketing.core import campaign_spec
from marketing.core.campaign_spec import CampaignSpec, Content, Params, Problem
from marketing.errors import CampaignRefused, FieldInvalid
from marketing.store import tags as member_tags
from marketing.store.campaigns import campaign_members, campaigns
from marketing.store.models import offers

__all__ = ["Campaign", "CampaignRefused", "create", "load", "transition", "update", "visible"]
stores_t = sa.table("stores", sa.column("id", sa.String), sa.column("mall_id", sa.String),
                    sa.column("name", sa.String), sa.column("timezone", sa.String))
malls_t = sa.table("malls", sa.column("id", sa.String), sa.column("name", sa.String))


@dataclass(frozen=True)
class Campaign:
    id: int
    name: str
    store_id: str | None
    mall_id: str | None
    trigger: str
    channel: str
    category: str
    status: str
    control_share: float
    window_days: int
    cooldown_s: int
    created_at: datetime
    params: Params
    content: Content
    created_by: str | None
    approved_by: str | None
    webhook_secret: str | None

    @property
    def scope(self) -> str:
        return f"store:{self.store_id}" if self.store_id else f"mall:{self.mall_id}"

    def spec(self) -> CampaignSpec:
        return CampaignSpec(name=self.name, store_id=self.store_id, mall_id=self.mall_id, trigger=self.trigger,
                            channel=self.channel, category=self.category, params=self.params, content=self.content,
                            control_share=self.control_share, window_days=self.window_days,
                            cooldown_hours=self.cooldown_s // 3600)

    def form(self) -> dict[str, Any]:
        """The campaign as the editor's form fields."""
        p, c = self.params, self.content
        return {"name": self.name, "scope": self.scope, "trigger": self.trigger, "channel": self.channel,
                "category": self.category, "provider": p.provider or "", "message": c.text,
                "template_id": c.sms_template_id or c.wechat_template_id, "webhook_url": c.webhook_url,
                "offer_id": str(p.offer_id or ""), "segment": campaign_spec.segment_text(p.segment),
                "consents": sorted(p.consents), "control_pct": str(round(self.control_share * 100)),
                "window_days": str(self.window_days), "cooldown_hours": str(self.cooldown_s // 3600),
                "message_cost_cents": str(p.message_cost_cents), "dwell_minutes": str(p.dwell_minutes),
                "lapsed_days": str(p.lapsed_days), "expiring_hours": str(p.expiring_hours),
                "scheduled_at": p.send_at.isoformat(timespec="minutes") if p.send_at else ""}


def scopes_for(conn: Connection, user: AdminUser) -> dict[str, tuple[str | None, str | None]]:
    """The scopes ``user`` may create campaigns in: ``"store:<id>"`` and ``"mall:<id>"`` → (store, mall)."""
    out: dict[str, tuple[str | None, str | None]] = {}
    if user.role not in ("admin", "mall", "store"):
        return out
    for m in conn.execute(sa.select(malls_t.c.id).order_by(malls_t.c.id)).scalars():
        if user.can_see_mall(m):
            out[f"mall:{m}"] = (None, m)
    for s, mall in conn.execute(sa.select(stores_t.c.id, stores_t.c.mall_id).order_by(stores_t.c.id)):
        if user.can_see_store(s, mall):
            out[f"store:{s}"] = (s, None)
    return out


def scope_names(conn: Connection) -> dict[str, str]:
    names = {f"mall:{m.id}": m.name or m.id for m in conn.execute(sa.select(malls_t))}
    names.update({f"store:{s.id}": s.name or s.id for s in conn.execute(sa.select(stores_t))})
    return names


def offers_for(conn: Connection, scopes: dict[str, tuple[str | None, str | None]]) -> dict[int, str]:
    """The offers a campaign in one of ``scopes`` may attach: those issued by a store of the scopes, or by any
    store of a mall in them."""
    store_ids = [s for s, _m in scopes.values() if s]
    mall_ids = [m for _s, m in scopes.values() if m]
    if not store_ids and not mall_ids:
        return {}
    o = offers
    rows = conn.execute(sa.select(o.c.id, o.c.title).where(sa.or_(o.c.store_id.in_(store_ids),
                                                                   o.c.mall_id.in_(mall_ids))).order_by(o.c.id))
    return {int(r.id): str(r.title) for r in rows}


def _mall_of(conn: Connection, store_id: str | None) -> str | None:
    if store_id is None:
        return None
    return conn.execute(sa.select(stores_t.c.mall_id).where(stores_t.c.id == store_id)).scalar()


def may_act(conn: Connection, user: AdminUser, c: Campaign) -> bool:
    if user.role == "staff":
        return False
    if c.mall_id is not None:
        return user.can_see_mall(c.mall_id)
    return user.can_see_store(c.store_id, _mall_of(conn, c.store_id))


def _campaign(row: Any) -> Campaign:
    try:
        params, content = campaign_spec.parse_params(row.params or "{}"), campaign_spec.parse_content(row.message or "{}")
    except FieldInvalid:  # a document written by hand outside this module: shown empty, refused at approval
        params, content = Params(), Content()
    return Campaign(id=row.id, name=row.name, store_id=row.store_id, mall_id=row.mall_id, trigger=row.trigger,
                    channel=row.channel, category=row.category, status=row.status, control_share=row.control_share,
                    window_days=row.window_days, cooldown_s=row.cooldown_s, created_at=row.created_at,
                    params=params, content=content, created_by=row.created_by, approved_by=row.approved_by,
                    webhook_secret=row.webhook_secret)


def _select() -> sa.Select[Any]:
    return sa.select(campaigns)


def load(conn: Connection, campaign_id: int) -> Campaign | None:
    row = conn.execute(_select().where(campaigns.c.id == campaign_id)).first()
    return _campaign(row) if row is not None else None


def visible(conn: Connection, user: AdminUser) -> list[Campaign]:
    """The campaigns ``user`` may see, newest first."""
    if user.role == "staff":
        return []
    q = _select().order_by(campaigns.c.id.desc())
    if user.role == "mall":
        mall_stores = sa.select(stores_t.c.id).where(stores_t.c.mall_id == user.mall_id)
        q = q.where(sa.or_(campaigns.c.mall_id == user.mall_id, campaigns.c.store_id.in_(mall_stores)))
    elif user.role == "store":
        q = q.where(campaigns.c.store_id == user.store_id)
    return [_campaign(r) for r in conn.execute(q)]


def _audit_scope(conn: Connection, spec_store: str | None, spec_mall: str | None) -> dict[str, str | None]:
    return {"mall_id": spec_mall or _mall_of(conn, spec_store), "store_id": spec_store}


def _columns(spec: CampaignSpec) -> dict[str, Any]:
    return {"name": spec.name, "store_id": spec.store_id, "mall_id": spec.mall_id, "trigger": spec.trigger,
            "channel": spec.channel, "category": spec.category, "control_share": spec.control_share,
            "cooldown_s": spec.cooldown_hours * 3600, "window_days": spec.window_days,
            "params": spec.params_doc(), "message": spec.message_doc()}


def _check_tags(conn: Connection, spec: CampaignSpec) -> None:
    """A segment may name only tags some member carries (an unknown one is a typo): CampaignRefused otherwise."""
    found = campaign_spec.problems(spec, tags=member_tags.known(conn))
    unknown = [p for p in found if p.key == "err_segment_tag"]
    if unknown:
        raise CampaignRefused("err_segment_tag", 422, unknown)


def create(engine: Engine, user: AdminUser, spec: CampaignSpec, now: datetime, address: str | None,
           salt: str | None = None) -> int:
    """Store a new campaign as a draft; returns its id. ``salt``: the holdout's key (default: 16 random bytes; a
    fixed one only where the arms must be reproducible, as in the demo's generated history). A segment naming a
    tag no member carries is refused (``err_segment_tag``)."""
    with engine.begin() as conn:
        if f"store:{spec.store_id}" not in scopes_for(conn, user) and f"mall:{spec.mall_id}" not in scopes_for(
                conn, user):
            raise CampaignRefused("forbidden", 403)
        _check_tags(conn, spec)
        cid = int(conn.execute(sa.insert(campaigns).values(
            **_columns(spec), status="draft", salt=salt or secrets.token_hex(16), created_at=now,
            created_by=user.name, updated_by=user.name, updated_at=now,
            webhook_secret=secrets.token_hex(32) if spec.channel == "webhook" else None).returning(
            campaigns.c.id)).scalar_one())
        audit.record(conn, user, "campaign.create", f"campaign:{cid}", address,
                     {"name": spec.name, "trigger": spec.trigger, "channel": spec.channel,
                      "control_share": spec.control_share}, now=now, **_audit_scope(conn, spec.store_id,
                                                                                    spec.mall_id))
    return cid


def _load_for(conn: Connection, user: AdminUser, campaign_id: int) -> Campaign:
    """The campaign ``user`` is about to change: 404 when there is none, 403 when it is not theirs."""
    current = load(conn, campaign_id)
    if current is None:
        raise CampaignRefused("not_found", 404)
    if not may_act(conn, user, current):
        raise CampaignRefused("forbidden", 403)
    return current


def update(engine: Engine, user: AdminUser, campaign_id: int, spec: CampaignSpec, now: datetime,
           address: str | None) -> None:
    """Change a draft's or a paused campaign's spec (an approved one is paused first)."""
    with engine.begin() as conn:
        current = _load_for(conn, user, campaign_id)
        scopes = scopes_for(conn, user)
        if f"store:{spec.store_id}" not in scopes and f"mall:{spec.mall_id}" not in scopes:
            raise CampaignRefused("forbidden", 403)
        if current.status not in campaign_spec.EDITABLE:
            raise CampaignRefused("err_not_editable")
        _check_tags(conn, spec)
        enrolled = conn.execute(sa.select(sa.func.count()).select_from(campaign_members).where(
            campaign_members.c.campaign_id == campaign_id)).scalar_one()
        if enrolled and abs(spec.control_share - current.control_share) > 1e-9:
            raise CampaignRefused("err_share_locked", 409,
                                  [Problem("control_pct", "err_share_locked")])
        secret = current.webhook_secret or (secrets.token_hex(32) if spec.channel == "webhook" else None)
        done = conn.execute(sa.update(campaigns).where(
            campaigns.c.id == campaign_id, campaigns.c.status.in_(campaign_spec.EDITABLE)).values(
            **_columns(spec), updated_by=user.name, updated_at=now, webhook_secret=secret)).rowcount
        if done != 1:
            raise CampaignRefused("err_not_editable")
        audit.record(conn, user, "campaign.update", f"campaign:{campaign_id}", address,
                     {"name": spec.name, "trigger": spec.trigger, "channel": spec.channel}, now=now,
                     **_audit_scope(conn, spec.store_id, spec.mall_id))


def transition(engine: Engine, user: AdminUser, campaign_id: int, action: str, now: datetime,
               address: str | None, *, sms_provider: str = "console",
               sms_templates: Mapping[str, str] | None = None) -> str:
    """Approve (or resume a paused campaign), pause or archive; returns the new status. Approval checks the spec
    against the configured SMS provider and its approved templates per category: a campaign with any problem is
    refused (``err_approval``, with the problems)."""
    if action not in campaign_spec.TRANSITIONS:
        raise CampaignRefused("not_found", 404)
    allowed, new = campaign_spec.TRANSITIONS[action]
    with engine.begin() as conn:
        current = _load_for(conn, user, campaign_id)
        extra: dict[str, Any] = {}
        if action == "approve" and current.status in allowed:
            found = campaign_spec.problems(current.spec(), sms_provider=sms_provider, sms_templates=sms_templates,
                                           tags=member_tags.known(conn))
            if found:
                raise CampaignRefused("err_approval", 409, found)
            extra = {"approved_by": user.name, "approved_at": now}
        done = conn.execute(sa.update(campaigns).where(
            campaigns.c.id == campaign_id, campaigns.c.status.in_(allowed)).values(status=new, **extra)).rowcount
        if done != 1:
            raise CampaignRefused("err_transition")
        audit.record(conn, user, f"campaign.{action}", f"campaign:{campaign_id}", address,
                     {"from": current.status, "to": new}, now=now,
                     **_audit_scope(conn, current.store_id, current.mall_id))
    return new
