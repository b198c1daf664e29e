"""The console's campaign store (marketing.store.campaign_admin) on SQLite and PostgreSQL: scopes by role, create
and status changes with their audit entries in the same transaction, and racing approvals: exactly one wins."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from keliu import audit
from keliu.accounts.users import AdminUser
from marketing.core import campaign_spec
from marketing.store import campaign_admin
from marketing.store.campaign_admin import CampaignRefused
from tests.marketing.conftest import NOW

pytestmark = pytest.mark.integration

ADMIN = AdminUser("root", "admin")
MALL = AdminUser("op", "mall", mall_id="m1")
BOSS = AdminUser("boss", "store", mall_id="m1", store_id="s1")
OTHER = AdminUser("boss2", "store", mall_id="m1", store_id="s2")
CLERK = AdminUser("clerk", "staff", mall_id="m1", store_id="s1")
FORM = {"name": "n", "trigger": "login_first", "channel": "splash", "message": "欢迎", "consents": ["marketing"]}


def spec(scope: str = "store:s1") -> campaign_spec.CampaignSpec:
    s, problems = campaign_spec.parse({**FORM, "scope": scope, "consents": ["marketing", "trade_area"]}, scopes={scope: (
        scope[6:] if scope.startswith("store:") else None, scope[5:] if scope.startswith("mall:") else None)},
        offers=frozenset())
    assert s is not None, problems
    return s


def test_scopes_by_role(engine: Engine) -> None:
    with engine.connect() as conn:
        assert set(campaign_admin.scopes_for(conn, ADMIN)) == {"mall:m1", "mall:m2", "store:s1", "store:s2",
                                                               "store:w1", "store:x1"}
        assert set(campaign_admin.scopes_for(conn, MALL)) == {"mall:m1", "store:s1", "store:s2", "store:w1"}
        assert set(campaign_admin.scopes_for(conn, BOSS)) == {"store:s1"}
        assert campaign_admin.scopes_for(conn, CLERK) == {}


def test_create_and_refusals_outside_the_scope(engine: Engine) -> None:
    cid = campaign_admin.create(engine, BOSS, spec(), NOW, "10.0.0.9")
    with pytest.raises(CampaignRefused) as refused:
        campaign_admin.create(engine, BOSS, spec("store:s2"), NOW, None)
    assert refused.value.status == 403
    with pytest.raises(CampaignRefused):
        campaign_admin.transition(engine, OTHER, cid, "approve", NOW, None)
    with pytest.raises(CampaignRefused):
        campaign_admin.update(engine, CLERK, cid, spec(), NOW, None)
    with engine.connect() as conn:
        assert [c.id for c in campaign_admin.visible(conn, MALL)] == [cid]
        assert campaign_admin.visible(conn, OTHER) == [] and campaign_admin.visible(conn, CLERK) == []
        c = campaign_admin.load(conn, cid)
    assert c is not None and (c.status, c.created_by, c.params.consents) == ("draft", "boss",
                                                                      frozenset({"marketing", "trade_area"}))
    entries = [(e.action, e.target, e.address) for e in audit.entries(engine) if e.action.startswith("campaign.")]
    assert entries == [("campaign.create", f"campaign:{cid}", "10.0.0.9")]


def test_racing_approvals_one_wins(engine: Engine) -> None:
    cid = campaign_admin.create(engine, MALL, spec("mall:m1"), NOW, None)
    results: list[str] = []
    barrier = threading.Barrier(8)

    def approve() -> None:
        barrier.wait()
        try:
            results.append(campaign_admin.transition(engine, MALL, cid, "approve", NOW + timedelta(seconds=1), None))
        except CampaignRefused as exc:
            results.append(exc.key)

    threads = [threading.Thread(target=approve) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["approved"] + ["err_transition"] * 7
    assert [e.action for e in audit.entries(engine)].count("campaign.approve") == 1
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT approved_by FROM campaigns WHERE id = :c"), {"c": cid}).one()
    assert row.approved_by == "op"


def test_a_campaign_made_outside_the_console_is_checked_at_approval_and_editable(engine: Engine) -> None:
    from marketing.store.campaigns import campaigns

    with engine.begin() as conn:
        cid = conn.execute(sa.insert(campaigns).values(
            store_id="s1", name="scripted", trigger="lapsed", channel="sms", category="member_benefit",
            status="draft", control_share=0.1, salt="pepper", cooldown_s=0, window_days=7, created_at=NOW
        ).returning(campaigns.c.id)).scalar_one()
        c = campaign_admin.load(conn, cid)
    assert c is not None and c.params == campaign_spec.Params() and c.form()["control_pct"] == "10"
    # no consent basis, no text, no template: approval names every problem and changes nothing
    with pytest.raises(CampaignRefused) as refused:
        campaign_admin.transition(engine, BOSS, cid, "approve", NOW, None, sms_provider="tencent",
                                  sms_templates={})
    assert refused.value.key == "err_approval"
    assert {(p.field, p.key) for p in refused.value.problems} >= {
        ("consents", "err_consent_basis"), ("message", "err_message_len"), ("template_id", "err_template_required")}
    campaign_admin.update(engine, BOSS, cid, spec(), NOW, None)
    with engine.connect() as conn:
        c = campaign_admin.load(conn, cid)
        row = conn.execute(sa.select(campaigns.c.status, campaigns.c.updated_by)
                           .where(campaigns.c.id == cid)).one()
    assert c is not None and (c.name, c.trigger, c.content.text) == ("n", "login_first", "欢迎")
    assert tuple(row) == ("draft", "boss")
