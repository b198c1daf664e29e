"""Aliyun SMS (dysmsapi SendSms 2017-05-25): the Signature v1 against Aliyun's documented example, and the backend
against a local stand-in (keliu.testing.aliyun_sms) that recomputes the signature on its own and checks the request
as Aliyun documents it: the login code, a campaign's marketing SMS, a forged signature refused, the provider's
errors turned into clear SmsFailed / ChannelFailed, the number never logged."""
from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from keliu.tasks import PortalSms
from keliu.testing.aliyun_sms import (
    ACCESS_KEY_ID,
    ACCESS_KEY_SECRET,
    FakeAliyunSms,
    expected_signature,
    sms_config,
)
from marketing.channels import Outgoing
from marketing.channels.sms import SmsChannel
from marketing.core.campaign_spec import Content
from marketing.errors import ChannelFailed
from portal.config import SmsConfig
from portal.core import aliyun_sms
from portal.edges.sms_backends import AliyunSms
from portal.errors import SmsFailed
from portal.store.models import sms_codes
from tests.portal.conftest import Phone, make_app

#: Aliyun's worked example of Signature v1 (the RPC signature document: DescribeRegions, AccessKey "testid" /
#: "testsecret"), with the string to sign and the signature it gives
DOC_PARAMS = {"TimeStamp": "2016-02-23T12:46:24Z", "Format": "XML", "AccessKeyId": "testid",
              "Action": "DescribeRegions", "SignatureMethod": "HMAC-SHA1",
              "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf", "Version": "2014-05-26",
              "SignatureVersion": "1.0"}
DOC_STRING_TO_SIGN = ("GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3D"
                      "HMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26"
                      "TimeStamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26")
DOC_SIGNATURE = "CT9X0VtwR86fNWSnsc6v8YGOjuE="
PHONE = "+8613812345678"
TEXT = "会员日积分双倍，回T退订"


@pytest.fixture
def fake() -> Iterator[FakeAliyunSms]:
    with FakeAliyunSms() as server:
        yield server


def backend(fake: FakeAliyunSms, **over: Any) -> AliyunSms:
    return AliyunSms(SmsConfig(**{**fake.config(), **over}), timeout_s=5)


def test_the_signature_is_aliyuns_documented_example() -> None:
    assert aliyun_sms.string_to_sign(DOC_PARAMS) == DOC_STRING_TO_SIGN
    assert aliyun_sms.signature("testsecret", DOC_PARAMS) == DOC_SIGNATURE
    # the stand-in's own implementation agrees with the document too (it is what the client is checked against)
    assert expected_signature(DOC_PARAMS, "testsecret") == DOC_SIGNATURE
    assert aliyun_sms.signature("testsecret", {**DOC_PARAMS, "Signature": "ignored"}) == DOC_SIGNATURE


@pytest.mark.parametrize(("raw", "encoded"), [
    ("abcXYZ019-_.~", "abcXYZ019-_.~"), ("a b", "a%20b"), ("a*b", "a%2Ab"), ("a+b/c=d&e", "a%2Bb%2Fc%3Dd%26e"),
    ("2016-02-23T12:46:24Z", "2016-02-23T12%3A46%3A24Z"), ("回T退订", "%E5%9B%9ET%E9%80%80%E8%AE%A2"),
    ('{"code":"1"}', "%7B%22code%22%3A%221%22%7D"),
])
def test_percent_encoding_is_rfc3986(raw: str, encoded: str) -> None:
    assert aliyun_sms.percent_encode(raw) == encoded


@pytest.mark.parametrize(("params", "json_text"), [
    (["code=123456"], '{"code":"123456"}'),
    (["双倍", "name=王", "3"], '{"p1":"双倍","name":"王","p3":"3"}'),
    (["a=b=c", "=x", "1a=y"], '{"a":"b=c","p2":"=x","p3":"1a=y"}'),
    ([], "{}"),
])
def test_template_params_by_name_or_position(params: list[str], json_text: str) -> None:
    assert aliyun_sms.template_param(params) == json_text


@pytest.mark.parametrize(("e164", "number"), [("+8613812345678", "13812345678"), ("+85261234567", "85261234567")])
def test_phone_numbers_as_aliyun_takes_them(e164: str, number: str) -> None:
    assert aliyun_sms.phone_number(e164) == number


