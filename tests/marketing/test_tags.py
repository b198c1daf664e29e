"""Member tags (marketing.store.tags) on SQLite and PostgreSQL: set once, removed, listed; a campaign's segment may
name only a tag some member carries (refused at creation with the tag named); a tagged segment enrolls exactly
the tagged members; erasing a member removes their tags, and their export shows them."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from marketing import execution
from marketing.core import campaign_spec
from marketing.core.contact import ContactPolicy
from marketing.errors import CampaignRefused, FieldInvalid
from marketing.store import campaign_admin, erasure
from marketing.store import tags as member_tags
from marketing.store.campaigns import campaign_members
from tests.marketing.campaign_kit import ADMIN, new_campaign
from tests.marketing.conftest import MEMBER_NO, MEMBER_YES, NOW

pytestmark = pytest.mark.integration


def test_set_unset_list_and_known(engine: Engine) -> None:
    with engine.begin() as conn:
        assert member_tags.set_tag(conn, MEMBER_YES, "VIP", "ops", NOW) is True
        assert member_tags.set_tag(conn, MEMBER_YES, "vip", "ops", NOW) is False  # once
        assert member_tags.set_tag(conn, MEMBER_YES, "学生", "ops", NOW) is True
        assert member_tags.set_tag(conn, MEMBER_NO, "staff", "ops", NOW) is True
        with pytest.raises(FieldInvalid, match="tag"):
            member_tags.set_tag(conn, MEMBER_NO, "no spaces", "ops", NOW)
    with engine.begin() as conn:
        assert member_tags.tags_of(conn, MEMBER_YES) == sorted(["vip", "学生"])
        assert member_tags.known(conn) == frozenset({"vip", "学生", "staff"})
        assert member_tags.unset_tag(conn, MEMBER_NO, "staff") is True
        assert member_tags.unset_tag(conn, MEMBER_NO, "staff") is False
        assert member_tags.known(conn) == frozenset({"vip", "学生"})


def test_an_unknown_tag_is_refused_at_creation_and_a_known_one_enrolls_the_tagged(engine: Engine) -> None:
    with engine.begin() as conn:
        member_tags.set_tag(conn, MEMBER_YES, "vip", "ops", NOW)
    spec = campaign_spec.from_docs(name="vip", trigger="scheduled", channel="splash", category="member_benefit",
                                   store_id="s1", params={"segment": "tag in vip, vipp", "consents": ["marketing"],
                                                          "send_at": NOW.isoformat()},
                                   message={"text": "VIP 专享"}, control_share=0.0)
    with pytest.raises(CampaignRefused) as exc:
        campaign_admin.create(engine, ADMIN, spec, NOW, None)
    assert exc.value.key == "err_segment_tag" and exc.value.status == 422
    assert [dict(p.params)["tags"] for p in exc.value.problems] == ["vipp"]
    # the known tag: the scheduled send enrolls the VIP and nobody else
    cid = new_campaign(engine, NOW, trigger="scheduled", channel="splash",
                       params={"segment": "tag in vip", "send_at": NOW.isoformat()})
    due = execution.campaign_sends_due(engine, cid, NOW + timedelta(minutes=1), ContactPolicy())
    assert due == [(MEMBER_YES, 0)]
    nobody = new_campaign(engine, NOW, trigger="scheduled", channel="splash",
                          params={"segment": "tag not in vip", "send_at": NOW.isoformat()})
    assert execution.campaign_sends_due(engine, nobody, NOW + timedelta(minutes=1), ContactPolicy()) == [
        (MEMBER_NO, 0)]
    # a tag taken off every member after the campaign was made: approval refuses it again
    with engine.begin() as conn:
        member_tags.unset_tag(conn, MEMBER_YES, "vip")
    assert campaign_admin.transition(engine, ADMIN, cid, "pause", NOW, None) == "paused"
    with pytest.raises(CampaignRefused) as again:
        campaign_admin.transition(engine, ADMIN, cid, "approve", NOW, None)
    assert ("segment", "err_segment_tag") in [(p.field, p.key) for p in again.value.problems]
    with engine.connect() as conn:
        enrolled = conn.execute(sa.select(campaign_members.c.member_id).where(
            campaign_members.c.campaign_id == cid)).scalars().all()
    assert enrolled == [MEMBER_YES]


def test_erasure_removes_the_members_tags_and_the_export_shows_them(engine: Engine) -> None:
    with engine.begin() as conn:
        member_tags.set_tag(conn, MEMBER_YES, "vip", "ops", NOW)
        member_tags.set_tag(conn, MEMBER_NO, "vip", "ops", NOW)
        assert [r["tag"] for r in erasure.export_member(conn, MEMBER_YES)["tags"]] == ["vip"]
        done = erasure.erase_member(conn, MEMBER_YES, NOW)
        assert done["member_tags"] == 1
        assert member_tags.tags_of(conn, MEMBER_YES) == [] and member_tags.tags_of(conn, MEMBER_NO) == ["vip"]
