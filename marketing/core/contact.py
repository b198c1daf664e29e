"""The contact policy: may this message go to this member now? Decided at send time, across every channel.

A send is refused or suppressed, never sent, when (checked in this order; the first reason is recorded):

``withdrawn``        the member refused marketing on this channel (an SMS reply "R"/"T"/"TD", the member page);
``no_consent:<p>``   a purpose the send needs was not consented to: every push channel needs its own marketing
                     consent (``sms_marketing``, ``wechat_marketing`` (template messages and the member card); the
                     Wi-Fi success page and the webhook need
                     ``marketing``), a presence trigger also needs ``presence_offers`` (movement tracks are
                     sensitive personal information, PIPL art. 28), a trade-area offer also needs ``trade_area``;
``no_card``          (and any :attr:`Send.unreachable`) the channel cannot reach the member: a ``wechat_card`` send
                     to a member without an activated WeChat member card;
``quiet_hours``      a push inside the quiet hours in the store's time zone (default 20:00–08:00); ``not_before``
                     says when it may go;
``provider_hours``   a push inside hours the channel's provider forbids, whatever the quiet hours are configured to
                     (:attr:`Send.provider_hours`, from marketing.core.sms_rules: Aliyun, no promotional SMS
                     20:00–08:00); ``not_before`` likewise;
``cooldown``         this campaign reached this member less than its cooldown ago;
``daily_cap``        the member already got ``daily_cap`` pushes today (their local day, every channel together);
``channel_cap``      the member already got this channel's cap today.

The two caps are counts, and counts under concurrency belong to the store: :func:`decide` checks them against the
counts it is given (so a report can explain a suppression), and the store enforces them again with one atomic
conditional increment (marketing.store), which is what two workers racing for one member meet.

The Wi-Fi success page answers the shopper's own login: it is exempt from quiet hours and from the caps (it pushes
nothing), but it needs the marketing consent like every other channel.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Channel = Literal["splash", "sms", "wechat", "wechat_card", "webhook"]
CHANNELS: tuple[Channel, ...] = ("splash", "sms", "wechat", "wechat_card", "webhook")
#: channels that push a message to the member (the splash page only answers the shopper's own request; the member
#: card's update comes with WeChat's notification)
PUSH_CHANNELS: frozenset[str] = frozenset({"sms", "wechat", "wechat_card", "webhook"})
#: the consent each channel needs
CHANNEL_PURPOSE: Mapping[str, str] = {"splash": "marketing", "sms": "sms_marketing", "wechat": "wechat_marketing",
                                      "wechat_card": "wechat_marketing", "webhook": "marketing"}
#: a channel whose member refusals are another's (a refusal of WeChat marketing covers the member card)
REFUSED_AS: Mapping[str, str] = {"wechat_card": "wechat"}
PURPOSES: tuple[str, ...] = ("marketing", "sms_marketing", "wechat_marketing", "presence_offers", "trade_area")


@dataclass(frozen=True)
class ContactPolicy:
    daily_cap: int = 3
    channel_caps: Mapping[str, int] = field(default_factory=lambda: {"sms": 1, "wechat": 2, "wechat_card": 1,
                                                                     "webhook": 3})
    quiet_start: time = time(20, 0)
    quiet_end: time = time(8, 0)

    def __post_init__(self) -> None:
        if self.daily_cap < 0:
            raise ValueError(f"daily_cap: expected >= 0, got {self.daily_cap}")
        for channel, cap in self.channel_caps.items():
            if channel not in PUSH_CHANNELS:
                raise ValueError(f"channel_caps.{channel}: not a push channel ({sorted(PUSH_CHANNELS)})")
            if cap < 0:
                raise ValueError(f"channel_caps.{channel}: expected >= 0, got {cap}")

    def channel_cap(self, channel: str) -> int:
        return self.channel_caps.get(channel, self.daily_cap)


@dataclass(frozen=True)
class Send:
    """One intended message: to whom, on which channel, for which campaign, and what it needs beyond the channel."""

    member_id: int
    campaign_id: int
    channel: Channel
    store_timezone: str
    presence_triggered: bool = False
    trade_area: bool = False
    cooldown: timedelta = timedelta(0)
    #: local hours (start, end) in which the channel's provider forbids this push (marketing.core.sms_rules)
    provider_hours: tuple[time, time] | None = None
    #: why the channel cannot reach this member at all (``no_card``: no activated WeChat member card), or None
    unreachable: str | None = None


@dataclass(frozen=True)
class MemberFacts:
    """What the store knows about the member at send time."""

    consents: frozenset[str]
    withdrawn_channels: frozenset[str] = frozenset()
    sent_today: int = 0
    sent_today_by_channel: Mapping[str, int] = field(default_factory=dict)
    last_sent_for_campaign: datetime | None = None


@dataclass(frozen=True)
class Decision:
    send: bool
    reason: str | None = None
    #: for ``quiet_hours``: the first instant (UTC) the message may go
    not_before: datetime | None = None


SEND = Decision(True)


def needed_purposes(send: Send) -> tuple[str, ...]:
    needed = [CHANNEL_PURPOSE[send.channel]]
    if send.presence_triggered:
        needed.append("presence_offers")
    if send.trade_area:
        needed.append("trade_area")
    return tuple(needed)


def local_day(now: datetime, tz: str) -> date:
    """The member's day for the caps: the calendar day in the store's time zone."""
    return _aware(now).astimezone(ZoneInfo(tz)).date()


def quiet_until(policy: ContactPolicy, now: datetime, tz: str) -> datetime | None:
    """None outside the quiet hours; inside them, the (UTC) instant they end."""
    return window_until(policy.quiet_start, policy.quiet_end, now, tz)


def window_until(start: time, end: time, now: datetime, tz: str) -> datetime | None:
    """None outside the local hours [start, end) (across midnight when start > end); inside, the (UTC) instant they
    end."""
    zone = ZoneInfo(tz)
    local = _aware(now).astimezone(zone)
    if start == end:
        return None  # no quiet hours
    t = local.timetz().replace(tzinfo=None)
    inside = (start <= t or t < end) if start > end else (start <= t < end)
    if not inside:
        return None
    day = local.date() if t < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=zone).astimezone(UTC)


def decide(policy: ContactPolicy, send: Send, facts: MemberFacts, now: datetime) -> Decision:
    """Whether ``send`` may go now (see the module's docstring for the order of the checks)."""
    if send.channel not in CHANNELS:
        raise ValueError(f"channel: expected one of {CHANNELS}, got {send.channel!r}")
    if send.channel in facts.withdrawn_channels or REFUSED_AS.get(send.channel) in facts.withdrawn_channels:
        return Decision(False, "withdrawn")
    for purpose in needed_purposes(send):
        if purpose not in facts.consents:
            return Decision(False, f"no_consent:{purpose}")
    if send.unreachable is not None:
        return Decision(False, send.unreachable)
    if send.channel not in PUSH_CHANNELS:
        return SEND
    until = quiet_until(policy, now, send.store_timezone)
    if until is not None:
        return Decision(False, "quiet_hours", until)
    if send.provider_hours is not None:
        until = window_until(*send.provider_hours, now, send.store_timezone)
        if until is not None:
            return Decision(False, "provider_hours", until)
    last = facts.last_sent_for_campaign
    if last is not None and send.cooldown > timedelta(0) and _aware(now) - _aware(last) < send.cooldown:
        return Decision(False, "cooldown")
    if facts.sent_today >= policy.daily_cap:
        return Decision(False, "daily_cap")
    if facts.sent_today_by_channel.get(send.channel, 0) >= policy.channel_cap(send.channel):
        return Decision(False, "channel_cap")
    return SEND


#: what a send's claim settled for good (its counts and the cooldown); everything else can change between the claim
#: and the channel call, and is checked again then
SETTLED = ("cooldown", "daily_cap", "channel_cap")


def recheck(policy: ContactPolicy, send: Send, consents: frozenset[str], withdrawn: frozenset[str],
            now: datetime) -> Decision:
    """At the channel call of a send claimed earlier (a batch claimed ahead, a retry after a transient failure, a
    send taken over from a dead worker): a withdrawal, a missing consent, an unreachable member, the quiet hours or
    the provider's forbidden hours stop it still."""
    decision = decide(policy, send, MemberFacts(consents=consents, withdrawn_channels=withdrawn), now)
    if decision.send or decision.reason in SETTLED:
        return SEND
    return decision


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("time: expected an aware datetime (UTC), got a naive one")
    return moment
