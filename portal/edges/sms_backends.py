"""Sending SMS codes: one interface, two backends (edges).

- ``console``: prints ``keliu sms: <masked phone> code <code>`` to stdout (the demo and the E2E tests read it). It
  also keeps the last code per phone in memory for unit tests; nothing is written to disk.
- ``tencent``: Tencent Cloud SMS (``SendSms``, API 2021-01-11) through its official Python SDK, which signs each
  request with TC3-HMAC-SHA256. The endpoint and scheme are configurable so that tests point the real SDK at a
  local server that verifies the signature.

Any SDK error becomes :class:`portal.errors.SmsFailed` ``from`` the original.

Both also send campaigns' templated marketing SMS (``send_marketing``: an approved template id, its parameters, and
a session context echoed in delivery receipts, here the send's idempotency key); the composition root hands them to
marketing as ``marketing.channels.sms.SmsGateway`` (keliu.tasks).
"""
from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from typing import Protocol, TextIO

from portal.config import SmsConfig
from portal.core.phone import mask
from portal.errors import SmsFailed


class SmsBackend(Protocol):
    def send(self, e164: str, code: str, lang: str) -> None: ...


class ConsoleSms:
    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out
        self._lock = threading.Lock()
        self.last: dict[str, str] = {}

    def send(self, e164: str, code: str, lang: str) -> None:
        with self._lock:
            self.last[e164] = code
        out = self._out or sys.stdout
        print(f"keliu sms: {mask(e164)} code {code}", file=out, flush=True)

    def send_marketing(self, e164: str, template_id: str, params: Sequence[str], session: str) -> str:
        out = self._out or sys.stdout
        print(f"keliu sms: {mask(e164)} template {template_id} {list(params)} ({session})", file=out, flush=True)
        return f"console:{session}"


class TencentSms:
    def __init__(self, cfg: SmsConfig, timeout_s: int = 10) -> None:
        from tencentcloud.common import credential
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile
        from tencentcloud.sms.v20210111 import sms_client

        self.cfg = cfg
        http = HttpProfile(protocol=cfg.tencent_scheme, endpoint=cfg.tencent_endpoint, reqTimeout=timeout_s)
        profile = ClientProfile(signMethod="TC3-HMAC-SHA256", httpProfile=http)
        cred = credential.Credential(cfg.tencent_secret_id, cfg.tencent_secret_key)
        self._client = sms_client.SmsClient(cred, cfg.tencent_region, profile)

    def send(self, e164: str, code: str, lang: str) -> None:
        self._send(e164, self.cfg.tencent_template_id, [code, str(self.cfg.code_ttl_s // 60)])

    def send_marketing(self, e164: str, template_id: str, params: Sequence[str], session: str) -> str:
        """A templated marketing SMS; Tencent's serial number of it."""
        return self._send(e164, template_id, list(params), session)

    def _send(self, e164: str, template_id: str | None, params: list[str], session: str | None = None) -> str:
        """One templated SMS through the SDK (the login code's and the marketing ones); its serial number."""
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
        from tencentcloud.sms.v20210111 import models

        req = models.SendSmsRequest()
        req.PhoneNumberSet = [e164]
        req.SmsSdkAppId = self.cfg.tencent_sdk_app_id
        req.SignName = self.cfg.tencent_sign_name
        req.TemplateId = template_id
        req.TemplateParamSet = params
        if session is not None:
            req.SessionContext = session
        try:
            resp = self._client.SendSms(req)
        except TencentCloudSDKException as exc:
            raise SmsFailed(f"Tencent Cloud SMS refused the request: {exc.code}") from exc
        except Exception as exc:  # the SDK wraps transport errors inconsistently across versions
            raise SmsFailed(f"Tencent Cloud SMS unreachable: {type(exc).__name__}") from exc
        statuses = resp.SendStatusSet or []
        if not statuses or statuses[0].Code != "Ok":
            raise SmsFailed(f"Tencent Cloud SMS did not send: {statuses[0].Code if statuses else 'no status'}")
        return str(statuses[0].SerialNo or "")


def make_backend(cfg: SmsConfig) -> SmsBackend:
    if cfg.backend == "tencent":
        return TencentSms(cfg)
    return ConsoleSms()
