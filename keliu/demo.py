"""``keliu demo``: the whole appliance on 127.0.0.1 with embedded defaults (composition root, an edge).

Two malls (万达广场 with four stores, 大悦城 with three; :data:`MALLS`, :data:`STORES`). Without a configuration of
its own (``KELIU_CONFIG`` or ``./keliu.toml``) the demo writes ``var/demo/keliu.toml`` naming them. It prepares
``var/`` (SQLite database, first-run secrets, a generated capture per store, and two weeks of generated history
written straight into the rollup tables, :mod:`keliu.testing.history`, so that every "same weekday last week" has
data), then supervises one process per component — the portal (which also serves the built-in dashboard), one
sensor per store replaying its capture on the wall clock (``--follow-clock``: today's probes up to now at once,
the rest as the clock reaches them, never an hour ahead; tomorrow after midnight), the portal's store's guest
Wi-Fi (a FAKE hostapd control socket listing the generated day's joins by the clock, :func:`ap_schedule`, and
``keliu sensor stations`` reading it, after the day so far was read at the start as it would have been,
:func:`load_ap_today`; the same joins are the day's Wi-Fi logins, written as they fall due,
:func:`load_wifi_logins`), and the analytics loop running Celery tasks in-process — prints the URLs and the demo's logins (the
admin, whose generated password is changed at the first login, a store manager and a mall operator), and on Ctrl-C (or SIGTERM) stops every child and
waits for it. The demo has no TLS listener: its RFC 8908 API URI is the portal's own ``/api/captive`` over HTTP.
Quiet: the banner and the SMS codes; ``keliu -v demo`` for the components' progress lines.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import click

if TYPE_CHECKING:
    from collections.abc import Callable


@dataclass(frozen=True)
class Child:
    name: str
    argv: list[str]


#: where the demo runs the FAKE WeChat server (clearly labelled as such on every page it serves)
WECHAT_FAKE_PORT = 9009
#: days of generated history before today
HISTORY_DAYS = 14
TIMEZONE = "Asia/Shanghai"  #: the demo's stores'


@dataclass(frozen=True)
class DemoStore:
    id: str
    mall: str
    name: str
    open_h: int
    close_h: int
    visitors: int
    passersby: int
    median_dwell_s: float


MALLS: dict[str, str] = {"wanda": "万达广场", "joycity": "大悦城"}
STORES: tuple[DemoStore, ...] = (
    # the first is the store of the demo's portal (the shopper's login happens there)
    DemoStore("starbucks", "wanda", "星巴克", 10, 22, 240, 1200, 1500.0),
    DemoStore("uniqlo", "wanda", "优衣库", 10, 22, 200, 1000, 1100.0),
    DemoStore("haidilao", "wanda", "海底捞", 10, 22, 120, 600, 3600.0),
    DemoStore("familymart", "wanda", "全家便利店", 0, 24, 200, 700, 240.0),
    DemoStore("heytea", "joycity", "喜茶", 10, 22, 220, 900, 600.0),
    DemoStore("muji", "joycity", "无印良品", 10, 22, 150, 800, 1300.0),
    DemoStore("popmart", "joycity", "泡泡玛特", 10, 22, 130, 900, 700.0),
)


def demo_toml(var_dir: str) -> str:
    """The demo's configuration file: its own database (an older demo's single "Demo Store" is not in it), its
    malls and stores, the portal and the sensor in the first store."""
    db = Path(var_dir) / "demo" / "keliu.db"
    lines = [f'database_url = "sqlite:///{db.as_posix()}"\n',
             f'[portal]\nstore = "{STORES[0].id}"\n', f'[sensor]\nstore = "{STORES[0].id}"\n']
    lines += [f'[[malls]]\nid = "{m}"\nname = "{name}"\n' for m, name in MALLS.items()]
    lines += [f'[[stores]]\nid = "{s.id}"\nmall = "{s.mall}"\nname = "{s.name}"\ntimezone = "{TIMEZONE}"\n'
              for s in STORES]
    return "\n".join(lines)


def capture_scenario(store: DemoStore) -> Any:
    from keliu.testing.simulate import Scenario

    return Scenario(open_h=store.open_h, close_h=store.close_h, passersby_per_day=store.passersby,
                    visitors_per_day=store.visitors, median_dwell_s=store.median_dwell_s,
                    staff=0 if store.close_h - store.open_h >= 24 else 3)


def write_capture(path: Path, store: DemoStore, seed: int, ap: Path | None = None) -> int:
    """One store-day of probe requests, cut to its local day (a replay following the clock plays it daily); with
    ``ap``, the store's guest Wi-Fi of that day written there too (:func:`ap_schedule`)."""
    from keliu.testing.simulate import simulate, write_pcap

    sc = capture_scenario(store)
    frames, truth = simulate(sc, seed)
    lo = sc.day_start(0)
    if ap is not None:
        ap.write_text(json.dumps({"tz": TIMEZONE, "stations": ap_schedule(truth.people, lo, seed)}), encoding="utf-8")
    return write_pcap(path, (f for f in frames if lo <= f.ts < lo + 86400))


