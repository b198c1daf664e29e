"""The console's campaign pages in the portal app: tenancy (admin, mall, store, staff), the editor's refusals
(consent basis, SMS rules, presence and trade-area consents), approve / pause / archive with the audit trail,
CSRF, both languages, and the report with its CSV and sample-size helper."""
from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from html import unescape
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from keliu import audit
from keliu.accounts import users
from keliu.gate import MemoryGate
from marketing.core.offers import OfferSpec
from marketing.store import coupons
from marketing.store.campaigns import campaign_members, campaign_sends, campaigns
from portal.edges.sms_backends import ConsoleSms
from portal.store.members import upsert_member
from tests.portal.conftest import FakeClock, csrf_of, make_app

STORES = [{"id": "s1", "mall": "m1", "name": "一店"}, {"id": "s2", "mall": "m1", "name": "二店"},
          {"id": "x1", "mall": "m2", "name": "他店"}]
GOOD_SMS = {"name": "回访", "scope": "store:s1", "trigger": "lapsed", "lapsed_days": "30", "channel": "sms",
            "category": "member_benefit", "provider": "tencent", "message": "会员日积分翻倍，拒收请回复R",
            "template_id": "123456", "segment": "visits >= 1\nlast_visit_days >= 30",
            "consents": ["sms_marketing"], "control_pct": "10", "window_days": "7", "cooldown_hours": "24",
            "message_cost_cents": "5"}


@pytest.fixture
def app(db_url: str, var_dir: Path, gate: MemoryGate, clock: FakeClock, sms: ConsoleSms,
        neighbours: dict[str, str]) -> Flask:
    a = make_app(db_url, var_dir, gate, clock, sms, neighbours, stores=STORES,
                 malls=[{"id": "m1", "name": "商场"}, {"id": "m2", "name": "他场"}], portal={"store": "s1"})
    eng = a.extensions["keliu"].engine
    users.create_user(eng, "boss1", "pw-boss1", "store", store_id="s1")
    users.create_user(eng, "boss2", "pw-boss2", "store", store_id="s2")
    users.create_user(eng, "mall", "pw-mall", "mall", mall_id="m1")
    users.create_user(eng, "mall2", "pw-mall2", "mall", mall_id="m2")
    users.create_user(eng, "alice", "pw-alice", "staff", store_id="s1")
    return a


def login(app: Flask, name: str) -> Any:
    c = app.test_client()
    token = csrf_of(c.get("/admin/login").get_data(as_text=True))
    r = c.post("/admin/login", data={"csrf_token": token, "name": name, "password": "pw-" + name})
    assert r.status_code == 302, r.get_data(as_text=True)
    return c


def post_form(c: Any, path: str, form: dict[str, Any]) -> Any:
    page = c.get(path if not path.endswith(("/approve", "/pause", "/archive")) else "/admin/campaigns")
    data = dict(form)
    data["csrf_token"] = csrf_of(page.get_data(as_text=True))
    return c.post(path, data=data)


def count(app: Flask) -> int:
    with app.extensions["keliu"].engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(campaigns)).scalar_one())


def create(app: Flask, who: str, **changes: Any) -> int:
    c = login(app, who)
    r = post_form(c, "/admin/campaigns/new", {**GOOD_SMS, **changes})
    assert r.status_code == 303, r.get_data(as_text=True)
    return int(re.search(r"#campaign-(\d+)", r.headers["Location"]).group(1))  # type: ignore[union-attr]


def test_create_approve_pause_archive_with_audit(app: Flask) -> None:
    c = login(app, "boss1")
    page = c.get("/admin/campaigns/new?lang=zh-CN").get_data(as_text=True)
    # the store manager may only choose their store; the holdout and window default to 10 % and 7 days
    assert re.findall(r'<option value="((?:store|mall):[^"]+)"', page) == ["store:s1"]
    assert 'name="control_pct" value="10"' in page and 'name="window_days" value="7"' in page
    cid = create(app, "boss1")
    listing = c.get("/admin/campaigns?lang=zh-CN").get_data(as_text=True)
    assert f'id="campaign-{cid}" data-status="draft"' in listing and "回访" in listing and "草稿" in listing
    for action, status in (("approve", "approved"), ("pause", "paused"), ("approve", "approved"),
                           ("archive", "archived")):
        r = post_form(c, f"/admin/campaigns/{cid}/{action}", {})
        assert r.status_code == 303, (action, r.get_data(as_text=True))
        assert f'id="campaign-{cid}" data-status="{status}"' in c.get("/admin/campaigns").get_data(as_text=True)
    # an archived campaign cannot be approved again, nor edited
    assert post_form(c, f"/admin/campaigns/{cid}/approve", {}).status_code == 409
    assert post_form(c, f"/admin/campaigns/{cid}/edit", GOOD_SMS).status_code == 409
    eng = app.extensions["keliu"].engine
    trail = [(e.action, e.target, e.user_name, e.mall_id, e.store_id)
             for e in reversed(audit.entries(eng, action=None)) if e.action.startswith("campaign.")]
    target = f"campaign:{cid}"
    assert trail == [("campaign.create", target, "boss1", "m1", "s1"), ("campaign.approve", target, "boss1", "m1", "s1"),
                     ("campaign.pause", target, "boss1", "m1", "s1"), ("campaign.approve", target, "boss1", "m1", "s1"),
                     ("campaign.archive", target, "boss1", "m1", "s1")]
    with eng.connect() as conn:
        row = conn.execute(sa.select(campaigns).where(campaigns.c.id == cid)).one()
    assert (row.control_share, row.window_days, row.cooldown_s, row.status) == (0.10, 7, 86400, "archived")


