"""Tencent Cloud SMS through its official SDK, against a local server that checks the TC3-HMAC-SHA256 signature
and the SendSms body as Tencent documents them (the only mock of the portal's tests)."""
from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from portal.config import SmsConfig
from portal.edges.sms_backends import TencentSms
from portal.errors import SmsFailed
from portal.store.models import sms_codes
from tests.portal.conftest import Phone, make_app

SECRET_ID, SECRET_KEY = "AKIDkeliutest0000000000000000000000", "keliu-test-secret-key-000000000000"
APP_ID, SIGN, TEMPLATE = "1400000001", "客流", "2000001"


def _h(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def expected_signature(method: str, headers: dict[str, str], signed: list[str], payload: bytes, timestamp: int,
                       scope: str, secret_key: str) -> str:
    """TC3-HMAC-SHA256 as documented by Tencent Cloud (签名方法 v3)."""
    canonical_headers = ""
    for name in signed:
        value = headers[name].strip()
        canonical_headers += f"{name}:{value.lower() if name == 'content-type' else value}\n"
    canonical = "\n".join([method, "/", "", canonical_headers, ";".join(signed),
                           hashlib.sha256(payload).hexdigest()])
    to_sign = "\n".join(["TC3-HMAC-SHA256", str(timestamp), scope,
                         hashlib.sha256(canonical.encode("utf-8")).hexdigest()])
    date, service, _ = scope.split("/")
    key = _h(_h(_h(("TC3" + secret_key).encode("utf-8"), date), service), "tc3_request")
    return hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


class TencentStandIn(http.server.BaseHTTPRequestHandler):
    received: list[dict[str, Any]]
    status_code = "Ok"

    def log_message(self, *args: object) -> None:
        return

    def do_POST(self) -> None:
        payload = self.rfile.read(int(self.headers["Content-Length"]))
        headers = {k.lower(): v for k, v in self.headers.items()}
        error = self.check(headers, payload)
        if error is None:
            body = json.loads(payload)
            self.received.append(body)
            resp = {"SendStatusSet": [{"SerialNo": "5000:1", "PhoneNumber": body["PhoneNumberSet"][0], "Fee": 1,
                                       "SessionContext": "", "Code": self.status_code, "Message": "send success",
                                       "IsoCode": "CN"}], "RequestId": str(uuid.uuid4())}
        else:
            resp = {"Error": {"Code": error, "Message": error}, "RequestId": str(uuid.uuid4())}
        data = json.dumps({"Response": resp}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def check(self, headers: dict[str, str], payload: bytes) -> str | None:
        if headers.get("x-tc-action") != "SendSms" or headers.get("x-tc-version") != "2021-01-11":
            return "InvalidAction"
        if headers.get("x-tc-region") != "ap-guangzhou":
            return "InvalidParameter.Region"
        auth = headers.get("authorization", "")
        algo, _, rest = auth.partition(" ")
        if algo != "TC3-HMAC-SHA256":
            return "AuthFailure.SignatureFailure"
        parts = dict(p.strip().split("=", 1) for p in rest.split(","))
        secret_id, scope = parts["Credential"].split("/", 1)
        signed = parts["SignedHeaders"].split(";")
        timestamp = int(headers["x-tc-timestamp"])
        date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
        if secret_id != SECRET_ID or scope != f"{date}/sms/tc3_request" or not {"content-type", "host"} <= set(signed):
            return "AuthFailure.SecretIdNotFound"
        if not hmac.compare_digest(parts["Signature"], expected_signature("POST", headers, signed, payload,
                                                                          timestamp, scope, SECRET_KEY)):
            return "AuthFailure.SignatureFailure"
        body = json.loads(payload)
        if (body.get("SmsSdkAppId"), body.get("SignName"), body.get("TemplateId")) != (APP_ID, SIGN, TEMPLATE):
            return "InvalidParameterValue.SdkAppIdNotExist"
        if not all(p.startswith("+") for p in body.get("PhoneNumberSet", [])):
            return "InvalidParameterValue.IncorrectPhoneNumber"
        return None


@pytest.fixture
def tencent() -> Iterator[tuple[str, type[TencentStandIn]]]:
    handler = type("Handler", (TencentStandIn,), {"received": [], "status_code": "Ok"})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def tcfg(endpoint: str, secret_key: str = SECRET_KEY) -> dict[str, Any]:
    return {"backend": "tencent", "tencent_endpoint": endpoint, "tencent_scheme": "http",
            "tencent_secret_id": SECRET_ID, "tencent_secret_key": secret_key, "tencent_sdk_app_id": APP_ID,
            "tencent_sign_name": SIGN, "tencent_template_id": TEMPLATE}


def test_the_sdk_request_is_signed_and_shaped_as_documented(tencent: tuple[str, Any]) -> None:
    endpoint, handler = tencent
    TencentSms(SmsConfig(**tcfg(endpoint))).send("+8613812345678", "123456", "zh-CN")
    (body,) = handler.received
    assert body["PhoneNumberSet"] == ["+8613812345678"]
    assert body["TemplateParamSet"] == ["123456", "5"]


def test_a_wrong_key_is_refused_and_becomes_sms_failed(tencent: tuple[str, Any]) -> None:
    endpoint, handler = tencent
    with pytest.raises(SmsFailed) as err:
        TencentSms(SmsConfig(**tcfg(endpoint, "not-the-key"))).send("+8613812345678", "123456", "zh-CN")
    assert "AuthFailure.SignatureFailure" in str(err.value) and handler.received == []


def test_unreachable_provider_is_sms_failed() -> None:
    with pytest.raises(SmsFailed):
        TencentSms(SmsConfig(**tcfg("127.0.0.1:9")), timeout_s=2).send("+8613812345678", "123456", "zh-CN")


def test_login_through_tencent_and_nothing_stored_when_it_fails(db_url: str, var_dir: Any, gate: Any, clock: Any,
                                                               neighbours: dict[str, str],
                                                               tencent: tuple[str, Any]) -> None:
    endpoint, handler = tencent
    app = make_app(db_url, var_dir, gate, clock, None, neighbours, sms=tcfg(endpoint))
    phone = Phone(app, "10.77.0.20")
    assert phone.post("/api/login/sms/code", json={"phone": "13812345678"}).status_code == 202
    code = handler.received[-1]["TemplateParamSet"][0]
    r = phone.post("/api/login/sms/verify", json={"phone": "13812345678", "code": code, "consents": {"terms": True}})
    assert r.status_code == 200 and r.json["online"]
    handler.status_code = "LimitExceeded.PhoneNumberDailyLimit"
    r = Phone(app, "10.77.0.21").post("/api/login/sms/code", json={"phone": "13912345678"})
    assert r.status_code == 502 and r.json["error"] == "sms_failed"
    with app.extensions["keliu"].engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(sms_codes)).scalar() == 1


def test_a_campaign_sms_goes_through_the_sdk_with_its_approved_template(tencent: tuple[str, Any]) -> None:
    """marketing's SmsGateway over this backend (keliu.tasks.PortalSms): the template approved for the message's
    category, its parameters, the send's idempotency key as SessionContext; Tencent's serial number back; a refusal
    becomes marketing's ChannelFailed."""
    from keliu.tasks import PortalSms
    from marketing.channels import Outgoing
    from marketing.channels.sms import SmsChannel
    from marketing.core.campaign_spec import Content
    from marketing.errors import ChannelFailed

    endpoint, handler = tencent
    channel = SmsChannel(PortalSms(TencentSms(SmsConfig(**tcfg(endpoint))), "tencent", {"member_benefit": TEMPLATE}))
    msg = Outgoing(4, 0, 9, "member_benefit", Content(text="会员日积分双倍，拒收请回复R", sms_params=("双倍",)),
                   "keliu-4-0-9", address="+8613812345678")
    assert channel.send(msg, 0.0) == "5000:1"
    (body,) = handler.received
    assert (body["TemplateId"], body["TemplateParamSet"], body["SessionContext"]) == (TEMPLATE, ["双倍"], "keliu-4-0-9")
    handler.status_code = "FailedOperation.PhoneNumberInBlacklist"
    with pytest.raises(ChannelFailed, match="PhoneNumberInBlacklist") as refused:
        channel.send(msg, 0.0)
    assert refused.value.permanent
    # a text without the refusal suffix never reaches the provider
    with pytest.raises(ChannelFailed, match="refusal suffix") as exc:
        channel.send(Outgoing(4, 0, 9, "member_benefit", Content(text="积分双倍"), "k", address="+8613812345678"), 0.0)
    assert exc.value.permanent and len(handler.received) == 2