def ap_schedule(people: Any, day_start: float, seed: int) -> list[dict[str, Any]]:
    """The demo store's guest Wi-Fi (pure): the visitors of the generated day (``keliu.testing.simulate``'s
    people) who join, as ``keliu.testing.guestwifi`` models it (the chance grows with the visit's length, the login
    a minute or more after arriving, none with less than two minutes left; a phone keeps its per-network address
    and rejoins by itself on a later visit: ``GuestWifi.join_at``), each association as seconds after the local
    midnight and its address: what the FAKE AP (``keliu.testing.hostapd_fake``) lists as the day goes by."""
    import numpy as np

    from keliu.testing.guestwifi import GuestWifi, network_address

    wifi = GuestWifi()
    rng = np.random.default_rng([seed, 89])
    out = []
    for p in people:
        if p.kind != "visitor":
            continue
        mac: str | None = None
        for start, end in p.visits:
            if not day_start <= start < day_start + 86400:
                continue
            at = wifi.join_at(rng, start, end, mac is not None)
            if at is None:
                continue
            if mac is None:
                mac = network_address(rng).to_bytes(6, "big").hex(":")
            out.append({"mac": mac, "start": round(at - day_start, 1), "end": round(min(end, day_start + 86400)
                                                                                  - day_start, 1),
                        "signal": round(p.rssi)})
    return sorted(out, key=lambda e: e["start"])


def load_history(engine: Any, now: float, stores: tuple[DemoStore, ...] = STORES, days: int = HISTORY_DAYS,
                 seed: int = 7, repeats: bool = True) -> int:
    """Write the generated history of ``stores`` for the days before today that have no rollups yet; returns rows
    written. ``repeats``: whether visitors are known again on later days (not under the sensor's strict privacy,
    which the demo runs: its live days count every visitor as new, so its history does too)."""
    import sqlalchemy as sa

    from analytics import store as astore
    from keliu import db
    from keliu.testing import history

    today = datetime.fromtimestamp(now, ZoneInfo(TIMEZONE)).date()
    wanted = [today - timedelta(days=i) for i in range(days, 0, -1)]
    rows: list[dict[str, Any]] = []
    r = astore.rollups.c
    with engine.connect() as conn:
        have = set(conn.execute(sa.select(r.store, r.day).where(r.period == "1d", r.day >= wanted[0])).all())
    for s in stores:
        days_missing = [d for d in wanted if (s.id, d) not in have]
        rows += history.store_days(history.Profile(s.id, s.mall, open_h=s.open_h, close_h=s.close_h,
                                                   visitors=s.visitors, passersby=s.passersby,
                                                   median_dwell_s=s.median_dwell_s, repeats=repeats),
                                   days_missing, seed, now)
    with engine.begin() as conn:
        db.upsert(conn, astore.rollups, rows)
        for mall in sorted({s.mall for s in stores}):
            mdays, trans = history.mall_days(mall, rows, seed, now)
            db.upsert(conn, astore.mall_days, mdays)
            db.upsert(conn, astore.mall_transitions, trans)
    return len(rows)


