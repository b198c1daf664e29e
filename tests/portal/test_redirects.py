"""``safe_next`` (a table of targets) and, against a real gunicorn, the ``Location`` a browser receives after the
admin login and after the WeChat authorization (issue 12 item 3)."""
from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urljoin, urlsplit

import pytest
import requests

from portal.core.redirects import safe_next
from tests.portal.live import WECHAT_UA, LivePortal, live_portal

LOCAL = ["/", "/admin", "/admin?done=saved", "/a/", "/dashboard/store/%E5%BA%97?lang=en", "/wechat/member",
         "/x#//y", "/dashboard?start=2026-11-01&end=2026-11-30"]
FOREIGN = ["", "admin", "//evil.example", "///evil.example", "/\t/evil.example", "/\n/evil.example",
           "/\r\nSet-Cookie: a=b", "/\\evil.example", "\\/evil.example", "/%5Cevil.example", "/%2F/evil.example",
           "/%2f%2fevil.example", "/%09/evil.example", "/%0d%0aSet-Cookie:%20a=b", "/.//evil.example",
           "/a/../b", "/..", "http://evil.example/", "https:evil.example", "javascript:alert(1)",
           "/ /evil.example", "/\x7f/evil.example", "/\u3000/evil.example", "/%E2%80%A8/x", "/%FF", "/%",
           "/" + "a" * 2048, "/;//evil.example"]


@pytest.mark.parametrize("target", LOCAL)
def test_local_paths_are_kept(target: str) -> None:
    assert safe_next(target, "/default") == target


@pytest.mark.parametrize("target", FOREIGN)
def test_anything_else_gives_the_default(target: str) -> None:
    assert safe_next(target, "/default") == "/default"


def test_not_a_string_gives_the_default() -> None:
    assert safe_next(None, "/d") == "/d"
    assert safe_next(["/admin"], "/d") == "/d"


# --- on the wire --------------------------------------------------------------------------------------------------

ATTACKS = ["/%09/evil.example", "/%0a/evil.example", "/%0d%0aSet-Cookie:%20pwned=1", "//evil.example",
           "/%5Cevil.example", "/%2F/evil.example", "/.//evil.example"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LivePortal]:
    with live_portal(tmp_path_factory.mktemp("redirects")) as portal:
        yield portal


def assert_stays_here(live: LivePortal, resp: requests.Response) -> str:
    assert resp.status_code in (302, 303), (resp.status_code, resp.text[:300])
    location = resp.headers["Location"]
    target = urlsplit(urljoin(live.base + "/somewhere", location))
    assert (target.scheme, target.netloc) == ("http", urlsplit(live.base).netloc), location
    assert not re.search(r"[\x00-\x20\x7f\\]", location), location
    assert "pwned" not in resp.headers.get("Set-Cookie", "")
    return location


def admin_login(live: LivePortal, query: str) -> requests.Response:
    with requests.Session() as s:
        page = s.get(live.base + "/admin/login", timeout=10).text
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
        assert token is not None
        return s.post(live.base + "/admin/login?" + query, allow_redirects=False, timeout=10,
                      data={"csrf_token": token.group(1), "name": "admin", "password": live.admin_password()})


@pytest.mark.integration
@pytest.mark.parametrize("attack", ATTACKS)
def test_admin_login_next_never_leaves_the_site(live: LivePortal, attack: str) -> None:
    resp = admin_login(live, "next=" + attack)
    assert assert_stays_here(live, resp) == "/admin"


@pytest.mark.integration
def test_admin_login_next_keeps_a_local_page(live: LivePortal) -> None:
    resp = admin_login(live, "next=%2Fdashboard%3Flang%3Den")
    assert assert_stays_here(live, resp) == "/dashboard?lang=en"


def wechat_authorize(live: LivePortal, s: requests.Session, attack: str) -> requests.Response:
    """/wechat/oauth?next=… → the (fake) WeChat authorize page → back to our callback; the callback's answer."""
    r = s.get(live.base + "/wechat/oauth?scope=snsapi_base&next=" + attack, allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text[:300]
    r = s.get(r.headers["Location"].split("#", 1)[0], headers={"User-Agent": WECHAT_UA}, allow_redirects=False,
              timeout=10)
    assert r.status_code == 302 and r.headers["Location"].startswith(live.base + "/wechat/oauth/callback?")
    return s.get(r.headers["Location"], allow_redirects=False, timeout=10)


@pytest.mark.integration
def test_wechat_next_never_leaves_the_site(live: LivePortal) -> None:
    with requests.Session() as s:
        wechat_flow(live, s)


def wechat_flow(live: LivePortal, s: requests.Session) -> None:
    # first visit: no member yet, so the callback sends the phone to bind its number, carrying next along
    resp = wechat_authorize(live, s, "/%09/evil.example")
    bind = assert_stays_here(live, resp)
    assert bind.startswith("/wechat/bind")
    page = s.get(urljoin(live.base, bind), timeout=10).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert token is not None
    form = {"csrf_token": token.group(1), "phone": "13800138111"}
    before = live.sms_count("8111")
    r = s.post(urljoin(live.base, bind), data={**form, "action": "code"}, timeout=10)
    assert r.status_code == 200, r.text[:300]
    r = s.post(urljoin(live.base, bind), allow_redirects=False, timeout=10,
               data={**form, "action": "bind", "code": live.sms_code("8111", before)})
    assert assert_stays_here(live, r) == "/wechat/member"
    # a bound member: the callback redirects straight to next
    for attack in ATTACKS:
        assert assert_stays_here(live, wechat_authorize(live, s, attack)) == "/wechat/member"
    # and the bind form's own next
    page = s.get(live.base + "/wechat/bind?next=/%09/evil.example", timeout=10).text
    assert 'name="next" value="/wechat/member"' in page