def test_a_send_sms_request_carries_every_documented_parameter() -> None:
    creds = aliyun_sms.Credentials("LTAI-id", "the-secret")
    q = aliyun_sms.send_sms_query(creds, region="cn-hangzhou", sign_name="客流", template_code="SMS_1", e164=PHONE,
                                  params=["code=123456"], out_id="keliu-1-0-2", nonce="n-1",
                                  now=datetime(2017, 7, 12, 10, 42, 19, tzinfo=UTC))
    assert {k: v for k, v in q.items() if k != "Signature"} == {
        "AccessKeyId": "LTAI-id", "Action": "SendSms", "Format": "JSON", "RegionId": "cn-hangzhou",
        "SignatureMethod": "HMAC-SHA1", "SignatureNonce": "n-1", "SignatureVersion": "1.0",
        "Timestamp": "2017-07-12T10:42:19Z", "Version": "2017-05-25", "PhoneNumbers": "13812345678",
        "SignName": "客流", "TemplateCode": "SMS_1", "TemplateParam": '{"code":"123456"}', "OutId": "keliu-1-0-2"}
    assert q["Signature"] == expected_signature(q, "the-secret")
    assert "the-secret" not in repr(creds)


@pytest.mark.parametrize(("status", "body", "sent", "code", "transient"), [
    (200, b'{"Code":"OK","Message":"OK","BizId":"900619746936498440^0","RequestId":"r"}', True, "", False),
    (200, b'{"Code":"isv.BUSINESS_LIMIT_CONTROL","Message":"x"}', False, "isv.BUSINESS_LIMIT_CONTROL", False),
    (200, b'{"Code":"isv.MOBILE_NUMBER_ILLEGAL","Message":"x"}', False, "isv.MOBILE_NUMBER_ILLEGAL", False),
    (400, b'{"Code":"SignatureDoesNotMatch","Message":"x"}', False, "SignatureDoesNotMatch", False),
    (400, b'{"Code":"Throttling.User","Message":"x"}', False, "Throttling.User", True),
    (503, b"<html>busy</html>", False, "HTTP 503", True),
    (404, b"not json", False, "HTTP 404", False),
])
def test_answers_read_as_sent_or_refused(status: int, body: bytes, sent: bool, code: str, transient: bool) -> None:
    got = aliyun_sms.outcome(status, body)
    assert (got.sent, got.code, got.transient) == (sent, code, transient)
    if sent:
        assert got.biz_id == "900619746936498440^0"


def test_login_code_through_aliyun(db_url: str, var_dir: Any, gate: Any, clock: Any, neighbours: dict[str, str],
                                   fake: FakeAliyunSms) -> None:
    app = make_app(db_url, var_dir, gate, clock, None, neighbours, sms=fake.config())
    phone = Phone(app, "10.77.0.20")
    assert phone.post("/api/login/sms/code", json={"phone": "13812345678"}).status_code == 202
    (sent,) = fake.handler.received
    assert (sent["PhoneNumbers"], sent["SignName"], sent["TemplateCode"]) == ("13812345678", "客流", "SMS_100000001")
    code = json.loads(sent["TemplateParam"])["code"]
    r = phone.post("/api/login/sms/verify", json={"phone": "13812345678", "code": code, "consents": {"terms": True}})
    assert r.status_code == 200 and r.json["online"]
    # Aliyun refuses the next one (the number's frequency limit): a clear 502, and no code stored for it
    fake.handler.next_codes.append("isv.BUSINESS_LIMIT_CONTROL")
    r = Phone(app, "10.77.0.21").post("/api/login/sms/code", json={"phone": "13912345678"})
    assert r.status_code == 502 and r.json["error"] == "sms_failed"
    with app.extensions["keliu"].engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(sms_codes)).scalar() == 1


