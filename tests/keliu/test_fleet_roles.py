"""Router roles against the real PostgreSQL: router A runs its own store's login (the one-statement executor the
portal uses on PostgreSQL) and sensor writes, and can neither read nor write store B's members, sessions, logins,
devices or sightings; the access log chained by routers stays intact."""
from __future__ import annotations

import stat
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import Engine

from keliu import db
from keliu.accesslog import store as accesslog
from keliu.errors import ConfigError
from keliu.fleet import policy, roles
from keliu.tenants import MALLS, STORES
from portal.core.i18n import CONSENT_VERSIONS
from portal.core.login_plan import Choices, PhoneMember, UseCode, plan_login
from portal.core.sessions import Policy
from portal.store import members as pm
from portal.store.login_store import execute_pg
from portal.store.models import devices, logins, members, portal_sessions, sms_codes
from sensor.records import Sighting
from sensor.stations import poll_record
from sensor.store import insert_sightings

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
POLICY = Policy(session_s=4 * 3600, idle_s=900, reauth_s=30 * 86400)
PHONE_A, PHONE_B = "+8613800000001", "+8613900000002"


def tsighting(store: str, n: int) -> Sighting:
    return Sighting(sid=f"{store}-{n}", ts=T0.timestamp() + n, store=store, sensor="s1", device=f"dev{n:028x}",
                    rssi=-50, freq=2412, seq=n, randomized=False)


def tplan(code_id: int, phone: str, store: str, device: str) -> object:
    return plan_login(proof=UseCode(code_id, 5), member=PhoneMember(phone), method="sms", store_id=store, now=T0,
                      device_id=device, ip="10.77.0.20", lang="zh-CN", choices=Choices(True, reauth=True),
                      versions=CONSENT_VERSIONS, registry_id=None, bound_ip="10.77.0.20", lease_tag="t",
                      policy=POLICY)


def as_role(url: str, role: str) -> Engine:
    # the test server trusts 127.0.0.1, so the password is not checked here: what is under test is what the role
    # may do once connected
    return db.make_engine(sa.engine.make_url(url).set(username=role, password=None).render_as_string(False))


@pytest.fixture
def fleet(migrated_postgres_url: str) -> Iterator[tuple[Engine, str, str]]:
    owner = db.make_engine(migrated_postgres_url)
    db.upgrade(owner)
    tag = uuid.uuid4().hex[:8]  # roles are per server, shared by every test database: names of their own
    a, b = f"a{tag}", f"b{tag}"
    with owner.begin() as conn:
        conn.execute(sa.insert(MALLS).values(id="m1", name="Mall"))
        conn.execute(sa.insert(STORES), [{"id": a, "mall_id": "m1"}, {"id": b, "mall_id": "m1"}])
    try:
        yield owner, a, b
    finally:
        for store in (a, b):
            roles.remove_router(owner, store)
        owner.dispose()


