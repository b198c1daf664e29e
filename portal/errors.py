"""Errors of the portal (pure). Each carries the HTTP status and a stable machine code shown to clients.

    PortalError (keliu.errors.KeliuError)   status, code, message
    ├── BadRequest              400  malformed body, not UTF-8, not JSON, oversized (413), unknown field
    │   ├── InvalidPhone        400  not a valid mobile number
    │   ├── ConsentMissing      400  the required access terms were not accepted
    │   ├── CodeRejected        400  wrong, expired, already used or never requested code
    │   └── BadPush             400  a WeChat push we cannot read (portal.wechat.official_account)
    ├── RateLimited             429  too many requests; ``retry_after`` seconds
    ├── UnknownClient           403  no MAC for the source address (the client is not on the LAN)
    ├── CrossOrigin             403  a state-changing API request sent by another site's page (Origin)
    ├── NotFound                404
    ├── SmsFailed               502  the SMS provider refused (or, ``transient``, could not be reached or asked to
    │                                try later); wraps the SDK's or the HTTP error
    ├── WechatApiError          502  WeChat refused a call or could not be reached (portal.wechat.oauth)
    ├── Unavailable             503  the database cannot be reached; ``retry_after`` seconds (nothing was stored)
    └── caught inside the portal, never answered as such:
        AlreadyBound (portal.wechat.store), ExtendRejected (portal.wechat.extend), _Stop (portal.serve.http11)

Every exception the portal defines derives from PortalError (tests/test_contracts.py walks the package).
Views never build error responses by hand: they raise one of these and ``portal.web.pages`` renders it as JSON
(``{"error": code, "message": ...}``) for API requests or as the splash page with the message for forms.
"""
from __future__ import annotations

from keliu.errors import KeliuError


class PortalError(KeliuError):
    status = 500
    code = "error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class BadRequest(PortalError):
    status = 400
    code = "bad_request"


class PayloadTooLarge(BadRequest):
    status = 413
    code = "too_large"


class InvalidPhone(BadRequest):
    code = "invalid_phone"


class ConsentMissing(BadRequest):
    code = "consent_required"


class CodeRejected(BadRequest):
    code = "code_rejected"


class RateLimited(PortalError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code)
        self.retry_after = max(1, int(retry_after))


class UnknownClient(PortalError):
    status = 403
    code = "unknown_client"


class CrossOrigin(PortalError):
    status = 403
    code = "cross_origin"


class NotFound(PortalError):
    status = 404
    code = "not_found"


class SmsFailed(PortalError):
    """``transient``: the provider could not be reached or asked to try later (a retry may succeed); otherwise it
    refused this message (a bad number, a limit, a template): sending it again cannot help."""

    status = 502
    code = "sms_failed"

    def __init__(self, message: str, code: str | None = None, *, transient: bool = False) -> None:
        super().__init__(message, code)
        self.transient = transient


class Unavailable(PortalError):
    """The database is down or a pooled connection died: the request stored nothing and opened nothing."""

    status = 503
    code = "unavailable"
    retry_after = 5
