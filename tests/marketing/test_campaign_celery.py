"""Campaigns on real Celery workers (``keliu analytics worker`` subprocesses, which run marketing's tasks through
the composition root keliu.tasks) on Redis and on RabbitMQ, PostgreSQL underneath: a webhook campaign and a WeChat
campaign to N members; the worker is killed with SIGKILL while a send is in flight; a second worker finishes.
Every treated member gets exactly one message per campaign (the receivers record deliveries: none duplicated,
none lost), the control group none, and the send the kill interrupted is taken over after its lease with the same
idempotency key (the receiver sees a second call and keeps one message)."""
from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from keliu import config, db
from keliu.tasks import make_app
from keliu.tenants import MALLS, STORES
from keliu.testing.wechat_fake import FakeAccounts, FakeServer
from marketing.store import campaign_admin
from marketing.store.campaigns import campaign_members, campaign_sends, campaigns
from tests.analytics.servers import celery_worker
from tests.marketing.campaign_kit import ADMIN, new_campaign
from tests.marketing.receivers import WebhookReceiver

pytestmark = pytest.mark.integration
N = 30
MEMBERS = sa.table("members", sa.column("id"), sa.column("created_at", db.TS), sa.column("first_store_id"),
                   sa.column("last_seen_at", db.TS), sa.column("wechat_openid"))
CONSENTS = sa.table("consents", sa.column("member_id"), sa.column("kind"), sa.column("version"),
                    sa.column("granted"), sa.column("ts", db.TS), sa.column("store_id"), sa.column("lang"))


def midday_zone(now: datetime) -> str:
    """A fixed-offset zone where it is about noon now (the test must not run into the quiet hours)."""
    k = 12 - now.hour  # UTC+k; Etc/GMT-k is UTC+k (POSIX signs are inverted)
    return "UTC" if k == 0 else f"Etc/GMT{'-' if k > 0 else '+'}{abs(k)}"