def test_edit_only_draft_or_paused_and_share_fixed_after_enrollment(app: Flask, clock: FakeClock) -> None:
    cid = create(app, "boss1")
    c = login(app, "boss1")
    assert 'value="回访"' in c.get(f"/admin/campaigns/{cid}/edit").get_data(as_text=True)
    r = post_form(c, f"/admin/campaigns/{cid}/edit", {**GOOD_SMS, "name": "回访二", "control_pct": "20"})
    assert r.status_code == 303
    post_form(c, f"/admin/campaigns/{cid}/approve", {})
    r = post_form(c, f"/admin/campaigns/{cid}/edit", GOOD_SMS)
    assert r.status_code == 409 and "只能编辑草稿或已暂停的活动" in r.get_data(as_text=True)
    post_form(c, f"/admin/campaigns/{cid}/pause", {})
    eng = app.extensions["keliu"].engine
    svc = app.extensions["keliu"]
    with eng.begin() as conn:
        member = upsert_member(conn, store_id="s1", now=svc.now(), phone_e164="+8613812345678")
        conn.execute(sa.insert(campaign_members).values(campaign_id=cid, member_id=member, arm="treatment",
                                                        eligible_at=svc.now()))
    r = post_form(c, f"/admin/campaigns/{cid}/edit", {**GOOD_SMS, "control_pct": "30", "name": "x"})
    assert r.status_code == 409 and "对照组比例不能再修改" in r.get_data(as_text=True)
    assert post_form(c, f"/admin/campaigns/{cid}/edit", {**GOOD_SMS, "control_pct": "20", "name": "x"}
                     ).status_code == 303
    actions = [e.action for e in audit.entries(eng) if e.target == f"campaign:{cid}"]
    assert actions.count("campaign.update") == 2


@pytest.mark.parametrize(("changes", "field", "text"), [
    ({"consents": []}, "consents", "活动必须有同意依据"),
    ({"consents": ["marketing"]}, "consents", "同意依据不足，还需要：短信营销"),
    ({"category": "coupon", "message": "满100减20，拒收请回复R"}, "category", "tencent 不允许通过短信发送“优惠券推广”"),
    ({"category": "winback"}, "category", "tencent 不允许通过短信发送"),
    ({"category": "notice", "message": "好久不见，到店领券，拒收请回复R"}, "message", "短信内容含有 tencent 禁止的内容"),
    ({"message": "会员日积分翻倍"}, "message", "须以退订提示“拒收请回复R”结尾"),
    ({"provider": "aliyun", "message": "会员日积分翻倍，拒收请回复R"}, "message", "须以退订提示“回T退订”结尾"),
    ({"template_id": ""}, "template_id", "须填写服务商已审核的模板 ID"),
    ({"trigger": "dwell", "dwell_minutes": "20"}, "consents", "还需要：基于到店位置的优惠"),
    ({"scope": "mall:m1"}, "scope", "请选择您有权管理的门店或商圈"),
    ({"control_pct": "0"}, "control_pct", "须为 1 到 50 之间的整数"),
    ({"window_days": "abc"}, "window_days", "须为 1 到 90 之间的整数"),
    ({"segment": "visits >= many"}, "segment", "visits 须与非负整数比较"),
    ({"segment": "shoe_size = 42"}, "segment", "未知的会员事实"),
    ({"trigger": "expiring"}, "offer_id", "须附带一个优惠"),
    ({"name": ""}, "name", "活动名称须为 1–200 个字符"),
])
def test_refusals_name_the_field_and_store_nothing(app: Flask, changes: dict[str, Any], field: str,
                                                   text: str) -> None:
    c = login(app, "boss1")
    r = post_form(c, "/admin/campaigns/new?lang=zh-CN", {**GOOD_SMS, **changes})
    html = r.get_data(as_text=True)
    assert r.status_code == 422, html
    assert re.search(rf'<div class="err" data-field="{field}">[^<]*{re.escape(text)}', html), html
    assert count(app) == 0 and not [e for e in audit.entries(app.extensions["keliu"].engine)
                                    if e.action.startswith("campaign.")]


