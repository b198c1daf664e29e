"""``keliu demo`` as a user runs it: a real process tree on 127.0.0.1, both flows working, Ctrl-C stopping all.

login → member → (memory) gate: a captive probe is redirected to the splash, the SMS code printed on the console
logs the phone in and makes a member. frames → visits → dashboard: the sensors replay the generated captures on the
wall clock, the analytics loop rolls them up, and the built-in dashboard's API reports visitors and the login in the
funnel; no hour after now has data, and every comparison with last week has (the generated history).
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from tests.analytics.servers import free_port

pytestmark = pytest.mark.integration


def wait_for(check: Any, timeout: float, what: str, proc: subprocess.Popen[str], log: Path) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"demo exited ({proc.returncode}) while waiting for {what}:\n{log.read_text()[-3000:]}")
        try:
            got = check()
        except requests.RequestException:
            got = None
        if got:
            return got
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")


def compared(view: dict[str, Any]) -> bool:
    """Every figure of a dashboard view has last week's to compare with (a ratio and a median of nobody are none:
    before a store opens, last week's same hours had nobody)."""
    prev = {k["key"]: k["previous"] for k in view["kpis"]}
    ratios = {"capture_rate", "median_dwell_s"} if prev.get("visitors") == 0 else set()
    return all(v is not None for k, v in prev.items() if k not in ratios)


