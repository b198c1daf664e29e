"""A FAKE Aliyun SMS endpoint (dysmsapi ``SendSms``, 2017-05-25) for tests: a local HTTP server that checks each
request the way Aliyun documents it and records what it would have sent. It is not Aliyun.

What it checks, in Aliyun's order and with Aliyun's error codes:

* the common parameters: ``Action=SendSms``, ``Version=2017-05-25``, ``Format``, ``SignatureMethod=HMAC-SHA1``,
  ``SignatureVersion=1.0``, a ``Timestamp`` in ISO 8601 UTC within 15 minutes of its clock
  (``InvalidTimeStamp.Expired``), a ``SignatureNonce`` never seen before (``SignatureNonceUsed``), a known
  ``AccessKeyId`` (``InvalidAccessKeyId.NotFound``);
* the **signature**, recomputed here independently of keliu's client (:func:`expected_signature`: the parameters
  as the server *received* them, decoded, sorted, re-encoded per RFC 3986, ``GET&%2F&…``, HMAC-SHA1 keyed with
  ``secret + "&"``, Base64): a mismatch is HTTP 400 ``SignatureDoesNotMatch`` and nothing is recorded;
* ``SendSms``'s own: ``PhoneNumbers`` a mainland mobile number (``isv.MOBILE_NUMBER_ILLEGAL``), the known
  ``SignName`` (``isv.SMS_SIGNATURE_ILLEGAL``) and ``TemplateCode`` (``isv.SMS_TEMPLATE_ILLEGAL``),
  ``TemplateParam`` a JSON object of text (``isv.INVALID_JSON_PARAM``).

A request that passes is recorded in ``handler.received`` (its decoded parameters; this is test memory, never a
file) and answered ``{"Code": "OK", "Message": "OK", "BizId", "RequestId"}``. ``handler.next_codes`` makes the
next answers an error of Aliyun's (``isv.BUSINESS_LIMIT_CONTROL`` …) after the checks passed.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import re
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Self

ACCESS_KEY_ID, ACCESS_KEY_SECRET = "LTAIkeliuFAKE0000000000", "keliu-fake-aliyun-secret-000000"
SIGN_NAME = "客流"
TEMPLATES = frozenset({"SMS_100000001", "SMS_100000002", "SMS_100000003"})
_MAINLAND_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_COMMON = {"Action": "SendSms", "Version": "2017-05-25", "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0"}


def _encode(value: str) -> str:
    # RFC 3986 unreserved characters stay, every other byte of the UTF-8 form is %XX (upper-case hex)
    out = []
    for byte in value.encode("utf-8"):
        ch = chr(byte)
        out.append(ch if ch.isascii() and (ch.isalnum() or ch in "-_.~") else f"%{byte:02X}")
    return "".join(out)


def expected_signature(params: dict[str, str], secret: str, method: str = "GET") -> str:
    """Aliyun's Signature v1 over the received parameters (``Signature`` itself left out)."""
    canonical = "&".join(f"{_encode(k)}={_encode(params[k])}" for k in sorted(params) if k != "Signature")
    to_sign = f"{method}&{_encode('/')}&{_encode(canonical)}"
    return base64.b64encode(hmac.new((secret + "&").encode(), to_sign.encode(), hashlib.sha1).digest()).decode()


class AliyunStandIn(http.server.BaseHTTPRequestHandler):
    received: list[dict[str, str]]
    nonces: set[str]
    next_codes: list[str]
    clock: Callable[[], float] = time.time

    def log_message(self, *args: object) -> None:
        return

    def do_GET(self) -> None:
        query = urllib.parse.urlsplit(self.path).query
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=False)
        params = dict(pairs)
        status, code = self.check(params, len(pairs))
        if code is None and self.next_codes:
            code = self.next_codes.pop(0)
        if code is None:
            self.received.append(params)
            body: dict[str, Any] = {"Code": "OK", "Message": "OK", "BizId": f"{len(self.received):06d}^0",
                                    "RequestId": str(uuid.uuid4())}
        else:
            body = {"Code": code, "Message": f"{code} (FAKE Aliyun)", "RequestId": str(uuid.uuid4())}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def check(self, params: dict[str, str], n_pairs: int) -> tuple[int, str | None]:
        if n_pairs != len(params):
            return 400, "InvalidParameter"  # a parameter given twice
        for name, value in _COMMON.items():
            if params.get(name) != value:
                return 400, "MissingParameter" if name not in params else "InvalidParameter"
        if params.get("Format", "XML") not in ("JSON", "XML"):
            return 400, "InvalidParameter"
        try:
            ts = datetime.strptime(params.get("Timestamp", ""), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            return 400, "InvalidTimeStamp.Format"
        if abs(ts.timestamp() - type(self).clock()) > 900:
            return 400, "InvalidTimeStamp.Expired"
        if params.get("AccessKeyId") != ACCESS_KEY_ID:
            return 404, "InvalidAccessKeyId.NotFound"
        given = params.get("Signature", "")
        if not hmac.compare_digest(given.encode(), expected_signature(params, ACCESS_KEY_SECRET).encode()):
            return 400, "SignatureDoesNotMatch"
        nonce = params.get("SignatureNonce", "")
        if not nonce or nonce in self.nonces:
            return 400, "SignatureNonceUsed"
        self.nonces.add(nonce)
        if not _MAINLAND_MOBILE.match(params.get("PhoneNumbers", "")):
            return 200, "isv.MOBILE_NUMBER_ILLEGAL"
        if params.get("SignName") != SIGN_NAME:
            return 200, "isv.SMS_SIGNATURE_ILLEGAL"
        if params.get("TemplateCode") not in TEMPLATES:
            return 200, "isv.SMS_TEMPLATE_ILLEGAL"
        try:
            tp = json.loads(params.get("TemplateParam") or "{}")
        except ValueError:
            return 200, "isv.INVALID_JSON_PARAM"
        if not isinstance(tp, dict) or not all(isinstance(v, str) for v in tp.values()):
            return 200, "isv.INVALID_JSON_PARAM"
        return 200, None


def sms_config(endpoint: str) -> dict[str, Any]:
    """keliu's ``[sms]`` values for a stand-in at ``endpoint`` (host:port), with its account."""
    return {"backend": "aliyun", "aliyun_scheme": "http", "aliyun_endpoint": endpoint,
            "aliyun_access_key_id": ACCESS_KEY_ID, "aliyun_access_key_secret": ACCESS_KEY_SECRET,
            "aliyun_sign_name": SIGN_NAME, "aliyun_template_code": "SMS_100000001"}


class FakeAliyunSms:
    """``with FakeAliyunSms() as fake:`` a running stand-in on 127.0.0.1; ``fake.endpoint`` (host:port) is keliu's
    ``sms.aliyun_endpoint`` (with ``aliyun_scheme = "http"``), ``fake.handler`` holds what it recorded."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.handler: type[AliyunStandIn] = type("Handler", (AliyunStandIn,), {
            "received": [], "nonces": set(), "next_codes": [], "clock": staticmethod(clock)})
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self.handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def config(self) -> dict[str, Any]:
        """keliu's ``[sms]`` values that point at this stand-in."""
        return sms_config(self.endpoint)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
