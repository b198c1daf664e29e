"""End to end on the router bench: 微信连Wi-Fi from a phone namespace, with the FAKE WeChat on the "internet".

Namespaces ``klw-*`` (keliu.testing.netbench.Bench): the portal runs in the router namespace with the real NftGate
and the kernel's neighbour table; the FAKE WeChat runs in the internet namespace on ``wx.qq.com`` (one of WeChat's
release hosts, resolved by the router's dnsmasq, which puts its address into the release set); Debian's chromium,
driven by Playwright, runs in phone 0's namespace and taps "WeChat login". Phone 1 is used with curl to look at the
release window and to attack.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from keliu.testing.wechat_fake import FakeAccounts
from tests.conftest import ROOT, require, require_root_netns, require_tool

pytestmark = [pytest.mark.integration, pytest.mark.netns, pytest.mark.browser]

ACC = FakeAccounts()
FAKE_HOST, FAKE_IP, FAKE_PORT = "wx.qq.com", "198.51.100.40", 8400
FAKE = f"http://{FAKE_HOST}:{FAKE_PORT}"
MP_TOKEN = "bench-official-account-token"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

DRIVER = r"""
import json, sys
from playwright.sync_api import sync_playwright
portal = sys.argv[1]
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=json.loads(sys.argv[2]))
    page = browser.new_page()
    page.goto(portal + "/", timeout=20000)
    page.click("#wechat")  # the splash's "微信连Wi-Fi" button
    page.wait_for_selector("#wechat-login", timeout=20000)
    fake_banner = page.locator("#fake-banner").count()
    page.check("input[name=terms]")
    page.click("#wechat-login")
    page.wait_for_selector("#wechat-online", timeout=30000)
    print(json.dumps({"url": page.url, "fake_banner": fake_banner}))
    browser.close()
"""

#: WeChat's browser on the (now online) phone opens the member card: 网页授权 at the FAKE, then the phone is bound
#: once by an SMS code (the console SMS backend prints it to the portal's output, which the driver reads).
MEMBER_DRIVER = r"""
import json, re, sys, time
from playwright.sync_api import sync_playwright
portal, args, sms_log = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
ua = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/120 Mobile MicroMessenger/8.0.50"
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
    page = browser.new_page(user_agent=ua)
    page.goto(portal + "/wechat/member", timeout=20000)
    page.wait_for_selector("input[name=phone]", timeout=20000)
    bind_url = page.url
    page.fill("input[name=phone]", "13800138000")
    page.click("button[value=code]")
    page.wait_for_selector("input[name=code]")
    code = None
    for _ in range(50):
        found = re.findall(r"keliu sms: \S+ code (\d{6})", open(sms_log, encoding="utf-8").read())
        if found:
            code = found[-1]
            break
        time.sleep(0.1)
    page.fill("input[name=phone]", "13800138000")
    page.fill("input[name=code]", code)
    page.click("button[value=bind]")
    page.wait_for_selector("#member-card", timeout=20000)
    print(json.dumps({"bind_url": bind_url, "phone": page.inner_text("#member-phone")}))
    browser.close()
"""


def wait_port(bench: Any, ns: str, host: str, port: int, timeout: float = 30.0) -> None:
    code = (f"import socket,sys\ntry:\n socket.create_connection(({host!r},{port}),0.5).close()\n"
            "except OSError:\n sys.exit(1)")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if bench.run(ns, [sys.executable, "-c", code]).returncode == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"{host}:{port} in {ns} did not open")


def curl(bench: Any, i: int, url: str, *extra: str) -> tuple[int, str]:
    """(HTTP status or 0 when the connection failed, body) of a GET from phone ``i``."""
    r = bench.run(bench.phone(i).ns, ["curl", "-s", "-m", "4", "-o", "-", "-w", "\n%{http_code}", *extra, url])
    body, _, status = r.stdout.rpartition("\n")
    return (int(status) if status.isdigit() else 0), body


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    require_root_netns()
    for tool in ("nft", "dnsmasq", "busybox", "curl"):
        require_tool(tool)
    try:
        from keliu.testing.netbench import Bench
    except ImportError:
        require(False, "keliu.testing.netbench is not available")
        raise
    tmp = tmp_path_factory.mktemp("wechat-e2e")
    with Bench("klw", phones=2, portal_port=8080, portal_captive_port=8081) as b:
        with (tmp / "fake.log").open("w") as log:  # the child keeps its own copy of the descriptor
            b.popen(b.inet, [sys.executable, "-m", "keliu.testing.wechat_fake", "--host", FAKE_IP, "--port",
                             str(FAKE_PORT)], stdout=subprocess.DEVNULL, stderr=log, cwd=str(ROOT))
        portal_ip, portal_port = b.portal_address
        toml = tmp / "keliu.toml"
        toml.write_text(f"""