def load_wifi_logins(engine: Any, cfg: object, now: float, schedule: Path) -> int:
    """The portal's store's shoppers who joined its guest Wi-Fi today by ``now`` (the AP's schedule,
    :func:`ap_schedule`, which the FAKE AP lists by the clock), written as the portal's WeChat logins would have been
    (a member with a generated openid, no phone number; the terms consent; the marketing consent, which makes a
    member, with the generated history's share, ``keliu.testing.history.MEMBER_RATE``; the login, its device
    the keyed hash of the station's address as the portal keys it); returns the logins written. The supervisor calls
    it again as the day goes by: a join already written is not written again, so today's funnel is today's like the
    history's days (without it, today read no Wi-Fi login at all against last week's). A shopper of another day is
    another member (the demo's sensor keeps no device across days: every day's visitors are new)."""
    import hashlib
    import random

    import sqlalchemy as sa

    from keliu import keys
    from keliu.config import Config
    from keliu.testing.history import MEMBER_RATE
    from portal.core.i18n import CONSENT_VERSIONS
    from portal.store.models import consents, logins, members
    from sensor.identity import device_id, mac_bytes

    assert isinstance(cfg, Config)
    store = cfg.portal.store
    ap, local, midnight = _ap_day(schedule, now)
    due = [e for e in ap["stations"] if midnight + timedelta(seconds=float(e["start"])) <= local]
    if not due:
        return 0
    key = keys.secret_bytes(cfg.var_dir, "device_hmac")
    day = local.date().isoformat()

    def openid(mac: str) -> str:
        return "demo-wifi-" + hashlib.sha256(f"{day}:{mac}".encode()).hexdigest()[:24]

    with engine.begin() as conn:
        known = dict(conn.execute(sa.select(members.c.wechat_openid, members.c.id).where(
            members.c.wechat_openid.in_(sorted({openid(str(e["mac"])) for e in due})))).all())
        done = {(m, round(t.timestamp(), 1)) for m, t in conn.execute(
            sa.select(logins.c.member_id, logins.c.ts).where(logins.c.member_id.in_(list(known.values())))).all()}
        written = 0
        for e in due:
            mac = str(e["mac"])
            at = (midnight + timedelta(seconds=float(e["start"]))).astimezone(ZoneInfo("UTC"))
            oid = openid(mac)
            member = known.get(oid)
            if member is None:
                member = conn.execute(sa.insert(members).values(
                    wechat_openid=oid, created_at=at, first_store_id=store, last_seen_at=at).returning(
                    members.c.id)).scalar_one()
                known[oid] = member
                joins = random.Random(oid).random() < MEMBER_RATE
                conn.execute(sa.insert(consents), [
                    {"member_id": member, "kind": kind, "version": CONSENT_VERSIONS[kind], "granted": granted,
                     "ts": at, "store_id": store, "lang": "zh-CN"}
                    for kind, granted in (("terms", True), ("marketing", joins))])
            elif (member, round(at.timestamp(), 1)) in done:
                continue  # this join's login is written already
            conn.execute(sa.insert(logins).values(ts=at, store_id=store, member_id=member, method="wechat",
                                                  ip="10.0.0.2", device_id=device_id(key, mac_bytes(mac))))
            conn.execute(sa.update(members).where(members.c.id == member).values(last_seen_at=at))
            written += 1
    return written


def load_ap_today(cfg: object, now: float, schedule: Path, every_s: float = 10.0) -> int:
    """The portal's store's AP read every ``every_s`` seconds from today's local midnight up to ``now``, as
    ``keliu sensor stations`` would have read the FAKE AP had the demo run since then (its schedule at each time of
    day, :func:`keliu.testing.hostapd_fake.scheduled`), through the same records and pipeline: the connected
    stations' sightings (keyed devices) and each read's record. Today's probes are replayed up to now at once; this
    is the AP's side of it, so the connected card covers the day and not only the time since the demo started.
    Idempotent (the same sighting ids, poll records merged per slot). Returns the reads made."""
    from keliu.config import Config
    from keliu.testing.hostapd_fake import scheduled
    from sensor.cli import build_pipeline, station_feed
    from sensor.stations import parse_stations

    assert isinstance(cfg, Config)
    store = cfg.portal.store
    ap, _local, midnight = _ap_day(schedule, now)
    pipe = build_pipeline(cfg, store, sensor_id=f"{cfg.sensor.sensor_id}-ap")
    pipe.clock = lambda: now  # batches by size, not by the time they would have waited
    feed = station_feed(cfg, pipe, store)
    at = [midnight.timestamp()]
    listing = scheduled(ap, now=lambda: at[0])
    reads = 0
    while at[0] < now:
        feed([st for text in listing() for st in parse_stations(text)], None, at[0])
        reads += 1
        at[0] += every_s
    pipe.close()
    return reads


def _ap_day(schedule: Path, now: float) -> tuple[dict[str, Any], datetime, datetime]:
    """The AP's schedule (:func:`ap_schedule`'s file), ``now`` in its zone, and that day's local midnight."""
    ap = json.loads(schedule.read_text(encoding="utf-8"))
    local = datetime.fromtimestamp(now, ZoneInfo(ap["tz"]))
    return ap, local, datetime.combine(local.date(), datetime.min.time(), local.tzinfo)


