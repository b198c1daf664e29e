"""Fuzz of every JSON endpoint from the OpenAPI document (schemathesis + hypothesis) against a live server:
no 5xx, every error is JSON with a code, and nothing is stored half-way."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from keliu.gate import MemoryGate
from portal.edges.sms_backends import ConsoleSms
from portal.store.models import members, portal_sessions
from tests.portal.conftest import make_app

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    import io
    import time

    tmp = tmp_path_factory.mktemp("fuzz")
    (tmp / "var").mkdir()
    app = make_app(f"sqlite:///{tmp / 'k.db'}", tmp / "var", MemoryGate(), time.time, ConsoleSms(io.StringIO()), {})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", app
    server.shutdown()
    server.server_close()
    app.extensions["keliu"].engine.dispose()


def _schema() -> Any:
    from portal.web.openapi import DOCUMENT

    return schemathesis.openapi.from_dict(DOCUMENT)


schema = _schema()


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_errors(case: Any, live: tuple[str, Any]) -> None:
    import requests

    base, _app = live
    # sent with plain requests: schemathesis' own session helper trips over this urllib3 version
    response = requests.request(**case.as_transport_kwargs(base_url=base), timeout=10, allow_redirects=False)
    assert response.status_code < 500, (case.method, case.path, case.body, response.text)
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body.get("error"), str) and isinstance(body.get("message"), str)


def test_nothing_was_stored_half_way(live: tuple[str, Any]) -> None:
    """The fuzzer never saw a valid code, so no member or session may exist."""
    _base, app = live
    with app.extensions["keliu"].engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(members)).scalar() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(portal_sessions)).scalar() == 0


def test_document_is_served(live: tuple[str, Any]) -> None:
    import requests

    base, _app = live
    from dashboards.builtin.openapi import OPENAPI_PATHS
    from marketing.web.openapi import OPENAPI_PATHS as MARKETING_PATHS

    doc = requests.get(base + "/api/openapi.json", timeout=5).json()
    portal_paths = {"/api/captive", "/api/login/sms/code", "/api/login/sms/verify", "/api/session",
                    "/api/session/logout"}
    assert set(doc["paths"]) == portal_paths | set(OPENAPI_PATHS) | set(MARKETING_PATHS)
    assert all(p.startswith("/api/v1/") for p in [*OPENAPI_PATHS, *MARKETING_PATHS])
