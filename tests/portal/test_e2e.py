"""End to end on the router's network-namespace bench: the real nftables ruleset, dnsmasq (DHCP option 114), an
"internet" answering the OS probes, ``keliu portal`` (gunicorn) with the nft Gate in the router namespace, and
phones driving it with curl and with Debian's chromium (Playwright, never a downloaded browser).

Set ``KELIU_SCREENSHOTS=1`` to write the splash screenshots into ``docs/screenshots/``.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, require, require_root_netns, require_tool

pytestmark = [pytest.mark.integration, pytest.mark.netns]
SAVE_SHOTS = os.environ.get("KELIU_SCREENSHOTS") == "1"  # read before the fixtures clear KELIU_*

PROBES = [("connectivitycheck.gstatic.com", "/generate_204"), ("captive.apple.com", "/hotspot-detect.html"),
          ("www.msftconnecttest.com", "/connecttest.txt"), ("detectportal.firefox.com", "/success.txt"),
          ("connect.rom.miui.com", "/generate_204")]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable"]


def wait_port(bench: Any, ns: str, host: str, port: int, proc: subprocess.Popen[Any], timeout: float = 60) -> None:
    code = (f"import socket,sys\ntry:\n socket.create_connection(({host!r},{port}),0.5).close()\n"
            "except OSError:\n sys.exit(1)")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the portal exited"
        if bench.run(ns, [sys.executable, "-c", code]).returncode == 0:
            return
        time.sleep(0.3)
    raise AssertionError(f"{host}:{port} in {ns} did not open")


@contextlib.contextmanager
def running_portal(prefix: str, tmp: Path, phones: int = 2) -> Iterator[Any]:
    """A bench with ``keliu portal`` (gunicorn, the captive front, HTTPS, the nft Gate, dnsmasq's lease file)
    running in its router namespace; the bench gets ``base``, ``out`` (the portal's output) and ``tmpdir``."""
    require_root_netns()
    for tool in ("nft", "dnsmasq", "busybox", "curl"):
        require_tool(tool)
    try:
        from keliu.testing.netbench import Bench
    except ImportError:
        require(False, "keliu.testing.netbench is not available")
        raise
    with Bench(prefix, phones=phones, portal_port=8080, portal_captive_port=8081) as b:
        ip, port = b.portal_address
        cert, key = b.portal_cert
        toml = tmp / "keliu.toml"
        toml.write_text(f"""
database_url = "sqlite:///{tmp / 'keliu.db'}"
var_dir = "{tmp / 'var'}"
[portal]
host = "{ip}"
port = {port}
captive_port = 8081
public_url = "http://{ip}:{port}"
api_url = "https://{b.cfg.portal_name}:8443/api/captive"
https_port = 8443
https_cert = "{cert}"
https_key = "{key}"
gate = "nft"
workers = 2
dhcp_leases = "{b.tmp / 'leases'}"
[router]
portal_ip = "{ip}"
[sms]
resend_s = 1
""", encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("KELIU_")}
        env.update({"KELIU_CONFIG": str(toml), "PYTHONUNBUFFERED": "1"})
        out = (tmp / "portal.out").open("w")
        proc = b.popen(b.router, [sys.executable, "-m", "keliu.cli", "portal"], stdout=out,
                       stderr=subprocess.STDOUT, cwd=str(ROOT), env=env)
        b.popen(b.inet, [sys.executable, "-c", ECHO_SERVER])
        wait_port(b, b.router, ip, port, proc)
        wait_port(b, b.router, ip, 8443, proc)
        wait_port(b, b.router, ip, 8081, proc)
        b.base = f"http://{ip}:{port}"  # type: ignore[attr-defined]
        b.out = tmp / "portal.out"  # type: ignore[attr-defined]
        b.tmpdir = tmp  # type: ignore[attr-defined]
        try:
            yield b
        finally:
            out.close()
            sys.stderr.write((tmp / "portal.out").read_text()[-3000:])


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with running_portal("klp", tmp_path_factory.mktemp("portal-e2e")) as b:
        yield b


def curl(bench: Any, i: int, url: str, *extra: str) -> tuple[int, str, str]:
    """(status or 0 if the connection failed, body, Location) of a request from phone ``i``."""
    r = bench.run(bench.phone(i).ns, ["curl", "-s", "-m", "5", "-o", "-", "-w", "\n%{http_code} %{redirect_url}",
                                      *extra, url])
    body, _, tail = r.stdout.rpartition("\n")
    status, _, location = tail.partition(" ")
    return (int(status) if status.isdigit() else 0), body, location


def sms_code(bench: Any, masked: str, after: int = 0) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = re.findall(rf"keliu sms: {re.escape(masked)} code (\d{{6}})", bench.out.read_text())
        if len(found) > after:
            return found[-1]
        time.sleep(0.1)
    raise AssertionError("no SMS code in the portal's output")


def sms_count(bench: Any) -> int:
    return len(re.findall(r"keliu sms: ", bench.out.read_text()))


def curl_login(bench: Any, i: int, number: str, masked: str, extra: str = "") -> tuple[int, str]:
    jar = str(bench.tmpdir / f"jar{i}")
    _s, page, _l = curl(bench, i, bench.base + "/", "-c", jar, "-b", jar)
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    before = len(re.findall(rf"keliu sms: {re.escape(masked)} code", bench.out.read_text()))
    status, _b, _l = curl(bench, i, bench.base + "/login/sms/code", "-c", jar, "-b", jar,
                          "--data", f"csrf_token={token}&phone={number}")
    assert status == 200
    code = sms_code(bench, masked, before)
    status, _b, location = curl(bench, i, bench.base + "/login/sms/verify", "-c", jar, "-b", jar,
                                "--data", f"csrf_token={token}&phone={number}&code={code}&terms=1{extra}")
    return status, location


ECHO_SERVER = """
import socket, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7100))
s.listen()
def serve(c):
    while d := c.recv(100):
        c.sendall(d)
while True:
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()
"""
# a chat-like connection: a message every 100 ms; prints "open" once it flows and "cut ..." when it dies
ECHO_CLIENT = """
import socket, sys, time
c = socket.create_connection(("www.example.com", 7100), timeout=3)
for i in range(400):
    try:
        c.sendall(b"x")
        assert c.recv(10) == b"x"
    except OSError as e:
        print("cut", i, type(e).__name__, flush=True)
        sys.exit(0)
    if i == 3:
        print("open", flush=True)
    time.sleep(0.1)
print("never cut", flush=True)
"""


def stream(bench: Any, i: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(["ip", "netns", "exec", bench.phone(i).ns, sys.executable, "-c", ECHO_CLIENT],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "open"  # the connection is open and flowing
    return proc


def assert_cut(proc: subprocess.Popen[str]) -> None:
    try:
        out, _ = proc.communicate(timeout=20)  # the client would run 40 s: only a cut ends it this early
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError("the open connection was not cut") from None
    assert out.startswith("cut "), out


def assert_captive(bench: Any, i: int) -> None:
    for host, path in PROBES:
        status, _body, location = curl(bench, i, f"http://{host}{path}")
        assert (status, location) == (302, bench.base + "/"), (host, path)


def test_curl_probes_login_logout_kick(bench: Any) -> None:
    assert_captive(bench, 0)
    # the router sends a foreign host's HTTP to the captive front, the portal's own address to gunicorn
    _s, front, _l = curl(bench, 0, "http://connectivitycheck.gstatic.com/generate_204", "-D", "-")
    assert front.startswith("HTTP/1.1 302") and "\ndate: " in front.lower() and "server:" not in front.lower()
    _s, own, _l = curl(bench, 0, f"http://{bench.portal_address[0]}/", "-D", "-")
    assert own.startswith("HTTP/1.1 200") and "server:" not in own.lower() and "csrf_token" in own
    assert curl(bench, 0, "https://www.example.com/", "-k")[0] == 0  # HTTPS is never intercepted
    curl(bench, 0, "http://news.example.com/today")  # the page asked first is kept for after the login
    status, location = curl_login(bench, 0, "13812345678", "138****5678")
    assert (status, location) == (303, "http://news.example.com/today")
    status, body, _l = curl(bench, 0, "http://www.example.com/hello")
    assert (status, body.strip()) == (200, "internet www.example.com/hello")
    status, body, _l = curl(bench, 0, "http://captive.apple.com/hotspot-detect.html")
    assert status == 200 and "Success" in body
    assert bench.phone(0).mac in {c.mac for c in bench.gate().clients()}

    # logout: redirected again, and an open TCP connection is cut
    s = stream(bench, 0)
    jar = str(bench.tmpdir / "jar0")
    _st, page, _l = curl(bench, 0, bench.base + "/status", "-c", jar, "-b", jar)
    assert "剩余时间" in page
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    assert curl(bench, 0, bench.base + "/logout", "-c", jar, "-b", jar, "--data", f"csrf_token={token}")[0] == 200
    assert_cut(s)
    assert_captive(bench, 0)

    # kick from the admin
    assert curl_login(bench, 0, "13812345678", "138****5678")[0] == 303
    s = stream(bench, 0)
    from keliu import keys

    password = keys.admin_password(bench.tmpdir / "var")
    ajar = str(bench.tmpdir / "admin")
    run = lambda *a: bench.run(bench.router, ["curl", "-s", "-m", "5", "-c", ajar, "-b", ajar, *a])
    page = run(bench.base + "/admin/login").stdout
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    run(bench.base + "/admin/login", "--data", f"csrf_token={token}&name=admin&password={password}")
    # the generated first password must be changed at the first login
    page = run(bench.base + "/admin/password").stdout
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    changed = run("-o", "/dev/null", "-w", "%{http_code}", bench.base + "/admin/password", "--data",
                  f"csrf_token={token}&old={password}&new=an-admin-password&new2=an-admin-password")
    assert changed.stdout == "303"
    page = run(bench.base + "/admin").stdout
    assert "138****5678" in page and "13812345678" not in page
    from portal.edges.clients import device_of

    # the device id the portal shows is the HMAC of the MAC it read from the router's neighbour table
    assert device_of(keys.secret_bytes(bench.tmpdir / "var", "device_hmac"), bench.phone(0).mac) in page
    sid = re.search(r'/admin/sessions/(\d+)/kick', page).group(1)  # type: ignore[union-attr]
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    kicked = run("-o", "/dev/null", "-w", "%{http_code}", bench.base + f"/admin/sessions/{sid}/kick",
                 "--data", f"csrf_token={token}")
    assert kicked.stdout == "303"
    assert_cut(s)
    assert_captive(bench, 0)
    assert bench.phone(0).mac not in {c.mac for c in bench.gate().clients()}
    assert "13812345678" not in bench.out.read_text()


def test_rfc8908_over_https_from_dhcp_option_114(bench: Any) -> None:
    phone = bench.phone(1)
    assert phone.captive_api == "https://portal.keliu.lan:8443/api/captive"
    status, body, _l = curl(bench, 1, phone.captive_api, "--cacert", str(bench.ca_file),
                            "-H", "Accept: application/captive+json")
    assert status == 200
    doc = json.loads(body)
    assert doc["captive"] is True and doc["user-portal-url"] == "https://portal.keliu.lan:8443/"
    # the user portal of RFC 8908 is served over TLS by the same listener, with a certificate the phone trusts
    status, body, _l = curl(bench, 1, doc["user-portal-url"], "--cacert", str(bench.ca_file))
    assert status == 200 and 'name="phone"' in body


DRIVER = r"""
import json, re, sys, time
from playwright.sync_api import sync_playwright
base, args, out_log, shots = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
first = "http://www.example.com/spring-sale?utm=wifi"
result = {}
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
    phone = dict(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True)
    en = browser.new_context(locale="en-US", **phone)
    page = en.new_page()
    page.goto(first, timeout=20000)
    result["en_url"] = page.url
    page.wait_for_selector("#phone")
    page.screenshot(path=shots + "/portal-splash-en.png", full_page=True)
    en.close()
    ctx = browser.new_context(locale="zh-CN", **phone)
    page = ctx.new_page()
    page.goto(first, timeout=20000)
    result["splash_url"] = page.url
    result["lang"] = page.get_attribute("html", "lang")
    page.screenshot(path=shots + "/portal-splash-zh.png", full_page=True)
    page.fill("#phone", "13912345678")
    page.click("#send")
    page.wait_for_selector("#notice")
    code = None
    for _ in range(100):
        found = re.findall(r"keliu sms: 139\*\*\*\*5678 code (\d{6})", open(out_log, encoding="utf-8").read())
        if found:
            code = found[-1]
            break
        time.sleep(0.1)
    page.fill("#code", code)
    page.check("#terms")
    page.click("#connect")
    try:
        page.wait_for_url(first, timeout=15000)
    except Exception as exc:
        print(json.dumps({"url": page.url, "error": str(exc)[:300], "body": page.inner_text("body")[:500]}))
        raise
    result["landed"] = page.url
    result["body"] = page.inner_text("body")
    browser.close()
print(json.dumps(result))
"""


@pytest.mark.browser
def test_chromium_logs_in_and_lands_on_the_page_first_asked_for(bench: Any, chromium: str,
                                                                tmp_path: Path) -> None:
    pytest.importorskip("playwright")
    shots = tmp_path / "shots"
    shots.mkdir()
    r = bench.run(bench.phone(1).ns, [sys.executable, "-c", DRIVER, bench.base, json.dumps(CHROMIUM_ARGS),
                                      str(bench.out), str(shots)], timeout=120,
                  env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["splash_url"] == bench.base + "/" and result["en_url"] == bench.base + "/"
    assert result["lang"] == "zh-CN"
    assert result["landed"] == "http://www.example.com/spring-sale?utm=wifi"
    assert result["body"].strip() == "internet www.example.com/spring-sale?utm=wifi"
    assert bench.phone(1).mac in {c.mac for c in bench.gate().clients()}
    for lang in ("zh", "en"):
        png = shots / f"portal-splash-{lang}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        if SAVE_SHOTS:
            dest = ROOT / "docs" / "screenshots"
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy(png, dest / png.name)