#: the demo's campaign: its name, how many generated members it reaches, and how long ago they became eligible
DEMO_CAMPAIGN = "沉睡会员唤醒（演示）"
CAMPAIGN_MEMBERS = 3000
CAMPAIGN_DAYS_AGO = 10


WELCOME_OFFER = "连上Wi-Fi 新会员满50减10"


def load_marketing(engine: Any, cfg: object, now: float) -> str:
    """The portal's store's welcome offer and the last business day's POS file, both through the product's own code: an offer
    issued on the Wi-Fi success page to a member who consents to marketing (:func:`marketing.store.coupons
    .create_offer`, once), and a CSV export of the till's sales so far today written to ``var/demo/`` and imported
    as ``keliu pos import`` does (:func:`marketing.store.pos_import.import_file`: idempotent on the transaction id,
    so a restart imports only what is new). Returns the banner's line."""
    import csv

    import sqlalchemy as sa

    from keliu.config import Config
    from marketing.core.offers import OfferSpec
    from marketing.store import coupons
    from marketing.store.models import offers
    from marketing.store.pos_import import import_file

    assert isinstance(cfg, Config)
    store = cfg.store(cfg.portal.store)
    at = datetime.fromtimestamp(now, ZoneInfo("UTC"))
    with engine.begin() as conn:
        have = conn.execute(sa.select(offers.c.id).where(offers.c.title == WELCOME_OFFER,
                                                         offers.c.store_id == store.id)).scalar()
        if have is None:
            coupons.create_offer(conn, OfferSpec(title=WELCOME_OFFER, kind="amount_off", value=1000,
                                                 stores=(store.id,), min_spend_cents=5000, valid_days=7,
                                                 on_login=True),
                                 store_id=store.id, now=at, created_by="demo")
    # the last business day's sales at the till (local time, one every 25 minutes from 10:00 until now or 22:00;
    # before 11:00 that is yesterday's), the last one refunded
    tz = ZoneInfo(store.timezone)
    local = datetime.fromtimestamp(now, tz)
    if local.hour < 11:
        local = (local - timedelta(days=1)).replace(hour=22, minute=0, second=0, microsecond=0)
    opening = local.replace(hour=10, minute=0, second=0, microsecond=0)
    closing = min(local, local.replace(hour=22, minute=0, second=0, microsecond=0))
    rows: list[list[str]] = []
    t = opening
    while t < closing:
        n = len(rows) + 1
        rows.append([f"DEMO-{local:%Y%m%d}-{n:03d}", t.strftime("%Y-%m-%d %H:%M:%S"),
                     f"{38 + (n * 37) % 160}.{(n * 13) % 100:02d}", "销售", "", f"店员{1 + n % 3}"])
        t += timedelta(minutes=25)
    if rows:
        last = rows[-1]
        rows.append([last[0] + "-R", last[1], last[2], "退款", last[0], last[5]])
    path = cfg.var_path / "demo" / f"pos-{store.id}-{local:%Y%m%d}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as out:
        w = csv.writer(out)
        w.writerow(["交易号", "时间", "金额", "类型", "原交易号", "店员"])
        w.writerows(rows)
    rep = import_file(engine, path, store.id, at)
    return (f"{path.resolve()} ({rep.rows_new} new, {rep.rows_duplicate} already recorded, {rep.rows_rejected} rejected;"
            f" keliu pos import FILE --store {store.id}); the welcome offer {WELCOME_OFFER!r} is issued on the"
            f" Wi-Fi success page to a member who consents to marketing")


