"""The channels' pure parts: the webhook's signature (marketing.core.webhook) and the WeChat template message's body
(marketing.channels.wechat)."""
from __future__ import annotations

import pytest

from marketing.channels import Outgoing
from marketing.channels.wechat import template_body
from marketing.core import webhook
from marketing.core.campaign_spec import Content

BODY = b'{"campaign_id": 1, "member_id": 7}'


def test_webhook_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    h = webhook.headers("k3y", 1765000000, BODY, "keliu-1-0-7")
    assert h[webhook.SIGNATURE] == "v1=" + hmac.new(b"k3y", b"1765000000." + BODY, hashlib.sha256).hexdigest()
    assert h[webhook.IDEMPOTENCY] == webhook.idempotency_key(1, 0, 7) == "keliu-1-0-7"
    assert webhook.verify("k3y", h, BODY, 1765000100)


@pytest.mark.parametrize("change", ["secret", "body", "timestamp", "stale", "future", "missing", "garbage"])
def test_webhook_verify_refuses_forgeries(change: str) -> None:
    h = webhook.headers("k3y", 1765000000, BODY, "keliu-1-0-7")
    secret, body, now = "k3y", BODY, 1765000000.0
    if change == "secret":
        secret = "other"
    elif change == "body":
        body = BODY.replace(b"7", b"8")
    elif change == "timestamp":
        h[webhook.TIMESTAMP] = "1765000001"
    elif change == "stale":
        now += webhook.TOLERANCE_S + 1
    elif change == "future":
        now -= webhook.TOLERANCE_S + 1
    elif change == "missing":
        del h[webhook.SIGNATURE]
    else:
        h[webhook.TIMESTAMP] = "17650e5"
    assert not webhook.verify(secret, h, body, now)


def test_wechat_template_body_as_wechat_documents_it() -> None:
    msg = Outgoing(3, 0, 7, "notice", Content(text="积分到账", wechat_template_id="T1", url="https://x/y",
                                              wechat_data={"thing1": "积分", "time2": "12:00"}), "keliu-3-0-7",
                   address="oABC")
    assert template_body(msg) == {"touser": "oABC", "template_id": "T1", "url": "https://x/y",
                                  "client_msg_id": "keliu-3-0-7",
                                  "data": {"thing1": {"value": "积分"}, "time2": {"value": "12:00"}}}
    bare = Outgoing(3, 0, 7, "notice", Content(text="积分到账", wechat_template_id="T1"), "k", address="o")
    assert template_body(bare)["data"] == {"thing1": {"value": "积分到账"}} and "url" not in template_body(bare)
