"""Inbound SMS replies as the providers deliver them to a callback URL, parsed into plain values (pure).

- Tencent Cloud SMS (短信回复回调): one JSON object per POST, ``{"extend", "mobile", "nationcode", "sign", "text",
  "time"}``; the answer it expects is ``{"result": 0, "errmsg": "OK"}``.
- Aliyun SMS (上行短信, HTTP batch push): a JSON array of ``{"phone_number", "content", "send_time", "sign_name",
  "dest_code", "sequence_id"}``; the answer it expects is ``{"code": 0, "msg": "成功"}``.

Neither provider signs the request: keliu authenticates the callback with a shared secret in its URL (the one
place both consoles let the operator put one), compared in constant time, and keeps each reply once by a keyed
hash of what identifies it (Aliyun's sequence id; Tencent's number, time and text), never the number itself.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from marketing.core.sms_rules import is_refusal
from marketing.errors import FieldInvalid

PROVIDERS = ("tencent", "aliyun")
ANSWERS: dict[str, dict[str, Any]] = {"tencent": {"result": 0, "errmsg": "OK"}, "aliyun": {"code": 0, "msg": "成功"}}


@dataclass(frozen=True)
class Reply:
    phone: str
    text: str
    #: what makes this reply unique at its provider (hashed before it is stored)
    identity: str

    @property
    def refusal(self) -> bool:
        return is_refusal(self.text)


def _str(d: dict[str, Any], key: str) -> str:
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, (str, int)) or str(v) == "":
        raise FieldInvalid(key, "missing or not text")
    return str(v)


def parse(provider: str, body: Any) -> list[Reply]:
    """The replies in a callback's decoded JSON body. Raises FieldInvalid."""
    if provider == "tencent":
        if not isinstance(body, dict):
            raise FieldInvalid("body", "expected a JSON object")
        phone = _str(body, "mobile")
        code = str(body.get("nationcode") or "86")
        text = body.get("text", "")
        if not isinstance(text, str):
            raise FieldInvalid("text", "not text")
        full = phone if phone.startswith("+") else f"+{code}{phone}"
        return [Reply(full, text, f"{full}|{_str(body, 'time')}|{text}")]
    if provider == "aliyun":
        items = body if isinstance(body, list) else [body]
        out = []
        for item in items:
            if not isinstance(item, dict):
                raise FieldInvalid("body", "expected JSON objects")
            text = item.get("content", "")
            if not isinstance(text, str):
                raise FieldInvalid("content", "not text")
            out.append(Reply(_str(item, "phone_number"), text, _str(item, "sequence_id")))
        return out
    raise FieldInvalid("provider", f"expected one of {PROVIDERS}, got {provider!r}")


def reply_ref(secret: str, provider: str, reply: Reply) -> str:
    """The stored id of a reply: HMAC-SHA256 keyed by the callback secret (a number is never stored)."""
    return hmac.new(secret.encode(), f"{provider}|{reply.identity}".encode(), hashlib.sha256).hexdigest()[:64]


def secret_matches(expected: str | None, given: str) -> bool:
    return bool(expected) and hmac.compare_digest(str(expected).encode(), given.encode())