def load_campaign(engine: Any, cfg: object, now: float, seed: int = 7) -> int:
    """One finished campaign with a holdout in the portal's store, on generated members (once: a restart finds it
    and returns its id). Everything goes through the product's own code — the editor's rules
    (:func:`marketing.core.campaign_spec.parse`), create and approve (audited), the lapsed trigger's enrollment
    with the holdout's arms (:func:`marketing.store.audience.enroll_lapsed`), the contact policy deciding each send
    (:func:`marketing.core.contact.decide`: the 10 % who did not consent to marketing are suppressed, in both arms),
    the redeemers' coupons issued as their sends issue them (:func:`marketing.store.coupons.issue_for_send`) and
    redeemed through the ledger (:func:`marketing.store.coupons.redeem`) — except the outcomes, which are
    generated (:func:`keliu.testing.history.campaign_outcomes`: the members the message reached come back and buy
    more often) and written as the Wi-Fi logins and POS sales they would have been. It is history: nothing is
    sent, and the members, their consents, the sends, logins and sales are written in batches (one transaction
    each) so that the demo starts in seconds. Members are WeChat-only (a generated openid, no phone number)."""
    import hashlib
    import random

    import sqlalchemy as sa

    from keliu.accounts.users import AdminUser
    from keliu.config import Config
    from keliu.testing import history
    from marketing.core import campaign_spec, codes, contact
    from marketing.core.offers import OfferSpec
    from marketing.core.pos import SaleRow
    from marketing.store import audience, campaign_admin, coupons
    from marketing.store.campaigns import campaign_members, campaign_sends, campaigns
    from marketing.store.models import sales
    from portal.core.i18n import CONSENT_VERSIONS
    from portal.store.models import consents, logins, members

    assert isinstance(cfg, Config)
    store = cfg.store(cfg.portal.store)
    with engine.connect() as conn:
        have = conn.execute(sa.select(campaigns.c.id).where(campaigns.c.name == DEMO_CAMPAIGN,
                                                            campaigns.c.store_id == store.id)).scalar()
    if have is not None:
        return int(have)
    tz = ZoneInfo(store.timezone)
    day = datetime.fromtimestamp(now, tz).date() - timedelta(days=CAMPAIGN_DAYS_AGO)
    eligible = datetime.combine(day, datetime.min.time().replace(hour=10), tz).astimezone(ZoneInfo("UTC"))
    manager = AdminUser(f"manager-{store.id}", "store", mall_id=store.mall, store_id=store.id)
    with engine.begin() as conn:
        offer = coupons.create_offer(conn, OfferSpec(title="会员日满100减20", kind="amount_off", value=2000,
                                                     stores=(store.id,), min_spend_cents=10000, valid_days=7),
                                     store_id=store.id, now=eligible - timedelta(days=1), created_by=manager.name)
        # generated members, their consents and their last visit (31–59 days before the campaign: lapsed when it
        # ran), written in batches: WeChat-only members with a generated openid, no phone number
        rng = random.Random(f"keliu-demo-members:{seed}")
        joined = {f"demo-generated-{i:05d}": eligible - timedelta(days=rng.randrange(60, 180))
                  for i in range(CAMPAIGN_MEMBERS)}
        conn.execute(sa.insert(members), [
            {"wechat_openid": o, "created_at": t, "first_store_id": store.id,
             "last_seen_at": eligible - timedelta(days=rng.randrange(31, 60))} for o, t in joined.items()])
        ids = dict(conn.execute(sa.select(members.c.wechat_openid, members.c.id).where(
            members.c.wechat_openid.in_(list(joined)))).all())
        consented = {ids[o]: rng.random() < 0.9 for o in joined}
        conn.execute(sa.insert(consents), [
            {"member_id": ids[o], "kind": kind, "version": CONSENT_VERSIONS[kind], "granted": granted, "ts": t,
             "store_id": store.id, "lang": "zh-CN"}
            for o, t in joined.items() for kind, granted in (("terms", True), ("marketing", consented[ids[o]]))])
    form = {"name": DEMO_CAMPAIGN, "scope": f"store:{store.id}", "trigger": "lapsed", "lapsed_days": "30",
            "segment": "last_visit_days >= 30", "channel": "webhook", "category": "member_benefit",
            "webhook_url": "https://crm.example.com/keliu/campaigns",
            "message": "会员专享：本周到店消费满100减20", "offer_id": str(offer), "consents": ["marketing"],
            "control_pct": "10", "window_days": "7", "cooldown_hours": "24", "message_cost_cents": "5"}
    spec, problems = campaign_spec.parse(form, scopes={f"store:{store.id}": (store.id, None)},
                                         offers=frozenset({offer}))
    assert spec is not None, problems
    cid = campaign_admin.create(engine, manager, spec, eligible - timedelta(hours=2), "demo",
                                salt=f"keliu-demo-{seed}")
    campaign_admin.transition(engine, manager, cid, "approve", eligible - timedelta(hours=1), "demo")
    with engine.connect() as conn:
        row = conn.execute(sa.select(campaigns).where(campaigns.c.id == cid)).one()
    audience.enroll_lapsed(engine, cid, row.salt, row.control_share, eligible - timedelta(days=30), eligible,
                           store_id=store.id)
    with engine.connect() as conn:
        arms = {int(m): str(a) for m, a in conn.execute(sa.select(
            campaign_members.c.member_id, campaign_members.c.arm).where(campaign_members.c.campaign_id == cid))}

    # the contact policy decides each send as it would have then; the sends are written as one batch (history)
    policy = contact.ContactPolicy()
    sends, reached = [], set()
    for member, arm in sorted(arms.items()):
        send = contact.Send(member, cid, "webhook", store.timezone, cooldown=timedelta(hours=24))
        granted = frozenset({"terms", "marketing"} if consented[member] else {"terms"})
        decision = contact.decide(policy, send, contact.MemberFacts(consents=granted), eligible)
        status = ("control" if arm == "control" else "sent") if decision.send else "suppressed"
        if status == "sent":
            reached.add(member)
        sends.append({"campaign_id": cid, "step": 0, "member_id": member, "channel": "webhook", "status": status,
                      "reason": decision.reason, "ts": eligible})
    with engine.begin() as conn:
        conn.execute(sa.insert(campaign_sends), sends)
        sent_ids = {int(m): int(i) for i, m in conn.execute(sa.select(
            campaign_sends.c.id, campaign_sends.c.member_id).where(campaign_sends.c.campaign_id == cid,
                                                                   campaign_sends.c.status == "sent"))}
    outcomes = history.campaign_outcomes(arms, frozenset(reached), eligible, spec.window_days, seed,
                                         open_h=10, close_h=22, timezone=store.timezone)
    redeem: list[tuple[int, datetime, int, str]] = []
    with engine.begin() as conn:
        conn.execute(sa.insert(logins), [
            {"ts": at, "store_id": store.id, "member_id": o.member_id, "method": "wechat", "ip": "10.0.0.2",
             "device_id": hashlib.sha256(f"demo-device:{o.member_id}".encode()).hexdigest()[:32]}
            for o in outcomes for at in o.logins])
        for o in outcomes:
            for k, (at, cents, with_coupon) in enumerate(o.sales):
                txn = f"DEMO-{cid}-{o.member_id}-{k}"
                if with_coupon:
                    redeem.append((o.member_id, at, cents, txn))
                    continue
                row = SaleRow(txn_id=txn, kind="sale", ts=at, amount_cents=cents)
                conn.execute(sa.insert(sales).values(store_id=store.id, txn_id=txn, kind="sale", ts=at,
                                                     amount_cents=cents, member_id=o.member_id, match="qr",
                                                     row_hash=row.content_hash(o.member_id)))
            if o.logins:
                conn.execute(sa.update(members).where(members.c.id == o.member_id).values(
                    last_seen_at=o.logins[-1]))
    for member, at, cents, txn in redeem:
        # the coupon the member's send carried (only a member the message reached redeems), issued as a send
        # issues it; the other sends' coupons, never redeemed, are left out of the history to keep the start quick
        with engine.begin() as conn:
            code = coupons.issue_for_send(conn, send_id=sent_ids[member], offer_id=offer, member_id=member,
                                          store_id=store.id, key=f"keliu-{cid}-0-{member}", now=eligible).code
        coupons.redeem(engine, coupons.RedeemRequest(store_id=store.id, code=code, idempotency_key=txn,
                                                     basket_cents=cents, staff="demo", source="pos",
                                                     pos_txn_id=txn), at)
        row = SaleRow(txn_id=txn, kind="sale", ts=at, amount_cents=cents, coupon_code=code)
        with engine.begin() as conn:
            conn.execute(sa.insert(sales).values(store_id=store.id, txn_id=txn, kind="sale", ts=at,
                                                 amount_cents=cents, member_id=member, match="coupon",
                                                 coupon_code=codes.normalize(code),
                                                 row_hash=row.content_hash(member)))
    return cid


