"""The SMS provider's reply callback: a refusal withdraws SMS marketing consent at once (the next SMS decided is
suppressed ``withdrawn``), a forged callback changes nothing, a reply delivered twice counts once, and only the
member id is stored."""
from __future__ import annotations

import io
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import Engine

import marketing
from keliu.tasks import PortalSms
from marketing import execution
from marketing.channels.sms import SmsChannel
from marketing.core import sms_replies
from marketing.store.campaigns import sms_replies as replies_table
from portal.edges.sms_backends import ConsoleSms
from portal.store.marketing_members import PortalMembers
from tests.marketing.conftest import MEMBER_YES, NOW
from tests.marketing.test_campaign_execution import SMS_TEXT, TEMPLATES, tcampaign

pytestmark = pytest.mark.integration
SECRET = "cb-secret-0123456789"


def client(engine: Engine):  # type: ignore[no-untyped-def]
    app = Flask(__name__)
    marketing.init_app(app, engine, lambda: NOW.timestamp(), PortalMembers(), contacts=PortalMembers(),
                       sms_callback_secret=SECRET)
    return app.test_client()


def tencent(text: str, t: int = 1765000000, mobile: str = "13812345678") -> dict[str, object]:
    return {"extend": "", "mobile": mobile, "nationcode": "86", "sign": "客流", "text": text, "time": t}


def sms_deps(engine: Engine) -> execution.Deps:
    return execution.Deps(engine=engine, contacts=PortalMembers(),
                          channels={"sms": SmsChannel(PortalSms(ConsoleSms(io.StringIO()), "console", TEMPLATES))})


@pytest.mark.parametrize("reply", ["R", " ｒ ", "TD", "退订", "拒收", "n"])
def test_a_refusal_withdraws_sms_marketing_at_once(engine: Engine, reply: str) -> None:
    cid = tcampaign(engine, trigger="lapsed", channel="sms", message={"text": SMS_TEXT})
    resp = client(engine).post(f"/api/v1/sms/replies/tencent/{SECRET}", json=tencent(reply))
    assert (resp.status_code, resp.get_json()) == (200, {"result": 0, "errmsg": "OK"})
    with engine.connect() as conn:
        granted, refused = PortalMembers().consents_of(conn, MEMBER_YES)
        stored = conn.execute(sa.select(replies_table)).mappings().all()
    assert "sms_marketing" not in granted and refused == frozenset({"sms"})
    assert "wechat_marketing" in granted  # only SMS was refused
    assert [(r["member_id"], r["refusal"]) for r in stored] == [(MEMBER_YES, True)]
    assert "13812345678" not in str(dict(stored[0]))  # a keyed hash, never the number
    r = execution.deliver(sms_deps(engine), cid, MEMBER_YES, 0, NOW + timedelta(seconds=1))
    assert (r.status, r.reason) == ("suppressed", "withdrawn")


def test_forged_replayed_and_malformed_callbacks(engine: Engine) -> None:
    c = client(engine)
    assert c.post("/api/v1/sms/replies/tencent/wrong-secret", json=tencent("R")).status_code == 404
    assert c.post("/api/v1/sms/replies/other/" + SECRET, json=tencent("R")).status_code == 404
    assert c.post(f"/api/v1/sms/replies/tencent/{SECRET}", data=b"{not json").status_code == 400
    assert c.post(f"/api/v1/sms/replies/tencent/{SECRET}", json={"text": "R"}).status_code == 400
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(replies_table)).scalar() == 0
        assert "sms_marketing" in PortalMembers().consents_of(conn, MEMBER_YES)[0]
    # a reply that is not a refusal is recorded and changes nothing; the same reply twice is recorded once
    for _ in range(2):
        assert c.post(f"/api/v1/sms/replies/tencent/{SECRET}", json=tencent("谢谢")).status_code == 200
    # Aliyun's batch push: a refusal from an unknown number is recorded without a member
    batch = [{"phone_number": "13912345670", "content": "T", "send_time": "2026-12-06 18:00:00",
              "sign_name": "客流", "dest_code": "", "sequence_id": 42}]
    resp = c.post(f"/api/v1/sms/replies/aliyun/{SECRET}", json=batch)
    assert resp.get_json() == {"code": 0, "msg": "成功"}
    with engine.connect() as conn:
        rows = conn.execute(sa.select(replies_table.c.provider, replies_table.c.member_id, replies_table.c.refusal)
                            .order_by(replies_table.c.id)).all()
        assert "sms_marketing" in PortalMembers().consents_of(conn, MEMBER_YES)[0]
    assert [tuple(r) for r in rows] == [("tencent", MEMBER_YES, False), ("aliyun", None, True)]


def test_no_secret_configured_means_no_callback(engine: Engine) -> None:
    app = Flask(__name__)
    marketing.init_app(app, engine, lambda: NOW.timestamp(), PortalMembers(), contacts=PortalMembers())
    assert app.test_client().post("/api/v1/sms/replies/tencent/", json=tencent("R")).status_code == 404
    assert app.test_client().post("/api/v1/sms/replies/tencent/x", json=tencent("R")).status_code == 404


@pytest.mark.parametrize(("provider", "body", "field"), [
    ("tencent", [], "body"), ("tencent", {"text": "R", "time": 1}, "mobile"), ("aliyun", [1], "body"),
    ("aliyun", {"phone_number": "1", "content": 5, "sequence_id": 1}, "content"), ("x", {}, "provider"),
])
def test_parse_names_the_bad_field(provider: str, body: object, field: str) -> None:
    from marketing.errors import FieldInvalid
    with pytest.raises(FieldInvalid) as exc:
        sms_replies.parse(provider, body)
    assert exc.value.field == field