def test_demo_runs_both_flows_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    port, wx_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KELIU_")}
    env["KELIU_PORTAL_PORT"] = str(port)
    log = tmp_path / "demo.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "keliu.cli", "demo", "--wechat-port", str(wx_port)],
                                cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    stack = contextlib.ExitStack()
    try:
        started = time.monotonic()
        opened = datetime.now(ZoneInfo("Asia/Shanghai"))  # the demo writes the day's Wi-Fi joins due by then
        banner = wait_for(lambda: "login:" in log.read_text() and log.read_text(), 60, "the banner", proc, log)
        assert f"portal:    {base}/" in banner and f"dashboard: {base}/dashboard" in banner
        assert "万达广场: 星巴克、优衣库、海底捞、全家便利店; 大悦城: 喜茶、无印良品、泡泡玛特" in banner
        campaign = re.search(r"campaign:\s+(\S+/report)", banner).group(1)  # type: ignore[union-attr]
        assert campaign.startswith(base + "/admin/campaigns/")
        # the last business day's POS file, imported as `keliu pos import` does
        pos = re.search(r"POS:\s+(\S+\.csv) \((\d+) new, (\d+) already recorded, (\d+) rejected", banner)
        assert pos is not None and Path(pos.group(1)).exists() and pos.group(4) == "0", banner
        assert int(pos.group(2)) == Path(pos.group(1)).read_text(encoding="utf-8").count("\n") - 1 > 0
        user, password = re.search(r"login:\s+(\S+) / (\S+)", banner).groups()  # type: ignore[union-attr]
        assert (tmp_path / "var" / "keys" / "admin_password").read_text().strip() == password
        assert (tmp_path / "var" / "keys" / "admin_password").stat().st_mode & 0o077 == 0

        # login → member → gate
        probe = wait_for(lambda: requests.get(base + "/generate_204", allow_redirects=False, timeout=5,
                                              headers={"Host": "connectivitycheck.gstatic.com"}),
                         60, "the portal", proc, log)
        assert probe.status_code == 302 and probe.headers["Location"] == base + "/"
        assert time.monotonic() - started < 70, "the demo should answer within 70 s"
        # the RFC 8908 API and the URIs it hands out answer (no TLS listener in the demo: plain HTTP, its own port)
        api = requests.get(base + "/api/captive", timeout=5).json()
        assert api["user-portal-url"] == base + "/"
        assert requests.get(api["user-portal-url"], timeout=5).status_code == 200
        splash = requests.get(base + "/", timeout=5)
        assert splash.status_code == 200 and 'id="login"' in splash.text and 'id="wechat"' in splash.text
        r = requests.post(base + "/api/login/sms/code", json={"phone": "13812345678"}, timeout=5)
        assert r.status_code == 202, r.text
        code = wait_for(lambda: re.search(r"138\*\*\*\*5678 code (\d{6})", log.read_text()), 10, "the SMS code",
                        proc, log).group(1)
        r = requests.post(base + "/api/login/sms/verify", timeout=5,
                          json={"phone": "13812345678", "code": code,
                                "consents": {"terms": True, "marketing": True}})
        assert r.status_code == 200 and r.json()["online"] is True, r.text
        # the welcome offer's coupon, issued on the success page to a member who consented to marketing
        assert [c["title"] for c in r.json()["coupons"]] == ["连上Wi-Fi 新会员满50减10"], r.text
        assert requests.get(base + "/api/captive", timeout=5).json()["captive"] is False

        # frames → visits → dashboard
        admin = requests.Session()
        stack.callback(admin.close)
        page = admin.get(base + "/admin/login", timeout=5).text
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        r = admin.post(base + "/admin/login", data={"csrf_token": token, "name": user, "password": password},
                       allow_redirects=False, timeout=5)
        assert r.status_code == 302, r.text
        # the generated first password must be changed before anything else
        assert admin.get(base + "/admin", allow_redirects=False, timeout=5).headers["Location"].startswith(
            "/admin/password")
        page = admin.get(base + "/admin/password", timeout=5).text
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        r = admin.post(base + "/admin/password", allow_redirects=False, timeout=5, data={
            "csrf_token": token, "old": password, "new": "the demo admin's own", "new2": "the demo admin's own"})
        assert r.status_code == 303, r.text
        # the banner's store manager and mall operator log in too
        for role in ("store", "mall"):
            name, pw = re.search(rf"\n  {role}:\s+(\S+) / (\S+)", banner).groups()  # type: ignore[union-attr]
            with requests.Session() as other:
                page = other.get(base + "/admin/login", timeout=5).text
                token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
                r = other.post(base + "/admin/login", data={"csrf_token": token, "name": name, "password": pw},
                               allow_redirects=False, timeout=5)
                assert r.status_code == 302, (role, r.text)
                assert other.get(base + "/api/v1/dashboard/me", timeout=5).json()["user"]["role"] == role
                # the demo's campaign: its report, with a lift and its 95 % interval, reached with the banner's
                # logins (the store's manager and the mall's operator)
                report = other.get(campaign + "?lang=en", timeout=10)
                assert report.status_code == 200, (role, report.text[-2000:])
                assert "Campaign report · 沉睡会员唤醒（演示）" in report.text and "Attributed (last touch)" in report.text
                lows = [float(x) for x in re.findall(r'data-low="([^"]+)"', report.text)]
                highs = [float(x) for x in re.findall(r'data-high="([^"]+)"', report.text)]
                assert len(lows) == len(highs) >= 6
                # the visit rate's difference: the generated effect is large enough for its interval to exclude 0
                assert 0 < lows[0] < highs[0], (lows, highs)
                rows = {r.split(",")[0]: r.split(",")[1:] for r in other.get(
                    campaign.replace("/report", "/report.csv") + "?lang=en", timeout=10).text.splitlines() if r}
                assert rows["Eligible"] == ["3000"] and int(rows["Control (held out)"][0]) > 200
                assert int(rows["Suppressed"][0]) > 0 and int(rows["Redeemed (net)"][0]) > 0

        tz = ZoneInfo("Asia/Shanghai")

        def dashboard() -> dict[str, Any] | None:
            # today: the login (the portal's figures are counted whether or not the sensor heard the store today);
            # yesterday: visitors and passers-by (the sensors replay it at start; the history has it too)
            today = datetime.now(tz).date()
            body = admin.get(base + "/api/v1/stores/starbucks/dashboard", timeout=10).json()
            span = f"?start={today - timedelta(days=1)}&end={today - timedelta(days=1)}"
            before = admin.get(base + "/api/v1/stores/starbucks/dashboard" + span, timeout=10).json()
            yesterday = before["report"]["current"]
            ok = yesterday["visitors"] and yesterday["passersby"] and body["charts"]["funnel"][2]["value"] >= 1 + due
            return body if ok else None

        # the AP's joins of the day so far are the day's Wi-Fi logins too (the demo writes them as they fall due):
        # the shopper's login is counted beside those due when the demo started, and is the one SMS login
        stations = json.loads((tmp_path / "var" / "demo" / "starbucks-ap.json").read_text())["stations"]
        due = sum(1 for e in stations if e["start"] <= opened.hour * 3600 + opened.minute * 60 + opened.second)
        body = wait_for(dashboard, 120, "visitors, passers-by and the login on the dashboard", proc, log)
        assert body["charts"]["funnel"][3]["value"] >= 1  # the shopper opted in to membership: a new member
        with sqlite3.connect(tmp_path / "var" / "demo" / "keliu.db") as db:
            assert db.execute("SELECT count(*) FROM logins WHERE method = 'sms'").fetchone() == (1,)
            midnight = opened.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(ZoneInfo("UTC"))
            assert db.execute("SELECT count(*) FROM logins WHERE method = 'wechat' AND store_id = 'starbucks' AND "
                              "ts >= ?", (midnight.replace(tzinfo=None).isoformat(" "),)).fetchone()[0] >= due

        def connected() -> dict[str, Any] | None:
            # the portal's store has a guest Wi-Fi: the demo reads its (FAKE) AP's station list as a router does,
            # whoever is associated at this hour (nobody at night): the card says when the list was last read
            view = admin.get(base + "/api/v1/stores/starbucks/dashboard", timeout=10).json()
            card = view["connected"]
            return card if card and card["last_poll"] and card["health_text"] else None

        card = wait_for(connected, 120, "the AP's station list read", proc, log)
        assert time.time() - 120 < card["last_poll"] <= time.time()
        # the coverage is of 星巴克's opening hours (10:00-22:00): none before they begin (a run after midnight
        # Shanghai time has no slot of them yet); the day was read from midnight at the start, so it is above 0
        # once the store has opened, and whole after it closed
        local = datetime.now(ZoneInfo("Asia/Shanghai")).time()
        assert (card["coverage"] is None) == (local < dtime(10, 0)), card
        if local >= dtime(10, 1):
            assert card["coverage"] > 0
        if local >= dtime(22, 0):
            assert card["coverage"] == 1.0

        # no store has data for an hour that has not begun; every comparison with last week has data
        now = datetime.now(tz)
        for store in ("starbucks", "uniqlo", "haidilao", "familymart", "heytea", "muji", "popmart"):
            view = admin.get(base + f"/api/v1/stores/{store}/dashboard", timeout=10).json()
            current = view["report"]["current"]
            if current["start"] != now.date().isoformat():  # midnight passed between the two readings
                continue
            later = current["hourly_visitors"][now.hour + 1:] + current["hourly_passersby"][now.hour + 1:]
            assert later == [None] * len(later), (store, current["hourly_visitors"])
            assert compared(view), (store, view["kpis"])
            assert view["title"] != "Demo Store"
        for mall in ("wanda", "joycity"):
            view = admin.get(base + f"/api/v1/malls/{mall}/dashboard", timeout=10).json()
            assert compared(view), (mall, view["kpis"])
        zh = admin.get(base + "/api/v1/dashboard/me", timeout=5).json()
        assert {s["name"] for s in zh["stores"]} >= {"星巴克", "全家便利店"} and "Demo Store" not in str(zh)
        page = admin.get(base + "/dashboard", timeout=5)
        assert page.status_code == 200 and "echarts" in page.text
    finally:
        stack.close()
        proc.send_signal(signal.SIGINT)
        try:
            rc = proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    assert rc == 0, log.read_text()[-3000:]
    text = log.read_text()
    assert "keliu demo: stopped" in text
    # quiet: no library chatter, no development-server warning, no periodic analytics line
    for noise in ("development server", "setup plugin", "rolled up", "[INFO]", "Booting worker", "SetuptoolsDeprecation"):
        assert noise not in text, noise
    left = subprocess.run(["pgrep", "-f", str(tmp_path / "var")], capture_output=True, text=True, check=False)
    assert left.stdout == "", "children left running: " + left.stdout
    for p in (port, wx_port):
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{p}/", timeout=2)
