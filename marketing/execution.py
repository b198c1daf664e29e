"""Running a campaign: triggers find members, every send is claimed, sent once and recorded (an edge: SQL and the
channels; the decisions are marketing.core's).

One message to one member (:func:`deliver`):

1. **claim and decide** (marketing.store.contact.reserve): the row of (campaign, step, member) is claimed in the
   transaction that reads consents and counts; a second claim is a ``duplicate``; a suppressed or control send is
   recorded and ends here;
2. **lease** (:func:`_take`): ``reserved`` → ``sending`` with ``lease_until = now + send_lease_s`` and ``attempts
   + 1``, in one conditional ``UPDATE``: one worker holds a send at a time;
3. **send** through the channel with the idempotency key ``keliu-<campaign>-<step>-<member>``;
4. **mark** ``sent`` (with the channel's message id) or, after a refusal or ``max_attempts`` calls, ``failed``
   with the error; a transient failure goes back to ``reserved`` and is retried with a backoff. A failed send is
   a row with its error, never lost.

The Wi-Fi success page is stored in the lease's own transaction, together with ``sent``: exactly once.

A beat campaign's run claims and decides its sends first, :data:`CLAIM_BATCH` a transaction (:func:`claim`,
marketing.store.contact.reserve_many), and queues a delivery only for what may go; the delivery finds its claim
(``duplicate`` of a ``reserved`` row) and goes on from the lease. Before any channel call, what can change after a
claim — a withdrawal, a missing consent, the quiet hours — is checked again in the lease's transaction
(marketing.core.contact.recheck): a send it stops is recorded ``suppressed`` with the reason.

**A campaign with an offer** (not ``expiring``, whose offer names the coupons that expire) issues the treated
member's coupon in the lease's transaction (:func:`marketing.store.coupons.issue_for_send`: the offer's validity,
its cap and the member's limit; tied to the send's row, so a retried or re-leased send finds the coupon and issues
no second one) and puts its code into the message (:func:`marketing.core.campaign_spec.with_coupon`; an SMS's
coupon is on the member card only). A control send ends at the claim and gets none. When the coupon cannot be
issued the send is ``suppressed`` with ``offer:<refusal>`` (``offer:member_limit``, ``offer:issue_limit``,
``offer:expired``, ``offer:offer_inactive``) and the counts its reservation raised are given back: nothing is sent.

**A worker killed mid-send** leaves its row ``sending`` and its task unacknowledged (``acks_late``); the task comes
back (RabbitMQ: when the connection drops; Redis: after the visibility timeout) and finds the lease still held: it
waits for the lease to run out (a retry with that countdown), then takes the send over and calls the channel again
with the **same key**. A send whose task was lost altogether is picked up by the beat's :func:`stale_sends`. The
trade-off: a worker that died *after* the channel took the message and *before* ``sent`` was committed makes a
second call. Where the channel deduplicates by key — the webhook (its receiver keeps ``Idempotency-Key``), WeChat
(``client_msg_id``, WeChat's anti-reentry id) and the success page (one row per send) — the member gets exactly one
message; the SMS providers do not deduplicate, so an SMS killed in that window of milliseconds may arrive twice
(at-least-once). The other choice, never retrying a ``sending`` row, would lose every message whose worker died
before the call (at-most-once); a marketing text lost is worse for the campaign's measurement (a treated member
who got nothing) than a rare duplicate, and the caps still count the send once.

Step numbers: ``login_first``, ``lapsed`` and ``scheduled`` send once per member (step 0); ``login_return``,
``visit`` and ``dwell`` at most once per member and local day (step = the day's ordinal); ``expiring`` once per
coupon (step = the coupon's id).
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from analytics.store import visits
from keliu.tenants import STORES
from marketing.channels import Outgoing, PushChannel, splash
from marketing.channels.sms import SmsChannel
from marketing.core import campaign_spec as spec
from marketing.core import contact, webhook
from marketing.core.contact import ContactPolicy, Send
from marketing.errors import ChannelFailed
from marketing.members import MemberCards, MemberContacts
from marketing.store import audience, coupons, segments
from marketing.store import contact as contact_store
from marketing.store.audience import MEMBERS
from marketing.store.campaigns import campaign_members, campaign_sends, campaigns
from marketing.store.models import coupons as coupons_t
from marketing.store.segments import REGISTRY

log = logging.getLogger("keliu.marketing")


@dataclass
class Deps:
    """What execution needs, assembled by the composition root."""

    engine: Engine
    contacts: MemberContacts
    #: push channels by name ("sms", "wechat", "wechat_card", "webhook"); the success page needs none
    channels: Mapping[str, PushChannel] = field(default_factory=dict)
    policy: ContactPolicy = field(default_factory=ContactPolicy)
    lease: timedelta = timedelta(seconds=120)
    max_attempts: int = 5
    #: the members' activated WeChat member cards (the ``wechat_card`` channel); None: nobody has one
    cards: MemberCards | None = None


@dataclass(frozen=True)
class Campaign:
    id: int
    store_id: str | None
    mall_id: str | None
    trigger: str
    channel: str
    category: str
    status: str
    control_share: float
    salt: str
    cooldown: timedelta
    params: spec.Params
    content: spec.Content
    webhook_secret: str
    timezone: str


@dataclass(frozen=True)
class Result:
    #: sent, failed, suppressed, control, duplicate, in_flight (someone holds the lease), retry (transient
    #: failure), inactive (not an approved campaign)
    status: str
    reason: str | None = None
    #: for in_flight and retry: seconds after which to try again
    retry_in: float | None = None


def load(conn: Connection, campaign_id: int) -> Campaign | None:
    row = conn.execute(sa.select(campaigns).where(campaigns.c.id == campaign_id)).mappings().first()
    if row is None:
        return None
    store = row["store_id"]
    tz_q = sa.select(STORES.c.timezone)
    tz_q = tz_q.where(STORES.c.id == store) if store else tz_q.where(STORES.c.mall_id == row["mall_id"])
    tz = conn.execute(tz_q.order_by(STORES.c.id).limit(1)).scalar() or "Asia/Shanghai"
    params = spec.parse_params(row["params"] or "{}")
    if params.send_at is not None and params.send_at.tzinfo is None:  # the editor's store-local time
        params = dataclasses.replace(params, send_at=params.send_at.replace(tzinfo=ZoneInfo(str(tz))))
    return Campaign(id=row["id"], store_id=store, mall_id=row["mall_id"], trigger=row["trigger"],
                    channel=row["channel"], category=row["category"], status=row["status"],
                    control_share=row["control_share"], salt=row["salt"],
                    cooldown=timedelta(seconds=row["cooldown_s"]), params=params,
                    content=spec.parse_content(row["message"] or "{}"), webhook_secret=row["webhook_secret"] or "",
                    timezone=str(tz))


def provider_hours(deps: Deps, channel: str) -> tuple[time, time] | None:
    """Local hours the channel's provider forbids marketing pushes in (the configured SMS provider's rules)."""
    ch = deps.channels.get(channel)
    return ch.forbidden_hours if isinstance(ch, SmsChannel) else None


def send_of(deps: Deps, conn: Connection, camp: Campaign, member_id: int) -> Send:
    """The campaign's message to one member, as the contact policy sees it (on ``conn``: whether the channel can
    reach the member)."""
    unreachable = None
    if camp.channel == "wechat_card" and _card(deps, conn, member_id) is None:
        unreachable = "no_card"  # decided like consent, for both arms: the holdout compares like with like
    return Send(member_id=member_id, campaign_id=camp.id, channel=camp.channel,  # type: ignore[arg-type]
                store_timezone=camp.timezone, presence_triggered=camp.trigger in spec.PRESENCE_TRIGGERS,
                trade_area=camp.params.trade_area or camp.mall_id is not None, cooldown=camp.cooldown,
                provider_hours=provider_hours(deps, camp.channel), unreachable=unreachable)


#: sends claimed and decided per transaction by a campaign run (:func:`claim`)
CLAIM_BATCH = 100


def claim(deps: Deps, campaign_id: int, due: Sequence[tuple[int, int]], now: datetime,
          batch: int = CLAIM_BATCH) -> list[Result]:
    """Claim and decide a run's (member, step) sends ``batch`` at a time (marketing.store.contact.reserve_many:
    one transaction a batch), each member in their arm; a result per send: ``reserved`` (its channel call is
    :func:`deliver`'s, which finds the claim and goes on from the lease), ``duplicate`` (claimed before: ``deliver``
    finishes it if it is still ``reserved`` or ``sending``), ``suppressed`` with the reason, ``control``,
    ``inactive`` (no approved campaign, or the member was erased). Nothing is sent here: a claimed send waits for
    its channel's rate limit, and what may change meanwhile (a withdrawal, the quiet hours) is checked again at
    the channel call (:func:`transmit`)."""
    with deps.engine.begin() as conn:
        camp = load(conn, campaign_id)
    if camp is None or camp.status != "approved":
        return [Result("inactive")] * len(due)
    out: list[Result] = []
    for start in range(0, len(due), batch):
        chunk = due[start:start + batch]
        with deps.engine.begin() as conn:
            arms = audience.arms_of(conn, camp.id, [m for m, _ in chunk])
            for member_id in sorted({m for m, _ in chunk} - arms.keys()):  # an event's members: enrolled now
                arm = audience.enroll_member(conn, camp.id, camp.salt, camp.control_share, member_id, now)
                if arm is not None:
                    arms[member_id] = arm
            sends = {m: send_of(deps, conn, camp, m) for m in arms}
        planned = [contact_store.Planned(sends[m], step, arms[m] == "control") for m, step in chunk if m in arms]
        decided = iter(contact_store.reserve_many(deps.engine, deps.policy, planned, now,
                                                  deps.contacts.consents_of_many))
        for m, _ in chunk:
            if m not in arms:
                out.append(Result("inactive"))
                continue
            r = next(decided)
            out.append(Result(r.status, None if r.status in ("reserved", "control") else r.decision.reason))
    return out


def deliver(deps: Deps, campaign_id: int, member_id: int, step: int, now: datetime) -> Result:
    """Decide, claim and send one message (see the module's docstring); safe to call any number of times."""
    with deps.engine.begin() as conn:
        camp = load(conn, campaign_id)
        if camp is None or camp.status != "approved":
            return Result("inactive")
        arm = audience.enroll_member(conn, camp.id, camp.salt, camp.control_share, member_id, now)
        if arm is None:  # no such member (erased)
            return Result("inactive")
        send = send_of(deps, conn, camp, member_id)
    r = contact_store.reserve(deps.engine, deps.policy, send, now, deps.contacts.consents_of, step=step,
                              control=arm == "control")
    if r.status == "duplicate":
        s = campaign_sends
        with deps.engine.connect() as conn:
            row = conn.execute(sa.select(s.c.id, s.c.status, s.c.reason).where(
                s.c.campaign_id == camp.id, s.c.step == step, s.c.member_id == member_id)).one()
        if row.status not in ("reserved", "sending"):
            return Result("duplicate", row.status)
        send_id = int(row.id)
    elif r.status != "reserved":
        return Result(r.status, r.decision.reason)
    else:
        assert r.send_id is not None
        send_id = r.send_id
    return transmit(deps, camp, send_id, member_id, step, now)


def _card(deps: Deps, conn: Connection, member_id: int) -> tuple[str, str] | None:
    return None if deps.cards is None else deps.cards.card_of(conn, member_id)


def _take(conn: Connection, send_id: int, now: datetime, lease: timedelta) -> int | None:
    """Lease the send to this worker; the attempt's number, or None when another worker holds it (or it ended)."""
    s = campaign_sends
    took = conn.execute(sa.update(s).where(
        s.c.id == send_id,
        sa.or_(s.c.status == "reserved", sa.and_(s.c.status == "sending", s.c.lease_until < now)),
    ).values(status="sending", attempts=s.c.attempts + 1, lease_until=now + lease).returning(s.c.attempts)).first()
    return None if took is None else int(took[0])


def transmit(deps: Deps, camp: Campaign, send_id: int, member_id: int, step: int, now: datetime) -> Result:
    s = campaign_sends
    with deps.engine.begin() as conn:
        status = conn.execute(sa.select(campaigns.c.status).where(campaigns.c.id == camp.id)).scalar()
        if status != "approved":  # paused between the claim and now: the send waits in ``reserved``
            return Result("inactive")
        attempt = _take(conn, send_id, now, deps.lease)
        if attempt is None:
            row = conn.execute(sa.select(s.c.status, s.c.lease_until).where(s.c.id == send_id)).one()
            if row.status == "sending" and row.lease_until is not None:
                return Result("in_flight", retry_in=max(1.0, (row.lease_until - now).total_seconds() + 1))
            return Result("duplicate", row.status)
        granted, refused = deps.contacts.consents_of(conn, member_id)
        again = contact.recheck(deps.policy, send_of(deps, conn, camp, member_id), granted, refused, now)
        if not again.send:  # withdrawn, consent or quiet hours since the claim: never sent; its count stays
            conn.execute(sa.update(s).where(s.c.id == send_id).values(status="suppressed", reason=again.reason,
                                                                      lease_until=None))
            return Result("suppressed", again.reason)
        key = webhook.idempotency_key(camp.id, step, member_id)
        content, extra = camp.content, dict[str, str]()
        if spec.issues_coupon(camp.trigger, camp.params.offer_id):
            assert camp.params.offer_id is not None
            try:
                with conn.begin_nested():
                    issued = coupons.issue_for_send(conn, send_id=send_id, offer_id=camp.params.offer_id,
                                                    member_id=member_id, store_id=camp.store_id, key=key, now=now)
            except coupons.Refused as exc:
                return _no_coupon(conn, camp, send_id, member_id, exc.reason)
            content = spec.with_coupon(content, camp.channel, issued.display_code)
            extra = {"coupon_code": issued.display_code, "coupon_expires_at": issued.expires_at.isoformat()}
        if camp.channel == "splash":
            splash.queue(conn, send_id=send_id, member_id=member_id, campaign_id=camp.id, store_id=camp.store_id,
                         text=content.text, now=now)
            conn.execute(sa.update(s).where(s.c.id == send_id).values(status="sent", lease_until=None))
            return Result("sent")
        address = ""
        if camp.channel == "sms":
            address = deps.contacts.phone_of(conn, member_id) or ""
        elif camp.channel == "wechat":
            address = deps.contacts.wechat_openid_of(conn, member_id) or ""
        elif camp.channel == "wechat_card" and (card := _card(deps, conn, member_id)) is not None:
            extra["card_id"], address = card
    msg = Outgoing(campaign_id=camp.id, step=step, member_id=member_id, category=camp.category, content=content,
                   key=key, address=address, webhook_secret=camp.webhook_secret, extra=extra, timezone=camp.timezone)
    channel = deps.channels.get(camp.channel)
    try:
        if channel is None:
            raise ChannelFailed(camp.channel, "channel not configured", permanent=True)
        ref = channel.send(msg, now.timestamp())
    except ChannelFailed as exc:
        final = exc.permanent or attempt >= deps.max_attempts
        with deps.engine.begin() as conn:
            conn.execute(sa.update(s).where(s.c.id == send_id, s.c.status == "sending").values(
                status="failed" if final else "reserved", lease_until=None, error=str(exc)[:200]))
        log.info("send %d (campaign %d) failed, attempt %d: %s", send_id, camp.id, attempt, exc)
        return Result("failed", exc.reason) if final else Result("retry", exc.reason, retry_in=float(2 ** attempt))
    with deps.engine.begin() as conn:
        conn.execute(sa.update(s).where(s.c.id == send_id, s.c.status == "sending").values(
            status="sent", lease_until=None, provider_ref=ref[:64] or None, error=None))
    return Result("sent")


def _no_coupon(conn: Connection, camp: Campaign, send_id: int, member_id: int, refusal: str) -> Result:
    """The campaign's coupon could not be issued (the offer's cap, its validity, the member's limit): the send is
    suppressed with that reason, nothing is sent (no message promises a coupon that does not exist), and the counts
    its reservation raised are given back, in the lease's transaction."""
    s = campaign_sends
    ts = conn.execute(sa.select(s.c.ts).where(s.c.id == send_id)).scalar_one()
    reason = f"offer:{refusal}"
    conn.execute(sa.update(s).where(s.c.id == send_id).values(status="suppressed", reason=reason, lease_until=None))
    contact_store.give_back(conn, member_id, contact.local_day(ts, camp.timezone).isoformat(), camp.channel)
    log.info("send %d (campaign %d) suppressed: %s", send_id, camp.id, reason)
    return Result("suppressed", reason)


# -- what each trigger reaches ---------------------------------------------------------------------------------

def _active(conn: Connection, triggers: tuple[str, ...], store_id: str | None = None) -> list[int]:
    c = campaigns
    q = sa.select(c.c.id).where(c.c.status == "approved", c.c.trigger.in_(triggers))
    if store_id is not None:
        mall = sa.select(STORES.c.mall_id).where(STORES.c.id == store_id).scalar_subquery()
        q = q.where(sa.or_(c.c.store_id == store_id, c.c.mall_id == mall))
    return [int(i) for i in conn.execute(q.order_by(c.c.id)).scalars()]


def day_step(now: datetime, tz: str) -> int:
    return contact.local_day(now, tz).toordinal()


def login_sends(engine: Engine, member_id: int, store_id: str, first: bool,
                now: datetime) -> list[tuple[int, str, int]]:
    """(campaign, channel, step) of every approved login campaign of the store (or its mall) this login fires."""
    out = []
    with engine.connect() as conn:
        for cid in _active(conn, ("login_first",) if first else ("login_return",), store_id):
            camp = load(conn, cid)
            assert camp is not None
            if segments.member_in(conn, camp.params.segment, member_id, now):
                out.append((cid, camp.channel, 0 if first else day_step(now, camp.timezone)))
    return out


def presence_sends(engine: Engine, member_id: int, store_id: str, dwell_s: float,
                   now: datetime) -> list[tuple[int, str, int]]:
    """A member's visit started (``dwell_s`` 0) or has lasted ``dwell_s``: the visit campaigns, and the dwell
    campaigns whose ``dwell_minutes`` it reached. The presence consent is checked at send time."""
    out = []
    with engine.connect() as conn:
        for cid in _active(conn, ("visit", "dwell"), store_id):
            camp = load(conn, cid)
            assert camp is not None
            if camp.trigger == "dwell" and dwell_s < camp.params.dwell_minutes * 60:
                continue
            if not segments.member_in(conn, camp.params.segment, member_id, now):
                continue
            out.append((cid, camp.channel, day_step(now, camp.timezone)))
    return out



def presence_seen(engine: Engine, since: datetime) -> list[tuple[int, str, float]]:
    """(member, store, dwell seconds) of the members whose visits (analytics' ``visits``, rolled up every five
    minutes) were active since ``since``: the analytics side of the visit and dwell triggers. Only members whose
    device the portal registered (consent (c)) can be seen; staff visits are left out. Nothing is read when no
    visit or dwell campaign is approved."""
    with engine.connect() as conn:
        if not _active(conn, ("visit", "dwell")):
            return []
        v, r = visits, REGISTRY
        q = sa.select(r.c.member_id, v.c.store, sa.func.max(v.c.dwell_s)).join(r, r.c.registry_id == v.c.device).where(
            v.c.end >= since.timestamp(), v.c.staff.is_(False)).group_by(r.c.member_id, v.c.store)
        return [(int(m), str(st), float(d)) for m, st, d in conn.execute(q.order_by(r.c.member_id, v.c.store))]


def beat_campaigns(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return _active(conn, tuple(sorted(spec.BEAT_TRIGGERS)))


def campaign_sends_due(engine: Engine, campaign_id: int, now: datetime, policy: ContactPolicy,
                       hours: tuple[time, time] | None = None) -> list[tuple[int, int]]:
    """Enroll a beat campaign's members now eligible and yield the (member, step) sends not claimed yet. Nothing
    while its push channel is inside the quiet hours or the provider's forbidden ``hours`` (the beat comes back) or
    before a scheduled ``send_at``."""
    with engine.begin() as conn:
        camp = load(conn, campaign_id)
        if camp is None or camp.status != "approved" or camp.trigger not in spec.BEAT_TRIGGERS:
            return []
        if camp.channel in contact.PUSH_CHANNELS and (
                contact.quiet_until(policy, now, camp.timezone)
                or (hours is not None and contact.window_until(*hours, now, camp.timezone))):
            return []
        seg = camp.params.segment
        where = segments.conditions(seg, now)
        if camp.store_id and not any(c.fact == "store" for c in seg):
            where.append(MEMBERS.c.first_store_id == camp.store_id)
        if camp.trigger == "lapsed":
            where.append(MEMBERS.c.last_seen_at < now - timedelta(days=camp.params.lapsed_days))
        elif camp.trigger == "scheduled" and (camp.params.send_at is None or now < camp.params.send_at):
            return []
        if camp.trigger in ("lapsed", "scheduled"):
            audience.enroll(conn, camp.id, camp.salt, camp.control_share, where, now)
            m, s = campaign_members, campaign_sends
            todo = conn.execute(sa.select(m.c.member_id).where(m.c.campaign_id == camp.id, ~sa.exists().where(
                s.c.campaign_id == camp.id, s.c.step == 0, s.c.member_id == m.c.member_id)).order_by(m.c.member_id))
            rows: list[tuple[int, int]] = [(int(i), 0) for i in todo.scalars()]
        else:  # expiring: each live coupon of the offer ending within the window, once per coupon
            c, s = coupons_t, campaign_sends
            soon = now + timedelta(hours=camp.params.expiring_hours)
            q = sa.select(c.c.member_id, c.c.id).where(
                c.c.offer_id == camp.params.offer_id, c.c.state == "issued", c.c.member_id.is_not(None),
                c.c.expires_at > now, c.c.expires_at <= soon,
                ~sa.exists().where(s.c.campaign_id == camp.id, s.c.step == c.c.id, s.c.member_id == c.c.member_id))
            if seg:
                q = q.where(c.c.member_id.in_(sa.select(MEMBERS.c.id).where(*segments.conditions(seg, now))))
            rows = [(int(mid), int(cid)) for mid, cid in conn.execute(q.order_by(c.c.id))]
    return rows


def stale_sends(engine: Engine, now: datetime, lease: timedelta) -> list[tuple[int, int, int, str]]:
    """(campaign, member, step, channel) of sends left behind: ``sending`` whose lease ran out (the worker died),
    ``reserved`` older than a lease (the task was lost, or waits for a retry that did not come)."""
    s, c = campaign_sends, campaigns
    q = sa.select(s.c.campaign_id, s.c.member_id, s.c.step, s.c.channel).join(c, c.c.id == s.c.campaign_id).where(
        c.c.status == "approved",
        sa.or_(sa.and_(s.c.status == "sending", s.c.lease_until < now),
               sa.and_(s.c.status == "reserved", s.c.ts < now - lease)))
    with engine.connect() as conn:
        return [(int(a), int(b), int(d), str(e)) for a, b, d, e in conn.execute(q.order_by(s.c.id))]


def counts(engine: Engine, campaign_id: int) -> dict[str, Any]:
    """Sends by status and suppressions by reason (the report's "sent, suppressed by reason, delivered")."""
    s = campaign_sends
    with engine.connect() as conn:
        by_status = {str(k): int(n) for k, n in conn.execute(sa.select(s.c.status, sa.func.count()).where(
            s.c.campaign_id == campaign_id).group_by(s.c.status))}
        by_reason = {str(k): int(n) for k, n in conn.execute(sa.select(s.c.reason, sa.func.count()).where(
            s.c.campaign_id == campaign_id, s.c.status == "suppressed").group_by(s.c.reason))}
    return {"status": by_status, "suppressed": by_reason}
