"""What a successful login stores, decided once (pure: no SQL, no clock, no keys, no files).

Every login method (SMS code, 微信连Wi-Fi) ends the same way: the proof of the login is used up (an SMS code marked
used, a WeChat extend nonce recorded), the member is found or created (by phone, or by WeChat openid through its
identity), the member's consents are appended, and a login record, the device in this store (with its (MAC . IP)
binding and re-authorization choice), a session and the sensor registry's consent (c) are written; the landing URL
the device first asked for is taken out. :func:`plan_login` turns the login's inputs into one :class:`LoginPlan`
value that says all of it; the executors in :mod:`portal.store.login_store` only render that value into SQL (statement by
statement, or PostgreSQL's one statement), so they cannot disagree about *what* is stored.

The consent kinds are defined here, once (:data:`CONSENT_KINDS`): the splash and WeChat forms, the API, the WeChat
extend token, the texts' versions (:mod:`portal.core.i18n`) and the consent rows all follow this tuple.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from keliu.accesslog.chain import NO_NAT, Nat
from portal.core.sessions import Policy, grant_until
from portal.errors import ConsentMissing

#: every decision a shopper takes at login, in the order they are stored; ``terms`` (real-name verification) is
#: required, the others are optional and unticked by default
CONSENT_KINDS: tuple[str, ...] = ("terms", "marketing", "analytics", "reauth")
REQUIRED_CONSENT = "terms"
OPTIONAL_CONSENTS: tuple[str, ...] = tuple(k for k in CONSENT_KINDS if k != REQUIRED_CONSENT)
#: separate consents a member gives or withdraws on the member page only, never at login, each apart from the
#: marketing consent and from SMS/WeChat marketing: ``presence_offers`` (offers triggered by the member's presence
#: in the store: movement tracks are sensitive personal information, PIPL art. 28, so its own consent) and
#: ``trade_area`` (offers from the mall's other stores). Marketing's contact policy reads them
#: (portal.store.marketing_members); their rows are versioned and appended like the login's.
MEMBER_PAGE_CONSENTS: tuple[str, ...] = ("presence_offers", "trade_area")

Method = Literal["sms", "wechat"]


@dataclass(frozen=True)
class Choices:
    """The shopper's choices on the splash: ``terms`` is required, the others are optional and unticked."""

    terms: bool
    marketing: bool = False
    analytics: bool = False
    reauth: bool = False

    def require_terms(self) -> None:
        if not self.terms:
            raise ConsentMissing("the access terms (real-name verification) must be accepted", "consent_required")

    def granted(self, kind: str) -> bool:
        return bool(getattr(self, kind))

    @classmethod
    def of(cls, ticked: Mapping[str, bool] | frozenset[str]) -> Choices:
        """From ticked kinds (a set) or kind → bool; unknown kinds are ignored (callers validate their input)."""
        if isinstance(ticked, frozenset):
            return cls(**{k: k in ticked for k in CONSENT_KINDS})
        return cls(**{k: bool(ticked.get(k, False)) for k in CONSENT_KINDS})


# --- the proof a login uses up: nothing is stored unless it could be ------------------------------------------


@dataclass(frozen=True)
class UseCode:
    """Mark the SMS code used (verified under its row lock by ``portal.store.sms_login.consume_code``)."""

    code_id: int
    max_tries: int


@dataclass(frozen=True)
class UseNonce:
    """Record the WeChat extend token's nonce (a replay finds it recorded)."""

    nonce: str
    store_id: str
    expires_at: datetime


# --- who logs in ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhoneMember:
    """The member of this E.164 number, created on first sight (its last-seen time refreshed otherwise)."""

    phone_e164: str


@dataclass(frozen=True)
class WechatMember:
    """The member the WeChat identity (``app_id``, ``openid``) is bound to; if it is unbound (or new), the
    WeChat-only member of that openid, created on first sight, and the identity bound to it."""

    app_id: str
    openid: str


# --- what is written ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsentRow:
    kind: str
    version: str
    granted: bool


@dataclass(frozen=True)
class RegistryChange:
    """Consent (c) in the sensor's registry: the device's stable id registered as a member's (``link``; an opt-out
    stays) or a member's registration withdrawn (an opt-out stays too)."""

    device_id: str
    link: bool
    since: float


@dataclass(frozen=True)
class Authorized:
    """What a stored login (or re-authorization) returns: its session and where the client goes next."""

    session_id: int
    member_id: int
    until: datetime
    landing_url: str | None


@dataclass(frozen=True)
class LoginPlan:
    """Everything one login stores, in the values the rows get."""

    proof: UseCode | UseNonce
    member: PhoneMember | WechatMember
    method: Method
    store_id: str
    now: datetime
    device_id: str
    ip: str
    lang: str
    #: appended, one per kind of :data:`CONSENT_KINDS`
    consents: tuple[ConsentRow, ...]
    #: ``None`` when the client's MAC is unknown (nothing to register)
    registry: RegistryChange | None
    #: the device's re-authorization, in every store (``None``: withdrawn)
    reauth_until: datetime | None
    #: the (MAC . IP) binding stored for this store
    bound_ip: str
    lease_tag: str | None
    #: the session's end
    until: datetime
    #: what the access log records beside the member (MPS Order 82): the device's MAC (``None``: unknown) and
    #: where its connections are translated to
    mac: str | None = None
    nat: Nat = NO_NAT


def plan_login(*, proof: UseCode | UseNonce, member: PhoneMember | WechatMember, method: Method, store_id: str,
               now: datetime, device_id: str, ip: str, lang: str, choices: Choices, versions: Mapping[str, str],
               registry_id: str | None, bound_ip: str, lease_tag: str | None, policy: Policy,
               mac: str | None = None, nat: Nat = NO_NAT) -> LoginPlan:
    """The plan of a login. ``versions``: the version of each consent text shown (``portal.core.i18n``);
    ``registry_id``: the device's stable sensor id (``None`` without a MAC); ``policy``: the session's and the
    re-authorization's lengths. Raises ConsentMissing without the terms."""
    choices.require_terms()
    return LoginPlan(
        proof=proof, member=member, method=method, store_id=store_id, now=now, device_id=device_id, ip=ip,
        lang=lang,
        consents=tuple(ConsentRow(k, versions[k], choices.granted(k)) for k in CONSENT_KINDS),
        registry=None if registry_id is None else RegistryChange(registry_id, choices.analytics, now.timestamp()),
        reauth_until=now + timedelta(seconds=policy.reauth_s) if choices.reauth else None,
        bound_ip=bound_ip, lease_tag=lease_tag, until=grant_until(policy, now), mac=mac, nat=nat)
