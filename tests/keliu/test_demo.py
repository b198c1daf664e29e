"""``keliu demo`` as a user runs it: a real process tree on 127.0.0.1, both flows working, Ctrl-C stopping all.

login → member → (memory) gate: a captive probe is redirected to the splash, the SMS code printed on the console
logs the phone in and makes a member. frames → visits → dashboard: the sensor replays the generated capture, the
analytics loop rolls it up, and the built-in dashboard's API reports visitors and the login in the funnel.
"""
from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
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
        banner = wait_for(lambda: "login:" in log.read_text() and log.read_text(), 60, "the banner", proc, log)
        assert f"portal:    {base}/" in banner and f"dashboard: {base}/dashboard" in banner
        user, password = re.search(r"login:\s+(\S+) / (\S+)", banner).groups()  # type: ignore[union-attr]
        assert (tmp_path / "var" / "keys" / "admin_password").read_text().strip() == password
        assert (tmp_path / "var" / "keys" / "admin_password").stat().st_mode & 0o077 == 0

        # login → member → gate
        probe = wait_for(lambda: requests.get(base + "/generate_204", allow_redirects=False, timeout=5,
                                              headers={"Host": "connectivitycheck.gstatic.com"}),
                         60, "the portal", proc, log)
        assert probe.status_code == 302 and probe.headers["Location"] == base + "/"
        splash = requests.get(base + "/", timeout=5)
        assert splash.status_code == 200 and 'id="login"' in splash.text and 'id="wechat"' in splash.text
        r = requests.post(base + "/api/login/sms/code", json={"phone": "13812345678"}, timeout=5)
        assert r.status_code == 202, r.text
        code = wait_for(lambda: re.search(r"138\*\*\*\*5678 code (\d{6})", log.read_text()), 10, "the SMS code",
                        proc, log).group(1)
        r = requests.post(base + "/api/login/sms/verify", timeout=5,
                          json={"phone": "13812345678", "code": code, "consents": {"terms": True}})
        assert r.status_code == 200 and r.json()["online"] is True, r.text
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

        def dashboard() -> dict[str, Any] | None:
            # the looping replay runs 60x ahead of the clock from now on: near the store's midnight its sightings
            # are already tomorrow's, so the range is the store's yesterday to tomorrow, not the default today
            today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
            span = f"?start={today - timedelta(days=1)}&end={today + timedelta(days=1)}"
            body = admin.get(base + "/api/v1/stores/demo-store/dashboard" + span, timeout=10).json()
            funnel = {step["value"] for step in body["charts"]["funnel"][2:3]}
            days = body["charts"]["days"]
            return body if sum(days["visitors"]) > 0 and sum(days["passersby"]) > 0 and funnel == {1} else None

        body = wait_for(dashboard, 120, "visitors, passers-by and the login on the dashboard", proc, log)
        assert body["charts"]["funnel"][3]["value"] == 1  # the login made a new member
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
    assert "keliu demo: stopped" in log.read_text()
    left = subprocess.run(["pgrep", "-f", str(tmp_path / "var")], capture_output=True, text=True, check=False)
    assert left.stdout == "", "children left running: " + left.stdout
    for p in (port, wx_port):
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{p}/", timeout=2)