@pytest.mark.integration
def test_router_a_sees_and_writes_its_own_store_only(fleet: tuple[Engine, str, str], migrated_postgres_url: str) -> None:
    owner, a, b = fleet
    role_a, password = roles.add_router(owner, a)
    roles.add_router(owner, b)
    assert role_a == policy.role_name(a) and len(password) >= 32
    # store B's day, written by the central host: a member, a login, a device, a session, sightings
    with owner.begin() as conn:
        conn.execute(sa.insert(sms_codes), [
            {"phone_hash": f"ph{i}", "code_hash": "ch", "device_id": "dev", "created_at": T0,
             "expires_at": T0 + timedelta(minutes=5), "tries": 1, "used_at": None} for i in range(1, 5)])
        assert execute_pg(conn, tplan(1, PHONE_B, b, "devb")) is not None  # type: ignore[arg-type]
    insert_sightings(owner, [tsighting(b, 1), tsighting(b, 2)])
    member_b = int(owner.connect().execute(sa.select(members.c.id)).scalar_one())

    router = as_role(migrated_postgres_url, role_a)
    try:
        # nothing of B's is visible
        with router.connect() as conn:
            for table in (members, logins, devices, portal_sessions):
                assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() == 0, table
            assert conn.execute(sa.text("SELECT count(*) FROM sightings")).scalar_one() == 0
            assert conn.execute(sa.text("SELECT count(*) FROM access_log")).scalar_one() == 0
            # the member rows of the mall are not listable, not even their number
            assert conn.execute(sa.text("SELECT count(*) FROM members WHERE first_store_id = :b"),
                                {"b": b}).scalar_one() == 0
        # ... nor writable: updates and deletes find no row, inserts for B are refused, members cannot be deleted
        with router.begin() as conn:
            assert conn.execute(sa.update(portal_sessions).values(ended_at=T0)).rowcount == 0
            assert conn.execute(sa.update(members).where(members.c.id == member_b)
                                .values(last_seen_at=T0)).rowcount == 0
            assert conn.execute(sa.text("DELETE FROM sightings")).rowcount == 0
        refused = [
            lambda c: insert_sightings(c, [tsighting(b, 9)]),
            lambda c: insert_sightings(c, [], polls=[poll_record(b, "s1-ap", T0.timestamp(), 0)]),
            lambda c: c.execute(sa.insert(logins).values(ts=T0, store_id=b, member_id=member_b, device_id="x",
                                                         method="sms", ip="10.0.0.1")),
            lambda c: c.execute(sa.insert(members).values(phone_e164="+8613700000003", created_at=T0,
                                                          first_store_id=b, last_seen_at=T0)),
            lambda c: c.execute(sa.delete(members)),
            lambda c: c.execute(sa.text("SELECT * FROM fleet_routers")),
            lambda c: c.execute(sa.text("SELECT * FROM campaign_sends")),
            lambda c: c.execute(sa.text("CREATE TABLE stolen (x int)")),
            # a login at store B from router A
            lambda c: execute_pg(c, tplan(3, PHONE_A, b, "deva")),  # type: ignore[arg-type]
        ]
        for attempt in refused:
            with (pytest.raises(sa.exc.ProgrammingError, match="row-level security|permission denied"),
                  router.begin() as conn):
                attempt(conn)
        # its own store: a new member's login, and B's member logging in here (one member system for the mall)
        with router.begin() as conn:
            new = execute_pg(conn, tplan(2, PHONE_A, a, "deva"))  # type: ignore[arg-type]
        with router.begin() as conn:
            crossed = execute_pg(conn, tplan(4, PHONE_B, a, "devb"))  # type: ignore[arg-type]
        assert new is not None and crossed is not None and crossed.member_id == member_b
        assert insert_sightings(router, [tsighting(a, 1)]) == 1
        # the AP's poll records of its store, merged into their slot's row (the upsert's update path too)
        for n in (0, 2):
            insert_sightings(router, [], polls=[poll_record(a, "s1-ap", T0.timestamp() + n, n)])
        with router.connect() as conn:
            assert conn.execute(sa.text("SELECT store, stations FROM station_polls")).all() == [(a, 2)]
        with router.connect() as conn:
            # now it sees its own: both members (they logged in here), its two logins and sessions, its sighting
            assert sorted(conn.execute(sa.select(members.c.phone_e164)).scalars()) == [PHONE_A, PHONE_B]
            assert set(conn.execute(sa.select(logins.c.store_id)).scalars()) == {a}
            assert conn.execute(sa.select(sa.func.count()).select_from(portal_sessions)).scalar_one() == 2
            assert conn.execute(sa.text("SELECT store FROM sightings")).scalars().all() == [a]
            assert pm.phone_of(conn, member_b) == PHONE_B
    finally:
        router.dispose()
    # B's rows are untouched, and the chain the routers appended to verifies
    with owner.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(logins).where(logins.c.store_id == b)
                            ).scalar_one() == 1
        report = accesslog.verify(conn, Ed25519PrivateKey.generate().public_key())
        assert report.ok and report.records == 3, report.bad