def test_refusals_in_english(app: Flask) -> None:
    c = login(app, "boss1")
    r = post_form(c, "/admin/campaigns/new?lang=en", {**GOOD_SMS, "consents": [], "message": "Double points"})
    html = unescape(r.get_data(as_text=True))
    assert r.status_code == 422
    assert "A campaign needs a consent basis" in html and 'must end with the refusal suffix "拒收请回复R"' in html
    assert "⟦" not in html


def test_mall_trade_area_campaign_needs_trade_area_consent(app: Flask) -> None:
    c = login(app, "mall")
    page = c.get("/admin/campaigns/new").get_data(as_text=True)
    assert re.findall(r'<option value="((?:store|mall):[^"]+)"', page) == ["mall:m1", "store:s1", "store:s2"]
    wechat = {**GOOD_SMS, "scope": "mall:m1", "channel": "wechat", "category": "coupon", "message": "周末满减",
              "consents": ["wechat_marketing"]}
    r = post_form(c, "/admin/campaigns/new", wechat)
    assert r.status_code == 422 and "还需要：商圈优惠" in r.get_data(as_text=True)
    r = post_form(c, "/admin/campaigns/new", {**wechat, "consents": ["wechat_marketing", "trade_area"]})
    assert r.status_code == 303  # WeChat has no SMS suffix rule; a coupon category is allowed there
    e = next(e for e in audit.entries(app.extensions["keliu"].engine) if e.action == "campaign.create")
    assert (e.user_name, e.mall_id, e.store_id) == ("mall", "m1", None)


def test_tenancy(app: Flask) -> None:
    own = create(app, "boss1")
    other = create(app, "boss2", scope="store:s2")
    assert app.test_client().get("/admin/campaigns").status_code == 302  # to the login
    assert login(app, "alice").get("/admin/campaigns").status_code == 403  # staff: the counter only
    assert login(app, "alice").get(f"/admin/campaigns/{own}/report").status_code == 403
    boss1 = login(app, "boss1")
    listing = boss1.get("/admin/campaigns").get_data(as_text=True)
    assert f'id="campaign-{own}"' in listing and f'id="campaign-{other}"' not in listing
    for path in (f"/admin/campaigns/{other}/edit", f"/admin/campaigns/{other}/report",
                 f"/admin/campaigns/{other}/report.csv"):
        assert boss1.get(path).status_code == 403, path
    assert post_form(boss1, f"/admin/campaigns/{other}/approve", {}).status_code == 403
    # a store manager cannot move a campaign into another store by editing it
    assert post_form(boss1, f"/admin/campaigns/{own}/edit", {**GOOD_SMS, "scope": "store:s2"}).status_code == 422
    mall = login(app, "mall")
    listing = mall.get("/admin/campaigns").get_data(as_text=True)
    assert f'id="campaign-{own}"' in listing and f'id="campaign-{other}"' in listing
    assert post_form(mall, f"/admin/campaigns/{other}/approve", {}).status_code == 303
    mall2 = login(app, "mall2")
    assert f'id="campaign-{own}"' not in mall2.get("/admin/campaigns").get_data(as_text=True)
    assert mall2.get(f"/admin/campaigns/{own}/report").status_code == 403
    assert login(app, "boss1").get("/admin/campaigns/999/report").status_code == 404
    # the console's navigation links the page, in both languages
    assert 'id="nav-campaigns"' in listing
    assert ">Campaigns<" in mall.get("/admin/campaigns?lang=en").get_data(as_text=True)


def test_csrf_is_required(app: Flask) -> None:
    c = login(app, "boss1")
    assert c.post("/admin/campaigns/new", data=GOOD_SMS).status_code == 400
    cid = create(app, "boss1")
    assert c.post(f"/admin/campaigns/{cid}/approve").status_code == 400
    assert count(app) == 1


