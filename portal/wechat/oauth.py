"""WeChat web authorization (网页授权) through authlib's OAuth2 client (an edge: it talks HTTP).

WeChat's OAuth 2.0 is not the standard one, and each quirk is handled in one place here:

* the authorize URL names the client ``appid`` (not ``client_id``), keeps the documented parameter order
  ``appid, redirect_uri, response_type, scope, state`` and ends with ``#wechat_redirect``;
* the code is exchanged by ``GET sns/oauth2/access_token?appid&secret&code&grant_type=authorization_code``:
  the client authenticates with ``appid``/``secret`` in the query (a client-auth method registered with authlib);
* errors come back as HTTP 200 with ``{"errcode", "errmsg"}`` (often as ``text/plain``); a compliance hook turns
  them into OAuth errors, which are translated into :class:`WechatApiError`;
* the token has no ``token_type``, and ``sns/userinfo`` wants ``access_token`` and ``openid`` in the query.

``state`` is generated and checked by the caller (the blueprint keeps it in the session). Secrets never appear in
exceptions or logs: a failure carries WeChat's errcode and errmsg only.
"""
from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from typing import Any, Literal

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session

from portal.errors import PortalError

Scope = Literal["snsapi_base", "snsapi_userinfo"]
AUTH_METHOD = "wechat_appid_secret_query"
TIMEOUT_S = 10.0


class WechatApiError(PortalError):
    """WeChat refused a call (``errcode``/``errmsg``) or could not be reached (``errcode`` -1)."""

    status = 502
    code = "wechat_failed"

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"WeChat error {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


@dataclass(frozen=True)
class WechatToken:
    openid: str
    scope: str
    access_token: str
    unionid: str | None = None


@dataclass(frozen=True)
class WechatProfile:
    openid: str
    nickname: str
    headimgurl: str
    unionid: str | None


def authorize_url(open_base: str, app_id: str, redirect_uri: str, scope: Scope, state: str) -> str:
    """The authorize URL in WeChat's form. Built by authlib, then given WeChat's names, order and fragment."""
    client = OAuth2Session(client_id=app_id, redirect_uri=redirect_uri, scope=scope)
    try:
        uri, _state = client.create_authorization_url(open_base.rstrip("/") + "/connect/oauth2/authorize",
                                                      state=state)
    finally:
        client.close()
    parts = urllib.parse.urlsplit(uri)
    q = dict(urllib.parse.parse_qsl(parts.query))
    ordered = [("appid", q["client_id"]), ("redirect_uri", q["redirect_uri"]), ("response_type", "code"),
               ("scope", q["scope"]), ("state", q["state"])]
    query = urllib.parse.urlencode(ordered, quote_via=urllib.parse.quote)
    return str(urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, query, "wechat_redirect")))


def _appid_secret_in_query(client: Any, method: str, uri: str, headers: Any, body: Any) -> tuple[Any, Any, Any]:
    """Client authentication the WeChat way: ``appid`` and ``secret`` as query parameters."""
    parts = urllib.parse.urlsplit(uri)
    q = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k not in ("client_id", "redirect_uri")]
    q = [("appid", client.client_id), ("secret", client.client_secret)] + q
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(q))), headers, body


def _errcode_to_oauth_error(resp: requests.Response) -> requests.Response:
    """Compliance hook: WeChat's ``errcode`` body becomes an OAuth ``error``; a token gets ``token_type``."""
    try:
        data = resp.json()
    except ValueError:
        return resp
    if not isinstance(data, dict):
        return resp
    if data.get("errcode"):
        fixed: dict[str, Any] = {"error": str(data["errcode"]), "error_description": str(data.get("errmsg", ""))}
    else:
        fixed = dict(data)
        fixed.setdefault("token_type", "bearer")
    resp._content = json.dumps(fixed).encode("utf-8")
    resp.headers["Content-Type"] = "application/json"
    return resp


def _checked(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise WechatApiError(-1, "not a JSON object")
    if data.get("errcode"):
        raise WechatApiError(int(data["errcode"]), str(data.get("errmsg", "")))
    return data


class WechatOAuth:
    """The 网页授权 client of one official account."""

    def __init__(self, api_base: str, app_id: str, secret: str) -> None:
        self.api_base = api_base.rstrip("/")
        self.app_id = app_id
        self._secret = secret

    def __repr__(self) -> str:  # never show the secret
        return f"WechatOAuth(app_id={self.app_id!r})"

    def _session(self) -> OAuth2Session:
        session = OAuth2Session(client_id=self.app_id, client_secret=self._secret,
                                token_endpoint_auth_method=AUTH_METHOD, token_placement="uri")
        session.register_client_auth_method((AUTH_METHOD, _appid_secret_in_query))
        session.register_compliance_hook("access_token_response", _errcode_to_oauth_error)
        return session

    def exchange(self, code: str) -> WechatToken:
        """Trade a code (single use, 5 minutes) for the openid and an access token."""
        session = self._session()
        try:
            token = session.fetch_token(self.api_base + "/sns/oauth2/access_token", method="GET", code=code,
                                        grant_type="authorization_code", timeout=TIMEOUT_S)
        except AuthlibBaseError as exc:
            raise WechatApiError(_int(getattr(exc, "error", "")), str(getattr(exc, "description", "")
                                                                      or "")) from exc
        except (requests.RequestException, ValueError) as exc:
            raise WechatApiError(-1, f"access_token: {type(exc).__name__}") from exc
        finally:
            session.close()
        if not token.get("openid") or not token.get("access_token"):
            raise WechatApiError(-1, "access_token: no openid in the answer")
        return WechatToken(openid=str(token["openid"]), scope=str(token.get("scope", "")),
                           access_token=str(token["access_token"]),
                           unionid=str(token["unionid"]) if token.get("unionid") else None)

    def profile(self, token: WechatToken) -> WechatProfile:
        """``sns/userinfo``: needs a token of scope ``snsapi_userinfo`` (the member agreed in WeChat)."""
        session = self._session()
        session.token = {"access_token": token.access_token, "token_type": "bearer"}
        try:
            resp = session.get(self.api_base + "/sns/userinfo", params={"openid": token.openid, "lang": "zh_CN"},
                               timeout=TIMEOUT_S)
            data = _checked(resp.json())
        except (requests.RequestException, ValueError) as exc:
            raise WechatApiError(-1, f"userinfo: {type(exc).__name__}") from exc
        finally:
            session.close()
        if data.get("openid") != token.openid:
            raise WechatApiError(-1, "userinfo: openid does not match the token")
        return WechatProfile(openid=token.openid, nickname=str(data.get("nickname", ""))[:64],
                             headimgurl=str(data.get("headimgurl", ""))[:512],
                             unionid=str(data["unionid"]) if data.get("unionid") else token.unionid)


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return -1