database_url = "sqlite:///{tmp / 'keliu.db'}"
var_dir = "{tmp / 'var'}"
[portal]
host = "{portal_ip}"
port = {portal_port}
captive_port = 8081
public_url = "http://{portal_ip}:{portal_port}"
gate = "nft"
workers = 2
[router]
portal_ip = "{portal_ip}"
[wechat]
enabled = true
fake = true
app_id = "{ACC.wifi_app_id}"
shop_id = "{ACC.shop_id}"
secret_key = "{ACC.secret_key}"
oauth_app_id = "{ACC.oauth_app_id}"
oauth_secret = "{ACC.oauth_secret}"
token = "{MP_TOKEN}"
ssid = "keliu-bench"
bssid = "02:00:00:00:77:01"
release_seconds = 60
releases_per_hour = 3
open_base = "{FAKE}"
api_base = "{FAKE}"
wifi_js_url = "{FAKE}/resources/js/wechatticket/wechatutil.js"
""", encoding="utf-8")
        # the production server (gunicorn, 2 workers): single use and the release count must hold across processes
        with (tmp / "portal.log").open("w") as log, (tmp / "portal.out").open("w") as out:
            b.popen(b.router, ["env", f"KELIU_CONFIG={toml}", "PYTHONUNBUFFERED=1", sys.executable, "-m",
                               "keliu.cli", "portal"], stdout=out, stderr=log, cwd=str(ROOT))
        wait_port(b, b.inet, FAKE_IP, FAKE_PORT)
        wait_port(b, b.router, portal_ip, portal_port)
        wait_port(b, b.router, portal_ip, 8081)
        b.portal_log = tmp / "portal.log"  # type: ignore[attr-defined]
        b.portal_out = tmp / "portal.out"  # type: ignore[attr-defined]
        b.cookie_dir = tmp  # type: ignore[attr-defined]
        yield b


def start_release(bench: Any, i: int) -> int:
    """Phone ``i`` asks for the hand-off like the page's form does (CSRF token and cookie included)."""
    base = "http://{}:{}".format(*bench.portal_address)
    jar = str(bench.cookie_dir / f"jar{i}")
    _status, page = curl(bench, i, base + "/wechat/", "-c", jar, "-b", jar)
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    status, _ = curl(bench, i, base + "/wechat/start", "-c", jar, "-b", jar, "--data", f"terms=1&csrf_token={token}")
    return status


def released(bench: Any) -> dict[str, int]:
    """MAC → timeout (s) of the kernel's release set elements."""
    r = bench.run(bench.router, ["nft", "-j", "list", "set", "inet", "keliu", "released"])
    sets = [o["set"] for o in json.loads(r.stdout)["nftables"] if "set" in o]
    return {e["elem"]["val"]["concat"][0]: int(e["elem"]["timeout"]) for e in sets[0].get("elem", [])}


def allowed_macs(bench: Any) -> set[str]:
    return {c.mac for c in bench.gate().clients()}


def test_release_opens_only_wechat_hosts(bench: Any, chromium: str) -> None:
    assert curl(bench, 1, FAKE + "/")[0] == 0  # before: WeChat's host is closed
    assert start_release(bench, 1) == 200
    in_kernel = released(bench)  # the kernel holds the release, for release_seconds (60) at most
    assert list(in_kernel) == [bench.phone(1).mac] and 0 < in_kernel[bench.phone(1).mac] <= 60
    status, body = curl(bench, 1, FAKE + "/")
    assert status == 200 and "FAKE WeChat" in body  # released: WeChat's host opens ...
    status, body = curl(bench, 1, "http://www.example.com/")
    assert "internet www.example.com" not in body  # ... and nothing else (HTTP still goes to the portal)
    assert curl(bench, 1, "https://www.example.com/", "-k")[0] == 0
    assert bench.phone(1).mac not in allowed_macs(bench)


