"""Creating a campaign and moving it through its lifecycle (an edge: SQL): draft → approved ⇄ paused → archived.

:func:`create` checks the specification (marketing.core.campaign) and stores a draft with a fresh holdout salt
and webhook secret; :func:`approve` refuses a campaign with any approval problem (no consent basis, an SMS in a
forbidden category or without the refusal suffix or an approved template, …) and records who approved it;
:func:`set_status` pauses, resumes and archives. Only ``approved`` campaigns send (marketing.execution reads the
status in every send's transaction, so a pause stops the sends still queued).
"""
from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from marketing.core import campaign as spec
from marketing.core.holdout import DEFAULT_CONTROL_SHARE
from marketing.errors import CampaignRefused, FieldInvalid
from marketing.store.campaigns import campaigns


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def create(conn: Connection, *, name: str, trigger: str, channel: str, category: str, now: datetime,
           store_id: str | None = None, mall_id: str | None = None, params: Mapping[str, Any] | None = None,
           message: Mapping[str, Any] | None = None, control_share: float = DEFAULT_CONTROL_SHARE,
           cooldown_s: int = 86400, window_days: int = 7) -> int:
    """Store a draft campaign of a store or of a mall (the trade area); its id. Raises FieldInvalid."""
    if (store_id is None) == (mall_id is None):
        raise FieldInvalid("store_id", "a campaign belongs to one store or one mall")
    if not name.strip():
        raise FieldInvalid("name", "empty")
    if trigger not in spec.TRIGGERS:
        raise FieldInvalid("trigger", f"expected one of {spec.TRIGGERS}, got {trigger!r}")
    if not 0.0 <= control_share < 1.0:
        raise FieldInvalid("control_share", f"expected 0 <= share < 1, got {control_share!r}")
    if cooldown_s < 0 or window_days < 1:
        raise FieldInvalid("cooldown_s" if cooldown_s < 0 else "window_days", "out of range")
    p = spec.parse_params(params or {})
    c = spec.parse_content(message or {})
    return int(conn.execute(sa.insert(campaigns).values(
        store_id=store_id, mall_id=mall_id, name=name.strip(), trigger=trigger, channel=channel, category=category,
        status="draft", control_share=control_share, salt=secrets.token_hex(16), cooldown_s=cooldown_s,
        window_days=window_days, created_at=now,
        params=json.dumps(asdict(p), default=_json_default), message=json.dumps(asdict(c), ensure_ascii=False),
        webhook_secret=secrets.token_hex(32) if channel == "webhook" else None,
    ).returning(campaigns.c.id)).scalar_one())


def problems(conn: Connection, campaign_id: int, sms_provider: str, sms_templates: Mapping[str, str]) -> list[str]:
    row = conn.execute(sa.select(campaigns).where(campaigns.c.id == campaign_id)).mappings().first()
    if row is None:
        return [f"campaign {campaign_id}: no such campaign"]
    try:
        p, c = spec.parse_params(row["params"]), spec.parse_content(row["message"])
    except FieldInvalid as exc:
        return [str(exc)]
    return spec.approval_problems(row["trigger"], row["channel"], row["category"], p, c, sms_provider,
                                  sms_templates)


def approve(conn: Connection, campaign_id: int, *, by: str, now: datetime, sms_provider: str,
            sms_templates: Mapping[str, str]) -> None:
    """Approve a draft (or resume a paused campaign after checking it again). Raises CampaignRefused."""
    found = problems(conn, campaign_id, sms_provider, sms_templates)
    if found:
        raise CampaignRefused(found)
    _move(conn, campaign_id, "approved", {"approved_by": by, "approved_at": now})


def set_status(conn: Connection, campaign_id: int, status: str) -> None:
    """Pause (``paused``) or archive (``archived``); resuming goes through :func:`approve`."""
    if status == "approved":
        raise CampaignRefused(["status: resuming goes through approve (the campaign is checked again)"])
    _move(conn, campaign_id, status, {})


def _move(conn: Connection, campaign_id: int, status: str, extra: Mapping[str, Any]) -> None:
    if status not in spec.STATUSES:
        raise FieldInvalid("status", f"expected one of {spec.STATUSES}, got {status!r}")
    allowed = [s for s, nxt in spec.TRANSITIONS.items() if status in nxt]
    done = conn.execute(sa.update(campaigns).where(campaigns.c.id == campaign_id, campaigns.c.status.in_(allowed))
                        .values(status=status, **extra)).rowcount
    if done != 1:
        current = conn.execute(sa.select(campaigns.c.status).where(campaigns.c.id == campaign_id)).scalar()
        raise CampaignRefused([f"status: cannot go from {current!r} to {status!r}" if current else
                               f"campaign {campaign_id}: no such campaign"])
