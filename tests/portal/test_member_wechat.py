"""The member page's WeChat login against the FAKE WeChat over real HTTP (web authorization, then the phone bound
once by SMS code, then the card)."""
from __future__ import annotations

from pathlib import Path

from keliu.testing.wechat_fake import FakeServer
from tests.portal.test_wechat_login import Env, fake, wechat_browser  # noqa: F401  (``fake`` is a fixture)


def test_wechat_login_on_the_member_page(tmp_path: Path, fake: FakeServer) -> None:  # noqa: F811
    env = Env(tmp_path, fake)
    page = env.phone("203.0.113.9").get("/member").get_data(as_text=True)
    assert 'id="member-wechat"' in page
    client, resp = wechat_browser(env, fake, "/member/wechat", user="bob")
    assert resp.request.path == "/wechat/bind"  # a new WeChat identity: its phone, once
    client.post("/wechat/bind", data={"phone": "13800138000", "action": "code"})
    r = client.post("/wechat/bind", data={"phone": "13800138000", "action": "bind", "code": env.sms.sent[-1][1],
                                          "next": "/member/wechat/done"})
    assert r.status_code == 303 and r.headers["Location"] == "/member/wechat/done"
    r = client.get("/member/wechat/done")
    assert r.status_code == 303 and r.headers["Location"] == "/member"
    card = client.get("/member").get_data(as_text=True)
    assert 'id="member-qr"' in card and "8000" in card and "13800138000" not in card
    member = env.rows("members")[0]
    with client.session_transaction() as s:
        assert s["member_id"] == member.id

    # the next time, in a fresh browser, WeChat alone logs the member in
    _client2, resp = wechat_browser(env, fake, "/member/wechat", user="bob")
    assert resp.status_code == 200 and 'id="member-qr"' in resp.get_data(as_text=True)
    assert len(env.rows("members")) == 1


def test_no_wechat_button_without_oauth(tmp_path: Path, fake: FakeServer) -> None:  # noqa: F811
    env = Env(tmp_path, fake, oauth=("", ""))
    page = env.phone("203.0.113.9").get("/member").get_data(as_text=True)
    assert 'id="member-login"' in page and 'id="member-wechat"' not in page
