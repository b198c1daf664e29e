"""Fixtures shared by every test package.

Services: tests that need PostgreSQL, Redis, RabbitMQ, nftables, tshark, InfluxDB or chromium call
``require(...)``. Where the service is missing the test is skipped with the reason, except under
``KELIU_REQUIRE_SERVICES=1`` (set by .ci/run), where a missing service fails the test.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"

POSTGRES_URL = os.environ.get("KELIU_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("KELIU_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RABBITMQ_URL = os.environ.get("KELIU_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
CHROMIUM = os.environ.get("KELIU_TEST_CHROMIUM", "/usr/bin/chromium")


def services_required() -> bool:
    return os.environ.get("KELIU_REQUIRE_SERVICES") == "1"


def require(ok: bool, reason: str) -> None:
    """Skip (locally) or fail (in CI) when a needed service is not there."""
    if ok:
        return
    if services_required():
        pytest.fail(f"required service missing: {reason}", pytrace=False)
    pytest.skip(reason)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_tool(name: str) -> str:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None)
    require(path is not None, f"{name} is not installed")
    assert path is not None
    return path


def require_root_netns() -> None:
    ok = os.geteuid() == 0 and shutil.which("ip") is not None
    if ok:
        probe = f"klprobe{uuid.uuid4().hex[:6]}"
        ok = subprocess.run(["ip", "netns", "add", probe], capture_output=True, check=False).returncode == 0
        subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    require(ok, "network namespaces need root and iproute2")


def require_shared_data(name: str) -> Path:
    """Real captures under ../shared/data are optional: skipped (never failed) when the folder is absent."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} not present (shared data is optional)")
    return path


#: the name of this session's PostgreSQL template database, migrated to alembic's heads on first use
_PG_TEMPLATE: list[str] = []


def _pg_template(admin: Any) -> str:
    """This session's migrated template database: a fresh database brought to ``heads`` by ``db.upgrade`` (the
    migrations run once a session, not once per test), with no connection left open so it can be copied."""
    if not _PG_TEMPLATE:
        from keliu import db

        name = f"keliu_tmpl_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        engine = db.make_engine(POSTGRES_URL.rsplit("/", 1)[0] + "/" + name)
        try:
            db.upgrade(engine)
        except BaseException:
            engine.dispose()
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            raise
        engine.dispose()
        _PG_TEMPLATE.append(name)
    return _PG_TEMPLATE[0]


class _Dropper:
    """Drops the tests' databases one after the other on a background thread: a test's teardown hands its database
    over and the next test starts while PostgreSQL deletes the files. The thread ends when nothing is left to drop;
    every drop is done (or its error raised) by the end of the session."""

    def __init__(self) -> None:
        import threading

        self.names: list[str] = []
        self.errors: list[str] = []
        self.thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def drop(self, name: str) -> None:
        import threading

        with self._lock:
            self.names.append(name)
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="drop-test-databases", daemon=True)
                self.thread.start()

    def _run(self) -> None:
        import sqlalchemy as sa

        admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        try:
            while True:
                with self._lock:
                    if not self.names:
                        self.thread = None
                        return
                    name = self.names.pop(0)
                try:
                    with admin.connect() as conn:
                        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                except Exception as e:  # noqa: BLE001 - reported at the end of the session
                    self.errors.append(f"{name}: {e}")
        finally:
            admin.dispose()

    def finish(self) -> None:
        """Waits for every drop handed over so far; raises if any failed."""
        while True:
            with self._lock:
                thread = self.thread
            if thread is None:
                break
            thread.join()
            with self._lock:
                if self.thread is thread:  # it died without clearing itself
                    self.thread = None
                    self.errors.append(f"the dropping thread died; left: {self.names}")
        errors, self.errors = self.errors, []
        if errors:
            raise RuntimeError("test databases not dropped: " + "; ".join(errors))


_DROPPER = _Dropper()