@pytest.mark.integration
def test_every_table_is_decided_and_policies_are_idempotent(migrated_postgres_url: str) -> None:
    """A new table gets a router rule or is named central-only: no table is granted (or forgotten) silently."""
    owner = db.make_engine(migrated_postgres_url)
    try:
        db.upgrade(owner)
        covered = roles.apply_policies(owner)
        roles.apply_policies(owner)
        with owner.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            assert tables - set(policy.TABLES) - policy.CENTRAL_ONLY == set()
            assert set(covered) == set(policy.TABLES) & tables
            # one set of policies per table, however often applied
            names = conn.execute(sa.text("SELECT tablename, policyname FROM pg_policies")).all()
            assert len(names) == len(set(names))
            rls = set(conn.execute(sa.text("SELECT relname FROM pg_class WHERE relrowsecurity")).scalars())
            assert rls == {t for t, acc in policy.TABLES.items()
                           if not acc.kind.startswith("shared") and t in tables}
    finally:
        owner.dispose()


def test_store_ids_that_cannot_name_a_role_are_refused() -> None:
    assert policy.role_name("mall-1_s2") == "keliu_router_mall_1_s2"
    for bad in ("", "A", "s'; DROP TABLE members; --", "x" * 60):
        with pytest.raises(ConfigError):
            policy.role_name(bad)


def test_sqlite_has_no_router_roles(sqlite_url: str) -> None:
    with pytest.raises(ConfigError, match="central PostgreSQL"):
        roles.add_router(db.make_engine(sqlite_url), "s1")


@pytest.mark.parametrize(("table", "forbidden"), [
    ("access_log", {"UPDATE", "DELETE"}), ("staff_audit", {"UPDATE", "DELETE"}), ("members", {"DELETE"}),
    ("consents", {"UPDATE", "DELETE"}), ("accesslog_head", {"DELETE"}), ("offers", {"INSERT", "UPDATE", "DELETE"}),
])
def test_what_a_router_is_never_granted(table: str, forbidden: set[str]) -> None:
    sql = " ".join(policy.grants(table, policy.TABLES[table], "keliu_router_s1"))
    assert not {word for word in forbidden if f" {word}" in sql or f"{word}," in sql}, sql
    assert not set(policy.TABLES) & policy.CENTRAL_ONLY


@pytest.mark.integration
def test_cli_writes_the_credentials_once_and_private(fleet: tuple[Engine, str, str], migrated_postgres_url: str,
                                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from keliu.fleet.cli import fleet as fleet_cli

    _, a, _ = fleet
    monkeypatch.setenv("KELIU_DATABASE_URL", migrated_postgres_url)
    monkeypatch.setenv("KELIU_VAR_DIR", str(tmp_path / "var"))
    out = tmp_path / "a.credentials"
    result = CliRunner().invoke(fleet_cli, ["router", "add", a, "--password-file", str(out)])
    assert result.exit_code == 0, result.output
    role, password = out.read_text().split("\t")[1:3]
    assert role == policy.role_name(a) and password.strip() not in result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    listed = CliRunner().invoke(fleet_cli, ["router", "list"])
    assert listed.output.split("\t")[:2] == [role, a]
    def stored() -> str:
        with fleet[0].connect() as conn:
            return str(conn.execute(sa.text("SELECT rolpassword FROM pg_authid WHERE rolname = :r"),
                                    {"r": role}).scalar_one())

    before = stored()
    # never over an existing file
    again = CliRunner().invoke(fleet_cli, ["router", "add", a, "--password-file", str(out)])
    assert isinstance(again.exception, ConfigError) and "nothing was changed" in str(again.exception)
    assert out.read_text().split("\t")[2] == password and stored() == before  # the file and the role unchanged