def test_report_page_csv_and_sample_size(app: Flask, clock: FakeClock) -> None:
    eng = app.extensions["keliu"].engine
    svc = app.extensions["keliu"]
    now = svc.now()
    with eng.begin() as conn:
        offer = coupons.create_offer(conn, OfferSpec(title="满100减20", kind="amount_off", value=2000,
                                                     stores=("s1",), min_spend_cents=10000, valid_days=7),
                                     store_id="s1", now=now, created_by="test")
    # an SMS campaign with an offer: Aliyun (Tencent forbids coupon promotion by SMS: refused there)
    cid = create(app, "boss1", offer_id=str(offer), provider="aliyun", message="会员日积分翻倍，回T退订")
    # 40 members: 30 treated, 10 held out; a treated member came back and bought, a control one only came back
    with eng.begin() as conn:
        ids = [upsert_member(conn, store_id="s1", now=now - timedelta(days=40), phone_e164=f"+86138000000{i:02d}")
               for i in range(40)]
        for i, m in enumerate(ids):
            arm = "control" if i < 10 else "treatment"
            conn.execute(sa.insert(campaign_members).values(campaign_id=cid, member_id=m, arm=arm, eligible_at=now))
            conn.execute(sa.insert(campaign_sends).values(
                campaign_id=cid, step=0, member_id=m, channel="sms", ts=now,
                status="control" if arm == "control" else ("sent" if i % 3 else "suppressed"),
                reason=None if arm == "control" or i % 3 else "quiet_hours"))
        later = now + timedelta(days=1)
        for m in ids[10:25]:
            conn.execute(sa.text("INSERT INTO logins (ts, store_id, member_id, device_id, method, ip) "
                                 "VALUES (:t, 's1', :m, 'd', 'sms', '10.0.0.2')"), {"t": later, "m": m})
        for m in ids[0:2]:
            conn.execute(sa.text("INSERT INTO logins (ts, store_id, member_id, device_id, method, ip) "
                                 "VALUES (:t, 's1', :m, 'd', 'sms', '10.0.0.2')"), {"t": later, "m": m})
        for j, m in enumerate(ids[10:20]):
            conn.execute(sa.text(
                "INSERT INTO sales (store_id, txn_id, kind, ts, amount_cents, member_id, match, row_hash) "
                "VALUES ('s1', :x, 'sale', :t, 12000, :m, 'qr', 'h')"), {"x": f"T{j}", "t": later, "m": m})
    c = login(app, "boss1")
    page = c.get(f"/admin/campaigns/{cid}/report?lang=en")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Campaign report · 回访" in html and "⟦" not in html
    assert page.headers["Cache-Control"] == "private, no-store"
    for tab in ("tab-reach", "tab-suppressed", "tab-lift", "tab-incremental", "sample"):
        assert f'id="{tab}"' in html
    assert "Incremental [95 % CI]" in html and "Attributed (last touch)" in html
    assert "Not adjusted by CUPED" in html  # nobody visited in the 28 days before: no covariate
    raw = c.get(f"/admin/campaigns/{cid}/report.csv?lang=en")
    assert raw.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(raw.get_data(as_text=True).lstrip("\ufeff"))))
    values = {r[0]: r[1:] for r in rows if r}
    assert values["Eligible"] == ["40"] and values["Treatment"] == ["30"] and values["Control (held out)"] == ["10"]
    assert values["Sent"] == ["20"] and values["Suppressed"] == ["10"] and values["quiet hours"] == ["10"]
    # visit rate: 15/30 treated against 2/10 held out; purchase rate 10/30 against 0/10
    visit = values["Visit rate"]
    assert float(visit[0]) == pytest.approx(0.5) and float(visit[1]) == pytest.approx(0.2)
    assert float(visit[2]) == pytest.approx(0.3) and float(visit[3]) < 0.3 < float(visit[4])
    assert float(values["Purchase rate"][0]) == pytest.approx(1 / 3)
    assert values["Purchase rate"][5] == ""  # the control bought nothing: a relative lift is not estimable
    # incremental revenue = (120 yuan × 10/30 − 0) × 30 treated = 1200 yuan; attributed: the sends that went
    incremental = values["Revenue"]
    assert float(incremental[0]) == pytest.approx(120000) and incremental[3] != ""
    sent_buyers = sum(1 for i in range(10, 20) if i % 3)
    assert values["Buying members"][3] == str(sent_buyers)
    assert values["Revenue"][3] == str(sent_buyers * 12000)
    # the sample-size helper: 10 % → 12 % with a 10 % holdout needs 19,963 members (marketing.core.lift)
    html = c.get(f"/admin/campaigns/{cid}/report?lang=en&baseline=10&lift=20&control=10").get_data(as_text=True)
    assert 'data-n="19963"' in html and "19,963 eligible members are needed" in html
    html = c.get(f"/admin/campaigns/{cid}/report?lang=zh-CN&baseline=0&lift=20&control=10").get_data(as_text=True)
    assert 'id="sample-error"' in html and "请输入" in html