def plan(cfg: object, captures: dict[str, Path], wechat_port: int = WECHAT_FAKE_PORT,
         ap: tuple[str, Path, Path] | None = None) -> list[Child]:
    """The processes of the demo (pure): each is a ``keliu`` subcommand, plus the local FAKE WeChat; with ``ap``
    (store, control socket, schedule), the store's guest Wi-Fi: a FAKE hostapd control socket listing the
    schedule's stations as the day goes by, and ``keliu sensor stations`` reading it as on a router."""
    from keliu import console
    from keliu.config import Config

    assert isinstance(cfg, Config)
    keliu = [sys.executable, "-m", "keliu.cli", *console.argv()]
    fake = [sys.executable, "-m", "keliu.testing.wechat_fake", "--port", str(wechat_port), "--allow-any-ua"]
    if console.verbosity():
        fake.append("--verbose")
    sensors = [Child(f"sensor-{store}", keliu + ["sensor", "replay", str(path), "--store", store, "--follow-clock"])
               for store, path in captures.items()]
    if ap is not None:
        store, ctrl, schedule = ap
        sensors = [Child("ap-fake", [sys.executable, "-m", "keliu.testing.hostapd_fake", "--ctrl", str(ctrl),
                                     "--schedule", str(schedule)]),
                   Child(f"stations-{store}", keliu + ["sensor", "stations", "--ctrl", str(ctrl), "--store", store]),
                   *sensors]
    return [
        Child("wechat-fake", fake),
        Child("portal", keliu + ["portal"]),
        *sensors,
        Child("analytics", keliu + ["analytics", "run", "--interval", "10"]),
    ]