def test_a_forged_signature_is_refused_and_nothing_is_sent(fake: FakeAliyunSms) -> None:
    """The stand-in recomputes the signature: the right secret passes (so the client signs as Aliyun documents),
    any other fails with Aliyun's SignatureDoesNotMatch."""
    assert backend(fake).send_marketing(PHONE, "SMS_100000002", ["双倍"], "keliu-1-0-1") == "000001^0"
    with pytest.raises(SmsFailed, match="SignatureDoesNotMatch") as err:
        backend(fake, aliyun_access_key_secret="not-the-secret").send(PHONE, "123456", "zh-CN")
    assert not err.value.transient and len(fake.handler.received) == 1
    with pytest.raises(SmsFailed, match="InvalidAccessKeyId.NotFound"):
        backend(fake, aliyun_access_key_id="LTAIsomeoneelse").send(PHONE, "123456", "zh-CN")
    assert len(fake.handler.received) == 1
    assert ACCESS_KEY_SECRET not in repr(backend(fake)) and ACCESS_KEY_ID in repr(backend(fake))


@pytest.mark.parametrize(("code", "words", "permanent"), [
    ("isv.BUSINESS_LIMIT_CONTROL", "frequency limit", True),
    ("isv.MOBILE_NUMBER_ILLEGAL", "not a mobile number", True),
    ("isv.AMOUNT_NOT_ENOUGH", "balance", True),
    ("isv.SOMETHING_NEW", "isv.SOMETHING_NEW", True),
    ("Throttling.User", "too many requests", False),
    ("isp.SYSTEM_ERROR", "system error", False),
])
def test_provider_errors_become_clear_errors(fake: FakeAliyunSms, caplog: pytest.LogCaptureFixture, code: str,
                                             words: str, permanent: bool) -> None:
    fake.handler.next_codes.append(code)
    channel = SmsChannel(PortalSms(backend(fake), "aliyun", {"member_benefit": "SMS_100000002"}))
    with caplog.at_level(logging.INFO), pytest.raises(ChannelFailed) as err:
        channel.send(tmsg(), 0.0)
    assert code in err.value.reason and words in err.value.reason and err.value.permanent is permanent
    assert "13812345678" not in caplog.text and "138****5678" in caplog.text  # masked, never in clear
    assert fake.handler.received == []


def test_unreachable_aliyun_is_transient() -> None:
    cfg = SmsConfig(**sms_config("127.0.0.1:9"))
    with pytest.raises(SmsFailed, match="unreachable") as err:
        AliyunSms(cfg, timeout_s=2).send(PHONE, "123456", "zh-CN")
    assert err.value.transient


def tmsg(text: str = TEXT, params: tuple[str, ...] = ("双倍",), tz: str = "Asia/Shanghai") -> Outgoing:
    return Outgoing(4, 0, 9, "member_benefit", Content(text=text, sms_params=params), "keliu-4-0-9",
                    address=PHONE, timezone=tz)


def test_a_campaign_sms_goes_through_aliyun_with_its_suffix_and_hours(fake: FakeAliyunSms) -> None:
    channel = SmsChannel(PortalSms(backend(fake), "aliyun", {"member_benefit": "SMS_100000002"}))
    noon = datetime(2026, 12, 6, 4, 0, tzinfo=UTC).timestamp()  # 12:00 in Shanghai
    assert channel.send(tmsg(params=("双倍", "name=王")), noon) == "000001^0"
    (sent,) = fake.handler.received
    assert (sent["TemplateCode"], sent["OutId"]) == ("SMS_100000002", "keliu-4-0-9")
    assert json.loads(sent["TemplateParam"]) == {"p1": "双倍", "name": "王"}
    # Tencent's suffix is not Aliyun's: refused before the provider is asked
    with pytest.raises(ChannelFailed, match="回T退订") as exc:
        channel.send(tmsg(text="会员日积分双倍，拒收请回复R"), noon)
    assert exc.value.permanent
    # 21:00 and 07:59 in the store's zone: Aliyun forbids promotional SMS 20:00–08:00
    for hour, minute in ((13, 0), (23, 59)):
        late = datetime(2026, 12, 6, hour, minute, tzinfo=UTC).timestamp()
        with pytest.raises(ChannelFailed, match="forbids marketing SMS at this hour") as exc:
            channel.send(tmsg(), late)
        assert exc.value.permanent
    # the same instant is 13:00 in London: the store's own zone decides
    assert channel.send(tmsg(tz="Europe/London"), datetime(2026, 12, 6, 13, 0, tzinfo=UTC).timestamp())
    assert len(fake.handler.received) == 2