@pytest.fixture(params=["redis", "rabbitmq"])
def broker(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


def seed(engine: sa.Engine, now: datetime) -> tuple[int, int]:
    old = now - timedelta(days=60)
    with engine.begin() as conn:
        conn.execute(sa.insert(MALLS).values(id="m1", name="M"))
        conn.execute(sa.insert(STORES).values(id="c1", mall_id="m1", name="S", timezone=midday_zone(now)))
        conn.execute(sa.insert(MEMBERS), [{"id": i, "created_at": old, "first_store_id": "c1", "last_seen_at": old,
                                           "wechat_openid": f"oMEMBER{i}"} for i in range(1, N + 1)])
        conn.execute(sa.insert(CONSENTS), [{"member_id": i, "kind": "marketing", "version": "v1", "granted": True,
                                            "ts": old, "store_id": "c1", "lang": "zh-CN"} for i in range(1, N + 1)])
    ids = []
    for channel, message in (("webhook", {"text": "新品到了", "webhook_url": "PLACEHOLDER"}),
                             ("wechat", {"text": "积分到账", "wechat_template_id": "TPL1"})):
        ids.append(new_campaign(engine, now, name=channel, trigger="scheduled", channel=channel, category="notice",
                                store_id="c1", params={"send_at": (now - timedelta(minutes=1)).isoformat()},
                                message=message, control_share=0.1, approve=False))
    return ids[0], ids[1]


def states(engine: sa.Engine) -> dict[str, int]:
    s = campaign_sends
    with engine.connect() as conn:
        return {str(k): int(n) for k, n in conn.execute(sa.select(s.c.status, sa.func.count()).group_by(s.c.status))}


def test_kill_9_mid_campaign_sends_each_message_exactly_once(tmp_path, migrated_postgres_url, broker):  # type: ignore[no-untyped-def]
    postgres_url = migrated_postgres_url
    now = datetime.now(UTC)
    engine = db.make_engine(postgres_url)
    db.upgrade(engine)
    hook_id, wechat_id = seed(engine, now)
    acc = FakeAccounts()
    with WebhookReceiver(delay_s=0.3) as rx, FakeServer(accounts=acc) as fake:
        with engine.begin() as conn:
            conn.execute(sa.update(campaigns).where(campaigns.c.id == hook_id).values(
                message=sa.func.replace(campaigns.c.message, "PLACEHOLDER", rx.url)))
            rx.secrets[hook_id] = conn.execute(sa.select(campaigns.c.webhook_secret)
                                               .where(campaigns.c.id == hook_id)).scalar_one()
        for cid in (hook_id, wechat_id):
            campaign_admin.transition(engine, ADMIN, cid, "approve", now, None)
        (tmp_path / "keliu.toml").write_text("")
        queue = f"t-{uuid.uuid4().hex[:10]}"
        env = {"KELIU_DATABASE_URL": postgres_url, "KELIU_ANALYTICS_BROKER_URL": broker,
               "KELIU_ANALYTICS_QUEUE": queue, "KELIU_CONFIG": str(tmp_path / "keliu.toml"),
               "KELIU_VAR_DIR": str(tmp_path / "var"),
               # Redis redelivers an unacknowledged task after the visibility timeout; RabbitMQ when the
               # connection drops. A send held by a dead worker is taken over once its 8 s lease ran out (the
               # redelivered task meets the held lease first and retries with a countdown).
               "KELIU_ANALYTICS_VISIBILITY_TIMEOUT": "5", "KELIU_MARKETING_SEND_LEASE_S": "8",
               "KELIU_WECHAT_OAUTH_APP_ID": acc.oauth_app_id, "KELIU_WECHAT_OAUTH_SECRET": acc.oauth_secret,
               "KELIU_WECHAT_API_BASE": fake.url}
        app = make_app(config.load(env=env))
        with celery_worker(env, f"m1-{queue}@test", tmp_path / "m1.log", queues=queue) as w1:
            for cid in (hook_id, wechat_id):
                app.tasks["marketing.run_campaign"].delay(cid)
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and not (rx.calls >= N // 3 and rx.in_flight > 0):
                time.sleep(0.01)
            assert rx.in_flight > 0, f"no webhook call in flight: {rx.calls} calls, {states(engine)}"
            w1.kill()  # SIGKILL of the worker and its pool, while a webhook call waits for its answer
        at_kill = states(engine)
        assert at_kill.get("sending", 0) >= 1
        assert len(rx.delivered) < N  # the campaign was mid-way
        with celery_worker(env, f"m2-{queue}@test", tmp_path / "m2.log", queues=queue):
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                st = states(engine)
                if st.get("sent", 0) + st.get("control", 0) == 2 * N:
                    break
                time.sleep(0.5)
        final = states(engine)
        with engine.connect() as conn:
            arms = {(c, m): a for c, m, a in conn.execute(sa.select(
                campaign_members.c.campaign_id, campaign_members.c.member_id, campaign_members.c.arm))}
            attempts = conn.execute(sa.select(sa.func.max(campaign_sends.c.attempts))).scalar()
    treated = {cid: {m for (c, m), a in arms.items() if c == cid and a == "treatment"} for cid in (hook_id, wechat_id)}
    assert final == {"sent": len(treated[hook_id]) + len(treated[wechat_id]),
                     "control": 2 * N - len(treated[hook_id]) - len(treated[wechat_id])}, (at_kill, final)
    # the webhook: one message per treated member, none for the control group, every request properly signed
    assert sorted(rx.delivered) == sorted(f"keliu-{hook_id}-0-{m}" for m in treated[hook_id])
    assert sorted(d["member_id"] for d in rx.delivered.values()) == sorted(treated[hook_id])
    assert rx.refused == 0
    assert rx.calls > len(rx.delivered) and attempts >= 2  # the interrupted send was called again, kept once
    # WeChat: one template message per treated member (client_msg_id deduplicates a retried one)
    sent = [t["touser"] for t in fake.state.templates]
    assert sorted(sent) == sorted(f"oMEMBER{m}" for m in treated[wechat_id])
    assert len(set(sent)) == len(sent)
    engine.dispose()
