"""Aliyun SMS (阿里云短信, dysmsapi ``SendSms``, API version 2017-05-25) as plain values (pure: the nonce and the time
come in; nothing here opens a socket or reads the clock).

The request is RPC style: every parameter is in the query string of a ``GET`` to the endpoint's ``/``, signed with
**Signature v1** (HMAC-SHA1) as Aliyun documents it:

1. the canonicalized query string: every parameter but ``Signature``, sorted by name, name and value each
   percent-encoded (RFC 3986 over UTF-8: letters, digits, ``-``, ``_``, ``.`` and ``~`` stay as they are, a space is
   ``%20``, never ``+``, and ``*`` is ``%2A``), joined as ``name=value`` with ``&``;
2. ``StringToSign = "GET&%2F&" + percentEncode(canonicalized)``;
3. ``Signature = Base64(HMAC-SHA1(key = AccessKeySecret + "&", StringToSign))``, added as a parameter.

The parameters of ``SendSms``: ``PhoneNumbers`` (a mainland number without ``+86``; others with their country
code), ``SignName``, ``TemplateCode``, ``TemplateParam`` (a JSON object of the template's named variables),
``OutId`` (echoed in delivery receipts; here the send's idempotency key), and the common ``AccessKeyId``,
``Action=SendSms``, ``Format=JSON``, ``RegionId``, ``SignatureMethod=HMAC-SHA1``, ``SignatureNonce`` (unique per
request), ``SignatureVersion=1.0``, ``Timestamp`` (ISO 8601 in UTC, ``2017-07-12T02:42:19Z``),
``Version=2017-05-25``. The answer is JSON: ``{"Code": "OK", "Message", "BizId", "RequestId"}``, or an error
``Code`` (``isv.BUSINESS_LIMIT_CONTROL``, ``isv.MOBILE_NUMBER_ILLEGAL``, ``SignatureDoesNotMatch`` …), which
:func:`outcome` turns into words and says whether trying again later could help.

Template parameters: keliu passes a template's parameters as a list of text (Tencent's are positional). For Aliyun,
whose templates name their variables (``${code}``), an item ``name=value`` fills ``${name}``; a plain item fills
``${p1}``, ``${p2}`` … by its position (:func:`template_param`). The login code is ``code=<code>``.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

VERSION = "2017-05-25"
ACTION = "SendSms"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,31}=")

#: the error codes keliu explains (the others are shown as Aliyun sends them)
REASONS: dict[str, str] = {
    "isv.BUSINESS_LIMIT_CONTROL": "Aliyun's frequency limit for this number was reached",
    "isv.MOBILE_NUMBER_ILLEGAL": "not a mobile number Aliyun accepts",
    "isv.DAY_LIMIT_CONTROL": "the account's daily sending limit was reached",
    "isv.MONTH_LIMIT_CONTROL": "the account's monthly sending limit was reached",
    "isv.AMOUNT_NOT_ENOUGH": "the Aliyun account's balance is too low",
    "isv.OUT_OF_SERVICE": "the Aliyun account is suspended (balance)",
    "isv.BLACK_KEY_CONTROL_LIMIT": "the text contains words Aliyun blocks",
    "isv.SMS_CONTENT_ILLEGAL": "the text contains content Aliyun forbids",
    "isv.SMS_TEMPLATE_ILLEGAL": "the template code is not an approved template of this account",
    "isv.SMS_SIGNATURE_ILLEGAL": "the signature is not an approved signature of this account",
    "isv.TEMPLATE_MISSING_PARAMETERS": "the template's variables were not all given",
    "isv.INVALID_JSON_PARAM": "the template parameters are not a JSON object",
    "isv.SMS_SIGNATURE_SCENE_ILLEGAL": "the signature may not send this kind of template",
    "SignatureDoesNotMatch": "Aliyun refused the request's signature (check the AccessKey secret)",
    "InvalidAccessKeyId.NotFound": "Aliyun does not know this AccessKey id",
    "SignatureNonceUsed": "the request's nonce was used before",
    "InvalidTimeStamp.Expired": "the request's time is too far from Aliyun's clock",
    "Throttling.User": "too many requests a second to Aliyun",
    "isp.SYSTEM_ERROR": "Aliyun's system error",
}
#: codes after which the same request may succeed later (the others are refusals of this request)
TRANSIENT: frozenset[str] = frozenset({"Throttling.User", "isp.SYSTEM_ERROR", "ServiceUnavailable",
                                       "InternalError", "InvalidTimeStamp.Expired", "SignatureNonceUsed"})


def percent_encode(text: str) -> str:
    """RFC 3986 percent-encoding over UTF-8, as the signature needs it (``~`` kept, space ``%20``, ``*`` ``%2A``)."""
    return urllib.parse.quote(text, safe="-_.~", encoding="utf-8")


def canonicalized(params: Mapping[str, str]) -> str:
    """The canonicalized query string: sorted by name (byte order), ``Signature`` left out."""
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}"
                    for k, v in sorted(params.items()) if k != "Signature")


def string_to_sign(params: Mapping[str, str], method: str = "GET") -> str:
    return f"{method}&{percent_encode('/')}&{percent_encode(canonicalized(params))}"


def signature(secret: str, params: Mapping[str, str], method: str = "GET") -> str:
    mac = hmac.new(f"{secret}&".encode(), string_to_sign(params, method).encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("time: expected an aware datetime, got a naive one")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def phone_number(e164: str) -> str:
    """What ``PhoneNumbers`` takes: a mainland number without its ``+86``, another with its country code and no
    ``+``."""
    digits = e164.removeprefix("+")
    if not digits.isdigit():
        raise ValueError("phone: expected an E.164 number")
    return digits[2:] if e164.startswith("+86") else digits


def template_param(params: Sequence[str]) -> str:
    """The ``TemplateParam`` JSON: ``name=value`` items by name, plain items as ``p1``, ``p2`` … by position."""
    out: dict[str, str] = {}
    for i, item in enumerate(params, start=1):
        if _NAME.match(item):
            name, _, value = item.partition("=")
            out[name] = value
        else:
            out[f"p{i}"] = item
    return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    access_key_secret: str

    def __repr__(self) -> str:  # never show the secret
        return f"Credentials(access_key_id={self.access_key_id!r})"


def send_sms_query(creds: Credentials, *, region: str, sign_name: str, template_code: str, e164: str,
                   params: Sequence[str], out_id: str | None, nonce: str, now: datetime) -> dict[str, str]:
    """Every parameter of one signed ``SendSms`` request, ``Signature`` included."""
    query = {
        "AccessKeyId": creds.access_key_id, "Action": ACTION, "Format": "JSON", "RegionId": region,
        "SignatureMethod": "HMAC-SHA1", "SignatureNonce": nonce, "SignatureVersion": "1.0",
        "Timestamp": timestamp(now), "Version": VERSION,
        "PhoneNumbers": phone_number(e164), "SignName": sign_name, "TemplateCode": template_code,
        "TemplateParam": template_param(params),
    }
    if out_id:
        query["OutId"] = out_id
    query["Signature"] = signature(creds.access_key_secret, query)
    return query


def url(scheme: str, endpoint: str, query: Mapping[str, str]) -> str:
    """The request's URL, the query encoded the way it was signed."""
    return f"{scheme}://{endpoint}/?" + "&".join(f"{percent_encode(k)}={percent_encode(v)}"
                                                 for k, v in query.items())


@dataclass(frozen=True)
class Outcome:
    """What an answer says: sent (with Aliyun's ``BizId``) or refused (``code``, in words, and whether a later try
    could succeed)."""

    sent: bool
    biz_id: str = ""
    code: str = ""
    transient: bool = False

    @property
    def reason(self) -> str:
        words = REASONS.get(self.code)
        return f"{self.code} ({words})" if words else self.code


def outcome(status: int, body: bytes) -> Outcome:
    """The answer to a ``SendSms`` request (HTTP status and body). A body that is not Aliyun's JSON is a transient
    failure when the status is 5xx, a refusal otherwise."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("Code"), str):
        return Outcome(False, code=f"HTTP {status}", transient=status >= 500)
    code = data["Code"]
    if code == "OK" and status == 200:
        return Outcome(True, biz_id=str(data.get("BizId") or ""))
    return Outcome(False, code=code, transient=code in TRANSIENT or status >= 500)
