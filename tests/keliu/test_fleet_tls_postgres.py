"""TLS to the central PostgreSQL with the fleet CA's certificates, against a real server: a throwaway cluster with
``ssl = on`` and ``hostssl all all 127.0.0.1/32 cert`` (the shared server on 5432 is never reconfigured).

The certificates come from ``keliu fleet ca init`` and ``keliu fleet cert issue``; the router's engine is made the
way every keliu command makes it, from the ``[database]`` settings (``sslmode = "verify-full"``). A router logs in
as its own role by its certificate alone; no certificate, a certificate of another CA, or a server certificate for
another host name is refused."""
from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from keliu import config, db
from keliu.fleet import policy, roles
from keliu.fleet.cli import fleet as fleet_cli
from keliu.tenants import MALLS, STORES
from tests.keliu.private_services import PrivatePostgres, private_postgres

pytestmark = pytest.mark.integration
STORE = "s1"
ROLE = policy.role_name(STORE)


def cli(*args: str) -> str:
    result = CliRunner().invoke(fleet_cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@dataclass(frozen=True)
class Fleet:
    pg: PrivatePostgres
    ca_dir: Path
    other_ca_dir: Path
    database: str

    def url(self, host: str = "db.mall.example", role: str = ROLE) -> str:
        # the host name is what verify-full checks against the server's certificate; hostaddr is where the
        # cluster really listens (no resolver needed)
        return f"postgresql+psycopg://{role}@{host}:{self.pg.port}/{self.database}?hostaddr=127.0.0.1"

    def router_config(self, *, host: str = "db.mall.example", cert_dir: Path | None = None, name: str = ROLE,
                      sslmode: str = "verify-full", **extra: str) -> config.Config:
        d = cert_dir or self.ca_dir
        section = {"sslmode": sslmode, "sslrootcert": str(self.ca_dir / "ca.pem"),
                   "sslcert": str(d / f"{name}.pem"), "sslkey": str(d / f"{name}.key"), **extra}
        return config.load(overrides={"database_url": self.url(host), "database": section}, env={})


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    base = tmp_path_factory.mktemp("fleet")
    ca_dir, other = base / "ca", base / "other"
    cli("ca", "init", "--dir", str(ca_dir))
    cli("cert", "issue", "central", "--server", "--dns", "db.mall.example", "--dir", str(ca_dir))
    cli("cert", "issue", "--router", STORE, "--dir", str(ca_dir))
    # a second CA issuing a certificate with the very same common name: only the signature differs
    cli("ca", "init", "--dir", str(other))
    cli("cert", "issue", "--router", STORE, "--dir", str(other))
    with private_postgres(ca_dir / "central.pem", ca_dir / "central.key", ca_dir / "ca.pem") as pg:
        database = f"keliu_tls_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(pg.admin_url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{database}"')
        admin.dispose()
        owner = db.make_engine(pg.admin_url(database))
        db.upgrade(owner)
        with owner.begin() as conn:
            conn.execute(sa.insert(MALLS).values(id="m1", name="Mall"))
            conn.execute(sa.insert(STORES).values(id=STORE, mall_id="m1"))
        roles.add_router(owner, STORE)  # the role the certificate's common name maps to
        owner.dispose()
        yield Fleet(pg, ca_dir, other, database)


def test_the_router_connects_by_its_certificate_as_its_role_over_verified_tls(fleet: Fleet) -> None:
    cfg = fleet.router_config()
    assert "sslmode=verify-full" in cfg.database_url
    engine = db.make_engine(cfg.database_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(sa.text(
                "SELECT current_user AS role, s.ssl, s.version, s.client_dn FROM pg_stat_ssl s "
                "WHERE s.pid = pg_backend_pid()")).one()
            # and the role's row level security applies: its store is the one it sees
            stores = conn.execute(sa.text("SELECT id FROM stores")).scalars().all()
    finally:
        engine.dispose()
    assert row.role == ROLE
    assert row.ssl is True and row.version.startswith("TLSv1.")
    assert row.client_dn.endswith(f"CN={ROLE}")
    assert STORE in stores


def test_no_client_certificate_is_refused(fleet: Fleet) -> None:
    cfg = config.load(overrides={"database_url": fleet.url(), "database": {
        "sslmode": "verify-full", "sslrootcert": str(fleet.ca_dir / "ca.pem")}}, env={})
    engine = db.make_engine(cfg.database_url)
    try:
        with pytest.raises(sa.exc.OperationalError, match="requires a valid client certificate"):
            engine.connect().close()
    finally:
        engine.dispose()


def test_a_certificate_of_another_ca_is_refused(fleet: Fleet) -> None:
    cfg = fleet.router_config(cert_dir=fleet.other_ca_dir)  # same common name, signed by the other CA
    engine = db.make_engine(cfg.database_url)
    since = fleet.pg.log.stat().st_size
    try:
        # the server's alert, or an EOF when its close wins the race with the alert's reading (TLS 1.3 checks the
        # client's certificate after the client's handshake returned)
        with pytest.raises(sa.exc.OperationalError, match="unknown ca|EOF detected|closed the connection"):
            engine.connect().close()
    finally:
        engine.dispose()
    # the server writes its line after the client saw the failure: under load that can take a moment
    deadline, logged = time.monotonic() + 30, ""
    while "could not accept SSL connection: certificate verify failed" not in logged and time.monotonic() < deadline:
        time.sleep(0.1)
        with open(fleet.pg.log, "rb") as fh:
            fh.seek(since)
            logged = fh.read().decode(errors="replace")
    assert "could not accept SSL connection: certificate verify failed" in logged, logged


def test_a_certificate_for_another_role_does_not_log_in_as_this_one(fleet: Fleet) -> None:
    # the CA's own "central" certificate is valid, but its common name is not the role asked for
    url = fleet.url(role=ROLE)
    section = {"sslmode": "verify-full", "sslrootcert": str(fleet.ca_dir / "ca.pem"),
               "sslcert": str(fleet.ca_dir / "central.pem"), "sslkey": str(fleet.ca_dir / "central.key")}
    engine = db.make_engine(config.load(overrides={"database_url": url, "database": section}, env={}).database_url)
    try:
        with pytest.raises(sa.exc.OperationalError, match="certificate authentication failed"):
            engine.connect().close()
    finally:
        engine.dispose()


def test_verify_full_refuses_a_server_certificate_for_another_host_name(fleet: Fleet) -> None:
    # the same server and CA: reached as db.other.example, its certificate (for db.mall.example) does not match
    engine = db.make_engine(fleet.router_config(host="db.other.example").database_url)
    try:
        with pytest.raises(sa.exc.OperationalError, match="does not match host name"):
            engine.connect().close()
    finally:
        engine.dispose()
    # verify-ca checks the signature only and would have let it through: this is why routers use verify-full
    engine = db.make_engine(fleet.router_config(host="db.other.example", sslmode="verify-ca").database_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT current_user")).scalar() == ROLE
    finally:
        engine.dispose()