@pytest.fixture(scope="session", autouse=True)
def _drop_pg_template() -> Iterator[None]:
    """At the end of the session: waits for the tests' databases to be dropped, then drops the migrated template
    database, if a test made it."""
    yield
    _DROPPER.finish()
    if _PG_TEMPLATE:
        import sqlalchemy as sa

        admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{_PG_TEMPLATE.pop()}" WITH (FORCE)')
        admin.dispose()


@contextlib.contextmanager
def fresh_postgres(migrated: bool = False) -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards: empty, or with ``migrated`` a copy of the session's
    template at alembic's heads (``CREATE DATABASE … TEMPLATE``: what ``db.upgrade`` would leave, in a fraction of
    its time)."""
    import sqlalchemy as sa

    require(port_open("127.0.0.1", 5432), "PostgreSQL on 127.0.0.1:5432")
    name = f"keliu_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    template = f' TEMPLATE "{_pg_template(admin)}"' if migrated else ""
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"{template}')
    url = POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    admin.dispose()
    try:
        yield url
    finally:
        _DROPPER.drop(name)  # dropped on the background thread (WITH (FORCE): a leftover connection is closed)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards."""
    with fresh_postgres() as url:
        yield url


@pytest.fixture
def migrated_postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database at alembic's heads (a copy of the session's migrated template), dropped
    afterwards."""
    with fresh_postgres(migrated=True) as url:
        yield url


@pytest.fixture
def second_postgres_url(postgres_url: str) -> Iterator[str]:
    """Another fresh, empty PostgreSQL database, for tests that compare two."""
    with fresh_postgres() as url:
        yield url


@pytest.fixture
def second_migrated_postgres_url(migrated_postgres_url: str) -> Iterator[str]:
    """Another fresh PostgreSQL database at alembic's heads, for tests that compare two."""
    with fresh_postgres(migrated=True) as url:
        yield url


@pytest.fixture
def redis_url() -> str:
    require(port_open("127.0.0.1", 6379), "Redis on 127.0.0.1:6379")
    return REDIS_URL


@pytest.fixture
def rabbitmq_url() -> str:
    require(port_open("127.0.0.1", 5672), "RabbitMQ on 127.0.0.1:5672")
    return RABBITMQ_URL


@pytest.fixture
def chromium() -> str:
    require(os.path.exists(CHROMIUM), f"chromium at {CHROMIUM}")
    return CHROMIUM


@pytest.fixture
def var_dir(tmp_path: Path) -> Path:
    d = tmp_path / "var"
    d.mkdir()
    return d


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'keliu.db'}"


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite database brought to alembic's heads by ``db.upgrade``, once a session."""
    from keliu import db

    path = tmp_path_factory.mktemp("migrated-template") / "keliu.db"
    engine = db.make_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture
def migrated_sqlite_url(tmp_path: Path, migrated_sqlite_template: Path) -> str:
    """A SQLite database at alembic's heads: a copy of the session's migrated template (same file as ``sqlite_url``)."""
    shutil.copy(migrated_sqlite_template, tmp_path / "keliu.db")
    return f"sqlite:///{tmp_path / 'keliu.db'}"


#: headless chromium as the tests run it (no network chatter: this machine's network is closed)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
#: the dashboard's ECharts, built by `make assets` (never committed)
ECHARTS = ROOT / "dashboards" / "builtin" / "static" / "vendor" / "echarts.min.js"


@contextlib.contextmanager
def serve_wsgi(app: Any) -> Iterator[str]:
    """Serve a WSGI app on a free loopback port in a thread (werkzeug); yields its base URL."""
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


@contextlib.contextmanager
def launch_chromium() -> Iterator[Any]:
    """Debian's chromium under playwright, with the dashboard's vendored ECharts present (else the test fails
    under KELIU_REQUIRE_SERVICES, or skips)."""
    require(os.path.exists(CHROMIUM), f"chromium at {CHROMIUM}")
    require(ECHARTS.exists(), f"{ECHARTS} missing: run `make assets`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
