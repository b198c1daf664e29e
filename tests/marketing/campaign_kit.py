"""Creating test campaigns through the one lifecycle (marketing.store.campaign_admin), as the console does: a spec
from documents (marketing.core.campaign_spec.from_docs), created by an admin and approved against the configured
SMS provider's templates. The consent basis defaults to what the channel and trigger need."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from keliu.accounts.users import AdminUser
from marketing.core import campaign_spec, contact
from marketing.store import campaign_admin
from marketing.store.campaigns import campaign_sends

ADMIN = AdminUser("admin", "admin")


def new_campaign(engine: Engine, now: datetime, *, trigger: str, channel: str, name: str = "c",
                 category: str = "member_benefit", store_id: str | None = "s1", mall_id: str | None = None,
                 params: Mapping[str, Any] | None = None, message: Mapping[str, Any] | None = None,
                 control_share: float = 0.0, cooldown_hours: int = 0, approve: bool = True,
                 sms_templates: Mapping[str, str] | None = None, salt: str | None = None,
                 sms_provider: str = "console") -> int:
    doc = dict(params or {})
    if "consents" not in doc:
        doc["consents"] = list(contact.needed_purposes(contact.Send(
            0, 0, channel, "UTC", presence_triggered=trigger in campaign_spec.PRESENCE_TRIGGERS,  # type: ignore[arg-type]
            trade_area=mall_id is not None or bool(doc.get("trade_area")))))
    spec = campaign_spec.from_docs(name=name, trigger=trigger, channel=channel, category=category,
                                   store_id=store_id if mall_id is None else None, mall_id=mall_id, params=doc,
                                   message=message or {"text": "欢迎回来 welcome back"}, control_share=control_share,
                                   cooldown_hours=cooldown_hours)
    cid = campaign_admin.create(engine, ADMIN, spec, now, None, salt=salt)
    if approve:
        campaign_admin.transition(engine, ADMIN, cid, "approve", now, None, sms_provider=sms_provider,
                                  sms_templates=sms_templates or {})
    return cid


def send_row(engine: Engine, cid: int, member: int, step: int = 0) -> Any:
    """The campaign's send row to ``member`` at ``step``."""
    s = campaign_sends
    with engine.connect() as conn:
        return conn.execute(sa.select(s).where(s.c.campaign_id == cid, s.c.member_id == member,
                                               s.c.step == step)).mappings().one()


def consenting_members(engine: Engine, ids: Iterable[int], at: datetime) -> None:
    """Members of store s1 created and last seen at ``at`` (lapsed when ``at`` is long ago), each with marketing
    consent granted then."""
    with engine.begin() as conn:
        for i in ids:
            conn.execute(sa.text("INSERT INTO members (id, created_at, first_store_id, last_seen_at) "
                                 "VALUES (:i, :t, 's1', :t)"), {"i": i, "t": at})
            conn.execute(sa.text("INSERT INTO consents (member_id, kind, version, granted, ts, store_id, lang) "
                                 "VALUES (:i, 'marketing', 'v1', true, :t, 's1', 'zh-CN')"), {"i": i, "t": at})