def _ctrl_path(var: Path) -> Path:
    """Where the demo's FAKE hostapd puts its control socket: under ``var/demo``, or a temporary folder where that
    path is too long for a Unix socket (108 bytes)."""
    path = var / "demo" / "wlan0"
    if len(os.fsencode(path)) < 100:
        return path
    import tempfile

    return Path(tempfile.mkdtemp(prefix="keliu-demo-ap-")) / "wlan0"


def demo_logins(engine: object, cfg: object) -> list[tuple[str, str, str]]:
    """A store manager of the portal's store and an operator of its mall (created when missing, with passwords
    generated into var/keys/): (label, user, password) for the banner."""
    from keliu import keys
    from keliu.accounts.users import create_user, load_user
    from keliu.config import Config

    assert isinstance(cfg, Config)
    store = cfg.store(cfg.portal.store)
    out = []
    for label, name, role, mall_id, store_id in (
            ("store:", f"manager-{store.id}", "store", store.mall, store.id),
            ("mall:", f"operator-{store.mall}", "mall", store.mall, None)):
        password = keys.login_password(cfg.var_dir, name)
        if load_user(engine, name) is None:  # type: ignore[arg-type]
            create_user(engine, name, password, role, mall_id=mall_id, store_id=store_id)  # type: ignore[arg-type]
        out.append((label, name, password))
    return out


def _admin_note(engine: object, cfg: object, password: str) -> str:
    """The admin's password as the banner shows it: a generated one must be changed at the first login."""
    from keliu.accounts.users import load_user
    from keliu.config import Config

    assert isinstance(cfg, Config)
    if cfg.portal.admin_password:
        return password
    user = load_user(engine, cfg.portal.admin_user)  # type: ignore[arg-type]
    if user is not None and not user.must_change:
        return "(the password you chose at the first login)"
    return f"{password}   (to be changed at the first login)"


