"""Fuzz of marketing's API from its OpenAPI part (schemathesis + hypothesis) against a live server with a valid
store token: no 5xx, every error is JSON with a code, and no coupon is redeemed by a body the fuzzer made up."""
from __future__ import annotations

import io
import threading
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from keliu.accounts import tokens
from keliu.gate import MemoryGate
from marketing.store.models import coupons
from portal.edges.sms_backends import ConsoleSms
from tests.portal.conftest import make_app

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings

pytestmark = pytest.mark.integration

TENANTS = {"malls": [{"id": "m1", "name": "M"}],
           "stores": [{"id": "s1", "mall": "m1", "name": "A", "timezone": "Asia/Shanghai"},
                      {"id": "s2", "mall": "m1", "name": "B", "timezone": "Asia/Shanghai"}],
           "portal": {"store": "s1"}}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Any]]:
    tmp = tmp_path_factory.mktemp("mfuzz")
    (tmp / "var").mkdir()
    app = make_app(f"sqlite:///{tmp / 'k.db'}", tmp / "var", MemoryGate(), time.time, ConsoleSms(io.StringIO()), {},
                   **TENANTS)
    engine = app.extensions["keliu"].engine
    _name, tok = tokens.create_token(engine, role="store", store_id="s1", now=datetime.now(UTC))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", tok, app
    server.shutdown()
    server.server_close()
    engine.dispose()


def _schema() -> Any:
    from marketing.web.openapi import merge_into

    return schemathesis.openapi.from_dict(merge_into({"openapi": "3.0.3", "info": {"title": "m", "version": "1"},
                                                      "paths": {}}))


schema = _schema()


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_errors(case: Any, live: tuple[str, str, Any]) -> None:
    import requests

    base, tok, _app = live
    # most cases at the token's own store, so the bodies get past the tenancy check
    if case.path_parameters and "store_id" in case.path_parameters and zlib.crc32(repr(case.body).encode()) % 4:
        case.path_parameters["store_id"] = "s1"
    kwargs = case.as_transport_kwargs(base_url=base)
    kwargs.setdefault("headers", {})["Authorization"] = f"Bearer {tok}"
    response = requests.request(**kwargs, timeout=10, allow_redirects=False)
    assert response.status_code < 500, (case.method, case.path, case.body, response.text)
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body.get("error"), str) and isinstance(body.get("message"), str)


def test_nothing_was_redeemed(live: tuple[str, str, Any]) -> None:
    _base, _tok, app = live
    with app.extensions["keliu"].engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(coupons)
                            .where(coupons.c.state == "redeemed")).scalar() == 0