def test_wechat_login_from_chromium_then_replay_and_forgery_change_nothing(bench: Any, chromium: str) -> None:
    pytest.importorskip("playwright")
    phone = bench.phone(0)
    assert "internet www.example.com" not in curl(bench, 0, "http://www.example.com/")[1]
    base = "http://{}:{}".format(*bench.portal_address)
    r = bench.run(phone.ns, [sys.executable, "-c", DRIVER, base, json.dumps(CHROMIUM_ARGS)], timeout=90,
                  env={"HOME": str(bench.cookie_dir), "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"})
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["fake_banner"] == 1  # the demo says FAKE
    auth_url = result["url"]
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(auth_url).query))
    assert auth_url.startswith(base + "/wechat/auth?") and set(q) == {"extend", "openId", "tid"}
    # the phone is online: the Gate holds it and the internet answers
    assert phone.mac in allowed_macs(bench) and phone.mac not in released(bench)
    assert "internet www.example.com" in curl(bench, 0, "http://www.example.com/")[1]

    before = sorted((c.mac, c.ip) for c in bench.gate().clients())
    log_size = bench.portal_log.stat().st_size
    # the same callback again, from the same phone: a replay
    assert curl(bench, 0, auth_url)[0] == 403
    # the same callback from another phone (bound to phone 0's MAC and IP)
    assert curl(bench, 1, auth_url)[0] == 403
    # a forged extend from phone 1
    forged = dict(q, extend=q["extend"][:-4] + ("AAAA" if not q["extend"].endswith("AAAA") else "BBBB"))
    assert curl(bench, 1, base + "/wechat/auth?" + urllib.parse.urlencode(forged))[0] == 403
    assert sorted((c.mac, c.ip) for c in bench.gate().clients()) == before
    assert "internet www.example.com" not in curl(bench, 1, "http://www.example.com/")[1]
    with bench.portal_log.open(encoding="utf-8") as fh:
        fh.seek(log_size)
        new_log = fh.read()
    assert "replayed" in new_log and "forged" in new_log


def test_member_page_inside_wechat_binds_phone_then_follow_is_recorded(bench: Any, chromium: str) -> None:
    """网页授权 end to end: needs phone 0 online (the previous test), as a member page is opened after login."""
    pytest.importorskip("playwright")
    phone = bench.phone(0)
    if phone.mac not in allowed_macs(bench):
        pytest.skip("phone 0 is not online (the 连Wi-Fi test did not run first)")
    base = "http://{}:{}".format(*bench.portal_address)
    r = bench.run(phone.ns, [sys.executable, "-c", MEMBER_DRIVER, base, json.dumps(CHROMIUM_ARGS),
                             str(bench.portal_out)], timeout=90,
                  env={"HOME": str(bench.cookie_dir), "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"})
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["bind_url"].startswith(base + "/wechat/bind")
    assert "13800138000" not in result["phone"] and result["phone"].endswith("8000")

    # WeChat's servers push "subscribe" for the same person (the 网页授权 openid) to the official-account endpoint
    from keliu.testing.wechat_fake import openid_for

    openid = openid_for(ACC.oauth_app_id, "alice")
    push = ("from keliu.testing.wechat_fake import send_push\nimport sys, time\n"
            f"r = send_push({base + '/wechat/mp'!r}, {MP_TOKEN!r}, to_user='gh_bench', from_user={openid!r}, "
            "event='subscribe', now=int(time.time()), signature=sys.argv[1] or None)\n"
            "print(r.status_code, r.text)")
    forged = bench.run(bench.inet, [sys.executable, "-c", push, "0" * 40], cwd=str(ROOT))
    assert forged.stdout.split()[0] == "403", forged.stderr
    ok = bench.run(bench.inet, [sys.executable, "-c", push, ""], cwd=str(ROOT))
    assert ok.stdout.split() == ["200", "success"], ok.stderr
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{bench.cookie_dir / 'keliu.db'}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT f.event, m.phone_e164 FROM wechat_follows f JOIN members m ON m.id = f.member_id")).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [("subscribe", "+8613800138000")]
