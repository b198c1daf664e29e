"""Sending SMS codes: one interface, three backends (edges).

- ``console``: prints ``keliu sms: <masked phone> code <code>`` to stdout (the demo and the E2E tests read it). It
  also keeps the last code per phone in memory for unit tests; nothing is written to disk.
- ``tencent``: Tencent Cloud SMS (``SendSms``, API 2021-01-11) through its official Python SDK, which signs each
  request with TC3-HMAC-SHA256. The endpoint and scheme are configurable so that tests point the real SDK at a
  local server that verifies the signature.
- ``aliyun``: Aliyun SMS (dysmsapi ``SendSms``, API 2017-05-25), an RPC request signed with HMAC-SHA1 (Signature
  v1) by keliu's own code (:mod:`portal.core.aliyun_sms`, pure), sent with ``requests``; endpoint and scheme
  configurable likewise (tests: :mod:`keliu.testing.aliyun_sms`, a local server that verifies the signature).

The two providers share :class:`TemplateSms`: a login code is one approved template (the configured one, filled with
the code) and a campaign's marketing SMS another (an approved template id, its parameters, and a session context
echoed in delivery receipts, here the send's idempotency key); the composition root hands them to marketing as
``marketing.channels.sms.SmsGateway`` (keliu.tasks). Every provider error becomes :class:`portal.errors.SmsFailed`
``from`` the original, ``transient`` when a later try may succeed (unreachable, throttled, the provider's own
error); the phone number is never in an error or a log line (masked: ``138****5678``).
"""
from __future__ import annotations

import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol, TextIO

import requests

from portal.config import SmsConfig
from portal.core import aliyun_sms
from portal.core.phone import mask
from portal.errors import SmsFailed

log = logging.getLogger("keliu.portal.sms")


class SmsBackend(Protocol):
    def send(self, e164: str, code: str, lang: str) -> None: ...


class ConsoleSms:
    provider = "console"

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


class TemplateSms:
    """What the providers' backends share: the login code and a campaign's SMS are each one approved template sent
    through :meth:`_send` (the provider's own request), and a failure is logged with the number masked."""

    provider = ""

    def __init__(self, cfg: SmsConfig) -> None:
        self.cfg = cfg

    def code_template(self) -> str:
        """The approved template of the login code."""
        raise NotImplementedError

    def code_params(self, code: str) -> list[str]:
        """The login code's template parameters."""
        raise NotImplementedError

    def send(self, e164: str, code: str, lang: str) -> None:
        self._checked(e164, self.code_template(), self.code_params(code), None)

    def send_marketing(self, e164: str, template_id: str, params: Sequence[str], session: str) -> str:
        """A templated marketing SMS; the provider's id of it."""
        return self._checked(e164, template_id, list(params), session)

    def _checked(self, e164: str, template_id: str, params: list[str], session: str | None) -> str:
        try:
            return self._send(e164, template_id, params, session)
        except SmsFailed as exc:
            log.warning("sms via %s to %s failed%s: %s", self.provider, mask(e164),
                        " (transient)" if exc.transient else "", exc.message)
            raise

    def _send(self, e164: str, template_id: str, params: list[str], session: str | None) -> str:
        """One templated SMS; the provider's id of it. Raises SmsFailed."""
        raise NotImplementedError


class TencentSms(TemplateSms):
    provider = "tencent"

    def __init__(self, cfg: SmsConfig, timeout_s: int = 10) -> None:
        super().__init__(cfg)
        from tencentcloud.common import credential
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile
        from tencentcloud.sms.v20210111 import sms_client

        http = HttpProfile(protocol=cfg.tencent_scheme, endpoint=cfg.tencent_endpoint, reqTimeout=timeout_s)
        profile = ClientProfile(signMethod="TC3-HMAC-SHA256", httpProfile=http)
        cred = credential.Credential(cfg.tencent_secret_id, cfg.tencent_secret_key)
        self._client = sms_client.SmsClient(cred, cfg.tencent_region, profile)

    def code_template(self) -> str:
        return str(self.cfg.tencent_template_id)

    def code_params(self, code: str) -> list[str]:
        return [code, str(self.cfg.code_ttl_s // 60)]  # the template's {1} and {2}

    def _send(self, e164: str, template_id: str, params: list[str], session: str | None) -> str:
        """One templated SMS through the SDK; its serial number."""
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
            raise SmsFailed(f"Tencent Cloud SMS unreachable: {type(exc).__name__}", transient=True) from exc
        statuses = resp.SendStatusSet or []
        if not statuses or statuses[0].Code != "Ok":
            raise SmsFailed(f"Tencent Cloud SMS did not send: {statuses[0].Code if statuses else 'no status'}")
        return str(statuses[0].SerialNo or "")


class AliyunSms(TemplateSms):
    """Aliyun's ``SendSms`` (:mod:`portal.core.aliyun_sms` builds and signs the request, reads the answer). The
    clock and the nonce are injectable for tests; the secret is never shown (``repr``, errors, logs)."""

    provider = "aliyun"

    def __init__(self, cfg: SmsConfig, timeout_s: float = 10.0, clock: Callable[[], float] = time.time,
                 nonce: Callable[[], str] = lambda: uuid.uuid4().hex) -> None:
        super().__init__(cfg)
        assert cfg.aliyun_access_key_id and cfg.aliyun_access_key_secret  # SmsConfig.validate requires them
        self._creds = aliyun_sms.Credentials(cfg.aliyun_access_key_id, cfg.aliyun_access_key_secret)
        self._timeout_s, self._clock, self._nonce = timeout_s, clock, nonce
        self._session = requests.Session()

    def __repr__(self) -> str:
        return f"AliyunSms(endpoint={self.cfg.aliyun_endpoint!r}, {self._creds!r})"

    def code_template(self) -> str:
        return str(self.cfg.aliyun_template_code)

    def code_params(self, code: str) -> list[str]:
        return [f"code={code}"]  # the verification template's ${code}

    def _send(self, e164: str, template_id: str, params: list[str], session: str | None) -> str:
        try:
            query = aliyun_sms.send_sms_query(
                self._creds, region=self.cfg.aliyun_region, sign_name=str(self.cfg.aliyun_sign_name),
                template_code=template_id, e164=e164, params=params, out_id=session, nonce=self._nonce(),
                now=datetime.fromtimestamp(self._clock(), UTC))
        except ValueError as exc:
            raise SmsFailed(f"Aliyun SMS: {exc}") from exc
        try:
            resp = self._session.get(aliyun_sms.url(self.cfg.aliyun_scheme, self.cfg.aliyun_endpoint, query),
                                     timeout=self._timeout_s)
        except requests.RequestException as exc:
            raise SmsFailed(f"Aliyun SMS unreachable: {type(exc).__name__}", transient=True) from exc
        got = aliyun_sms.outcome(resp.status_code, resp.content)
        if not got.sent:
            raise SmsFailed(f"Aliyun SMS refused the request: {got.reason}", transient=got.transient)
        return got.biz_id


def make_backend(cfg: SmsConfig) -> SmsBackend:
    if cfg.backend == "tencent":
        return TencentSms(cfg)
    if cfg.backend == "aliyun":
        return AliyunSms(cfg)
    return ConsoleSms()
