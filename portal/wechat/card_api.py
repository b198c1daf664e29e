"""WeChat's card API for the member card (an edge: it talks HTTP; the bodies are :mod:`portal.wechat.card`).

* ``GET cgi-bin/token?grant_type=client_credential&appid&secret``: the official account's access token (7200 s),
  kept by this client until 5 minutes before it ends (WeChat limits how often a token may be fetched, and a new
  one ends the old one after a short overlap: one client per process, see docs/WECHAT.md);
* ``POST card/create``, ``card/qrcode/create``, ``card/membercard/activate`` with ``?access_token=``, JSON bodies
  in UTF-8 (``ensure_ascii=False``: WeChat shows escaped Chinese as written).

WeChat answers HTTP 200 with ``{"errcode", "errmsg"}``; a non-zero errcode becomes :class:`WechatApiError`, as does
a network failure (errcode -1). An expired or replaced token (40001, 42001, 40014) is fetched again once. The secret
never appears in errors or logs.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import requests

from portal.wechat.oauth import TIMEOUT_S, WechatApiError

#: errcodes that mean "this access token is no longer good": fetch a new one and try once more
_STALE_TOKEN = frozenset({40001, 40014, 42001})


class CardApi:
    """The card calls of one official account (``app_id``/``secret``: the service account's)."""

    def __init__(self, api_base: str, app_id: str, secret: str, clock: Callable[[], float]) -> None:
        self.api_base = api_base.rstrip("/")
        self.app_id = app_id
        self._secret = secret
        self._clock = clock
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never show the secret
        return f"CardApi(app_id={self.app_id!r})"

    def _access_token(self, fresh: bool = False) -> str:
        with self._lock:
            if self._token is not None and not fresh and self._clock() < self._token[1]:
                return self._token[0]
            data = self._call("GET", "/cgi-bin/token", params={"grant_type": "client_credential",
                                                               "appid": self.app_id, "secret": self._secret})
            token = data.get("access_token")
            if not isinstance(token, str) or not token:
                raise WechatApiError(-1, "cgi-bin/token: no access_token in the answer")
            life = int(data.get("expires_in", 7200))
            self._token = (token, self._clock() + max(60, life - 300))
            return token

    def _call(self, method: str, path: str, params: dict[str, str], body: dict[str, Any] | None = None
              ) -> dict[str, Any]:
        try:
            resp = requests.request(method, self.api_base + path, params=params, timeout=TIMEOUT_S,
                                    data=None if body is None else json.dumps(body, ensure_ascii=False).encode(),
                                    headers={"Content-Type": "application/json; charset=utf-8"} if body else None)
            data = resp.json()
        except (requests.RequestException, ValueError) as exc:
            raise WechatApiError(-1, f"{path}: {type(exc).__name__}") from exc
        if not isinstance(data, dict):
            raise WechatApiError(-1, f"{path}: not a JSON object")
        if data.get("errcode"):
            raise WechatApiError(int(data["errcode"]), str(data.get("errmsg", "")))
        return data

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return self._call("POST", path, {"access_token": self._access_token()}, body)
        except WechatApiError as exc:
            if exc.errcode not in _STALE_TOKEN:
                raise
            return self._call("POST", path, {"access_token": self._access_token(fresh=True)}, body)

    def create_card(self, body: dict[str, Any]) -> str:
        """``card/create``: the new card template's ``card_id``."""
        card_id = self._post("/card/create", body).get("card_id")
        if not isinstance(card_id, str) or not card_id:
            raise WechatApiError(-1, "card/create: no card_id in the answer")
        return card_id

    def card_qrcode(self, body: dict[str, Any]) -> str:
        """``card/qrcode/create``: the URL of the QR code (``url``, opened in WeChat, adds the card)."""
        data = self._post("/card/qrcode/create", body)
        url = data.get("url") or data.get("show_qrcode_url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise WechatApiError(-1, "card/qrcode/create: no URL in the answer")
        return url

    def activate(self, body: dict[str, Any]) -> None:
        """``card/membercard/activate``."""
        self._post("/card/membercard/activate", body)