def supervise(children: list[Child], env: dict[str, str], tick: Callable[[], object] | None = None,
              every_s: float = 60.0) -> int:
    """Run ``children`` until one exits or a signal comes, then stop them all; ``tick`` every ``every_s`` seconds
    meanwhile (the day's Wi-Fi logins as they fall due): a failed one is reported and tried again at the next."""
    procs: list[tuple[Child, subprocess.Popen[bytes]]] = []
    stopping = False

    def stop(_sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for child in children:
        # Own process group: Ctrl-C in the terminal reaches us once, and we stop the children in order.
        procs.append((child, subprocess.Popen(child.argv, env=env, start_new_session=True)))
    code = 0
    next_tick = time.monotonic() + every_s
    try:
        while not stopping:
            if tick is not None and time.monotonic() >= next_tick:
                next_tick = time.monotonic() + every_s
                try:
                    tick()
                except Exception as exc:  # noqa: BLE001 (the demo goes on; the next tick tries again)
                    click.echo(f"keliu demo: {exc.__class__.__name__}: {exc} (tried again in {every_s:.0f} s)",
                               err=True)
            for child, proc in procs:
                rc = proc.poll()
                if rc is not None:
                    click.echo(f"keliu demo: {child.name} exited with status {rc}; stopping", err=True)
                    stopping, code = True, 1
                    break
            time.sleep(0.3)
    finally:
        for _child, proc in reversed(procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for child, proc in reversed(procs):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                click.echo(f"keliu demo: {child.name} did not stop in time; killing", err=True)
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    click.echo("keliu demo: stopped")
    return code


@click.command("demo")
@click.option("--no-run", is_flag=True, help="Prepare var/ and print the plan, but start nothing.")
@click.option("--wechat-port", type=click.IntRange(1, 65535), default=WECHAT_FAKE_PORT, show_default=True,
              help="Port of the local FAKE WeChat server.")
def demo(no_run: bool, wechat_port: int) -> None:
    """Run the whole appliance on 127.0.0.1: portal on :8080, a sensor replaying a generated store capture,
    analytics in-process, and the built-in dashboard. SMS codes are printed to the console. Ctrl-C stops it."""
    from keliu import config, db, keys, tenants
    from keliu.testing.wechat_fake import demo_env

    # WeChat login against the local FAKE unless the operator configured real accounts.
    env = dict(os.environ)
    if "KELIU_WECHAT_ENABLED" not in env:
        env.update(demo_env(f"http://127.0.0.1:{wechat_port}"))
    # no router DNATs to a captive front here: the portal's own port answers the (hand-made) probes
    env.setdefault("KELIU_PORTAL_CAPTIVE_PORT", "0")
    if not config.config_path(env):
        var_dir = config.build({}, env).var_dir
        own = Path(var_dir) / "demo" / "keliu.toml"
        own.parent.mkdir(parents=True, exist_ok=True)
        own.write_text(demo_toml(var_dir), encoding="utf-8")
        env["KELIU_CONFIG"] = str(own)
    cfg = config.load(env=env)
    if "KELIU_PORTAL_API_URL" not in env:
        # no TLS listener in the demo: the RFC 8908 API is the portal's own, and answers
        env["KELIU_PORTAL_API_URL"] = f"http://{cfg.portal.host}:{cfg.portal.port}/api/captive"
        cfg = config.load(env=env)
    engine = db.make_engine(cfg.database_url)
    db.upgrade(engine)
    tenants.sync(engine, cfg)
    configured = {s.id for s in cfg.stores}
    captures: dict[str, Path] = {}
    ap: tuple[str, Path, Path] | None = None
    for i, store in enumerate(STORES):
        if store.id not in configured:
            continue  # an operator's own configuration: only its stores that are the demo's get a sensor
        captures[store.id] = cfg.var_path / "demo" / f"{store.id}.pcap"
        # the portal's store has a guest Wi-Fi whose AP the demo reads (a FAKE hostapd: its stations, no radio)
        schedule = cfg.var_path / "demo" / f"{store.id}-ap.json" if store.id == cfg.portal.store else None
        if not captures[store.id].exists() or schedule is not None and not schedule.exists():
            write_capture(captures[store.id], store, seed=7 + i, ap=schedule)
        if schedule is not None:
            ap = (store.id, _ctrl_path(cfg.var_path), schedule)
    load_history(engine, time.time(), tuple(s for s in STORES if s.id in configured),
                 repeats=cfg.sensor.privacy == "linked")
    # one finished campaign with a holdout on generated members, in the portal's store if it is one of the demo's
    ours = cfg.portal.store in configured and cfg.portal.store in {s.id for s in STORES}
    campaign = load_campaign(engine, cfg, time.time()) if ours else None
    pos = load_marketing(engine, cfg, time.time()) if ours else None
    if ap is not None:
        load_wifi_logins(engine, cfg, time.time(), ap[2])
        load_ap_today(cfg, time.time(), ap[2])
    password = cfg.portal.admin_password or keys.admin_password(cfg.var_dir)
    children = plan(cfg, captures, wechat_port, ap)
    base = f"http://{cfg.portal.host}:{cfg.portal.port}"
    malls = "; ".join(f"{name}: " + "、".join(s.name for s in cfg.stores if s.mall == mid)
                      for mid, name in ((m.id, m.name) for m in cfg.malls))
    click.echo(f"keliu demo\n  portal:    {base}/\n  dashboard: {base}/dashboard\n  admin:     {base}/admin"
               f"\n  member:    {base}/member (card)   counter: {base}/counter (redeem)"
               + (f"\n  campaign:  {base}/admin/campaigns/{campaign}/report (a campaign with a 10 % holdout on "
                  f"generated members; the store manager or the mall operator below)" if campaign else "")
               + (f"\n  POS:       {pos}" if pos else "")
               + f"\n  malls:     {malls}"
               f"\n  login:     {cfg.portal.admin_user} / {_admin_note(engine, cfg, password)}"
               + "".join(f"\n  {label:<10} {name} / {pw}" for label, name, pw in demo_logins(engine, cfg))
               + "\n  SMS codes are printed below."
               + (f"\n  WeChat:    FAKE WeChat server at {cfg.wechat.open_base} (not Tencent's)" if cfg.wechat.fake else ""))
    engine.dispose()
    if no_run:
        for child in children:
            click.echo(f"  would run {child.name}: {' '.join(child.argv[2:])}")
        return
    schedule = None if ap is None else ap[2]
    sys.exit(supervise(children, env, tick=None if schedule is None else
                       lambda: load_wifi_logins(engine, cfg, time.time(), schedule)))
