"""WeChat template messages of the official account (an edge: HTTP), as WeChat documents them:

1. ``GET {api_base}/cgi-bin/token?grant_type=client_credential&appid=…&secret=…`` → ``{"access_token",
   "expires_in"}`` (kept until a minute before it expires);
2. ``POST {api_base}/cgi-bin/message/template/send?access_token=…`` with ``{"touser": openid, "template_id",
   "url", "data": {key: {"value": …}}, "client_msg_id"}`` → ``{"errcode": 0, "errmsg": "ok", "msgid"}``.

``client_msg_id`` is WeChat's anti-reentry id (防重入): the same openid and id send one message; keliu passes the
send's idempotency key, so a retry after a worker died is not a second message. Errors come as ``errcode`` with
HTTP 200: 40001/42001 (token invalid or expired: fetched again once), 43004 (the member does not follow the
account) and 40003 (bad openid) are permanent for this message; -1 (system busy) and transport errors are not.
"""
from __future__ import annotations

import json
import threading
from typing import Any

import requests

from marketing.channels import Outgoing
from marketing.errors import ChannelFailed

PERMANENT = frozenset({40003, 40037, 43004, 43101, 47003})
TOKEN_INVALID = frozenset({40001, 40014, 42001})


def template_body(msg: Outgoing) -> dict[str, Any]:
    c = msg.content
    data = {k: {"value": v} for k, v in c.wechat_data.items()} or {"thing1": {"value": c.text[:20]}}
    body: dict[str, Any] = {"touser": msg.address, "template_id": c.wechat_template_id, "data": data,
                            "client_msg_id": msg.key}
    if c.url:
        body["url"] = c.url
    return body


class WechatChannel:
    def __init__(self, api_base: str, app_id: str, secret: str, timeout_s: float = 10.0) -> None:
        self.api_base = api_base.rstrip("/")
        self.app_id, self.secret, self.timeout_s = app_id, secret, timeout_s
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()
        self._session = requests.Session()

    def _get(self, url: str, **kw: Any) -> dict[str, Any]:
        try:
            resp = self._session.request(url=url, timeout=self.timeout_s, **kw)
            resp.raise_for_status()
            out = json.loads(resp.content)
        except (requests.RequestException, ValueError) as exc:
            raise ChannelFailed("wechat", f"unreachable: {type(exc).__name__}") from exc
        if not isinstance(out, dict):
            raise ChannelFailed("wechat", "unexpected answer")
        return out

    def token(self, now: float, fresh: bool = False) -> str:
        with self._lock:
            if self._token and not fresh and self._token[1] > now:
                return self._token[0]
            got = self._get(f"{self.api_base}/cgi-bin/token", method="GET", params={
                "grant_type": "client_credential", "appid": self.app_id, "secret": self.secret})
            if "access_token" not in got:
                raise ChannelFailed("wechat", f"token: errcode {got.get('errcode')}")
            self._token = (str(got["access_token"]), now + int(got.get("expires_in", 7200)) - 60)
            return self._token[0]

    def call(self, path: str, body: dict[str, Any], now: float, channel: str = "wechat",
             permanent: frozenset[int] = PERMANENT) -> dict[str, Any]:
        """POST ``body`` (JSON) to an API of the account with its access token, fetched again once when WeChat says
        it is no longer good; the answer when its errcode is 0. Raises ChannelFailed (``permanent`` for the codes
        given)."""
        data = json.dumps(body, ensure_ascii=False).encode()
        for attempt in range(2):
            got = self._get(f"{self.api_base}{path}", method="POST", data=data,
                            params={"access_token": self.token(now, fresh=attempt > 0)},
                            headers={"Content-Type": "application/json"})
            code = int(got.get("errcode", -1))
            if code == 0:
                return got
            if code not in TOKEN_INVALID:
                raise ChannelFailed(channel, f"errcode {code}", permanent=code in permanent)
        raise ChannelFailed(channel, "access token refused twice")

    def send(self, msg: Outgoing, now: float) -> str:
        if not msg.address:
            raise ChannelFailed("wechat", "the member has no openid", permanent=True)
        return str(self.call("/cgi-bin/message/template/send", template_body(msg), now).get("msgid", ""))
