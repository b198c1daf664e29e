"""The device registry's rules, whoever executes them: ``register``/``unregister`` and the statement builders
(``link_member``, ``withdraw``) the portal's login executors use, on SQLite and PostgreSQL."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from sensor import consent


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def engine(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[sa.Engine]:
    url = sqlite_url if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))
    eng = sa.create_engine(url)
    consent.registry_table.metadata.create_all(eng)
    yield eng
    eng.dispose()


def rows(engine: sa.Engine) -> set[tuple[str, str, float]]:
    with engine.connect() as conn:
        return {(r.device_id, r.kind, r.since) for r in conn.execute(sa.select(consent.registry_table))}


def test_link_member_registers_once_and_never_over_an_opt_out(engine: sa.Engine) -> None:
    consent.register(engine, "out", "optout", 1.0)
    with engine.begin() as conn:
        for did, since in [("m", 2.0), ("m", 3.0), ("out", 4.0)]:
            conn.execute(consent.link_member(engine.dialect.name, did, since))
    assert rows(engine) == {("m", "member", 2.0), ("out", "optout", 1.0)}


def test_withdraw_a_member_leaves_an_opt_out(engine: sa.Engine) -> None:
    consent.register(engine, "m", "member", 1.0)
    consent.register(engine, "out", "optout", 1.0)
    with engine.begin() as conn:
        conn.execute(consent.withdraw("m", "member"))
        conn.execute(consent.withdraw("out", "member"))
    assert rows(engine) == {("out", "optout", 1.0)}


def test_builders_take_bound_parameters_and_a_condition(engine: sa.Engine) -> None:
    """As inside the one-statement login: the values come later, and nothing is written unless ``when`` holds."""
    did, go = sa.bindparam("did", type_=sa.String()), sa.bindparam("go", type_=sa.Boolean())
    link = consent.link_member(engine.dialect.name, did, sa.bindparam("since", type_=sa.Float()), when=go)
    with engine.begin() as conn:
        conn.execute(link, {"did": "a", "since": 5.0, "go": False})
        conn.execute(link, {"did": "b", "since": 6.0, "go": True})
        conn.execute(consent.withdraw(did, "member", when=go), {"did": "b", "go": False})
    assert rows(engine) == {("b", "member", 6.0)}


def test_builders_name_a_dialect_they_do_not_know() -> None:
    with pytest.raises(ValueError, match="mysql"):
        consent.link_member("mysql", "a", 1.0)
