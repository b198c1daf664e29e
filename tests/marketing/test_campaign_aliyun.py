"""Campaign SMS through Aliyun (the local stand-in that checks the signature, keliu.testing.aliyun_sms) on the real
execution path: the text with Aliyun's suffix goes out with its template, a send in Aliyun's forbidden hours
(20:00–08:00 in the store's zone) is suppressed ``provider_hours`` even when the quiet hours are configured
shorter, the beat waits them out, and Aliyun's reply push "T" withdraws SMS marketing at once."""
from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import time, timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import Engine

import marketing
from keliu.tasks import PortalSms
from keliu.testing.aliyun_sms import FakeAliyunSms
from marketing import execution
from marketing.channels.sms import SmsChannel
from marketing.core.contact import ContactPolicy
from portal.config import SmsConfig
from portal.edges.sms_backends import AliyunSms
from portal.store.marketing_members import PortalMembers
from tests.marketing.campaign_kit import new_campaign
from tests.marketing.conftest import MEMBER_NO, MEMBER_YES, NOW
from tests.marketing.test_campaign_execution import send_row

pytestmark = pytest.mark.integration
TEMPLATES = {"member_benefit": "SMS_100000002"}
TEXT = "会员日全场积分双倍，回T退订"
SECRET = "cb-secret-aliyun-0123"
#: NOW is 18:00 in Shanghai (store s1); three hours later is 21:00
EVENING = NOW + timedelta(hours=3)


@pytest.fixture
def fake() -> Iterator[FakeAliyunSms]:
    with FakeAliyunSms() as server:
        yield server


def acampaign(engine: Engine, **params: object) -> int:
    return new_campaign(engine, NOW, trigger="lapsed", channel="sms", params={"lapsed_days": 1, **params},
                        message={"text": TEXT, "sms_params": ["双倍"]}, sms_templates=TEMPLATES,
                        sms_provider="aliyun")


def adeps(engine: Engine, fake: FakeAliyunSms, policy: ContactPolicy | None = None) -> execution.Deps:
    gateway = PortalSms(AliyunSms(SmsConfig(**fake.config()), timeout_s=5), "aliyun", TEMPLATES)
    return execution.Deps(engine=engine, contacts=PortalMembers(), channels={"sms": SmsChannel(gateway)},
                          policy=policy or ContactPolicy(), lease=timedelta(seconds=60))


def test_a_campaign_sms_goes_out_through_aliyun(engine: Engine, fake: FakeAliyunSms) -> None:
    cid = acampaign(engine)
    d = adeps(engine, fake)
    assert execution.deliver(d, cid, MEMBER_YES, 0, NOW).status == "sent"
    (sent,) = fake.handler.received
    assert (sent["PhoneNumbers"], sent["TemplateCode"], sent["OutId"]) == (
        "13812345678", "SMS_100000002", f"keliu-{cid}-0-{MEMBER_YES}")
    assert json.loads(sent["TemplateParam"]) == {"p1": "双倍"}
    row = send_row(engine, cid, MEMBER_YES)
    assert (row["status"], row["provider_ref"]) == ("sent", "000001^0")
    no = execution.deliver(d, cid, MEMBER_NO, 0, NOW)  # no marketing consent: never reaches Aliyun
    assert (no.status, no.reason) == ("suppressed", "no_consent:sms_marketing")
    assert len(fake.handler.received) == 1


def test_aliyuns_forbidden_hours_suppress_even_with_shorter_quiet_hours(engine: Engine,
                                                                        fake: FakeAliyunSms) -> None:
    cid = acampaign(engine)
    relaxed = ContactPolicy(quiet_start=time(22, 0), quiet_end=time(7, 0))
    r = execution.deliver(adeps(engine, fake, relaxed), cid, MEMBER_YES, 0, EVENING)
    assert (r.status, r.reason) == ("suppressed", "provider_hours")
    row = send_row(engine, cid, MEMBER_YES)
    assert (row["status"], row["reason"]) == ("suppressed", "provider_hours")
    # with the default quiet hours (20:00–08:00) the policy's own reason comes first
    cid2 = acampaign(engine)
    r = execution.deliver(adeps(engine, fake), cid2, MEMBER_YES, 0, EVENING)
    assert (r.status, r.reason) == ("suppressed", "quiet_hours")
    assert fake.handler.received == []
    assert execution.counts(engine, cid)["suppressed"] == {"provider_hours": 1}


def test_the_beat_waits_out_aliyuns_hours(engine: Engine, fake: FakeAliyunSms) -> None:
    cid = acampaign(engine)
    relaxed = ContactPolicy(quiet_start=time(22, 0), quiet_end=time(7, 0))
    d = adeps(engine, fake, relaxed)
    hours = execution.provider_hours(d, "sms")
    assert hours == (time(20, 0), time(8, 0))
    two_days = timedelta(days=2)
    assert execution.campaign_sends_due(engine, cid, EVENING + two_days, relaxed, hours) == []  # nothing enrolled
    assert execution.campaign_sends_due(engine, cid, NOW + two_days, relaxed, hours) == [(MEMBER_YES, 0),
                                                                                       (MEMBER_NO, 0)]


def test_aliyuns_reply_t_withdraws_sms_marketing_at_once(engine: Engine, fake: FakeAliyunSms) -> None:
    cid = acampaign(engine)
    app = Flask(__name__)
    marketing.init_app(app, engine, lambda: NOW.timestamp(), PortalMembers(), contacts=PortalMembers(),
                       sms_callback_secret=SECRET)
    push = [{"phone_number": "13812345678", "content": " t ", "send_time": "2026-12-06 18:00:00",
             "sign_name": "客流", "dest_code": "1234", "sequence_id": 1234567890},
            {"phone_number": "13912345678", "content": "好的", "send_time": "2026-12-06 18:00:01",
             "sign_name": "客流", "dest_code": "1234", "sequence_id": "1234567891"}]
    resp = app.test_client().post(f"/api/v1/sms/replies/aliyun/{SECRET}", json=push)
    assert (resp.status_code, resp.get_json()) == (200, {"code": 0, "msg": "成功"})
    with engine.connect() as conn:
        granted, refused = PortalMembers().consents_of(conn, MEMBER_YES)
        assert "sms_marketing" not in granted and refused == frozenset({"sms"})
        assert PortalMembers().consents_of(conn, MEMBER_NO)[1] == frozenset()  # "好的" refuses nothing
        stored = conn.execute(sa.text("SELECT member_id, refusal FROM sms_replies ORDER BY id")).all()
    assert [tuple(r) for r in stored] == [(MEMBER_YES, True), (MEMBER_NO, False)]
    r = execution.deliver(adeps(engine, fake), cid, MEMBER_YES, 0, NOW + timedelta(seconds=1))
    assert (r.status, r.reason) == ("suppressed", "withdrawn")
    assert fake.handler.received == []
