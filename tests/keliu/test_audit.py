"""The staff audit trail: entries appended with user, role, mall, address; the database refuses UPDATE and DELETE
(a trigger, on PostgreSQL and SQLite) and TRUNCATE on PostgreSQL; ``keliu audit list``."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from keliu import audit, db
from keliu.accounts.users import AdminUser

T = datetime(2026, 11, 18, 9, 30, tzinfo=UTC)


def migrated(url: str) -> sa.Engine:
    engine = db.make_engine(url)
    db.upgrade(engine)
    return engine


def fill(engine: sa.Engine) -> None:
    audit.record(engine, AdminUser("ops", "admin"), "member.view", "member:1", "10.0.0.5", now=T)
    audit.record(engine, AdminUser("mo", "mall", mall_id="m1"), "session.kick", "session:3", "10.0.0.6",
                 {"why": "abuse"}, store_id="s1", now=T)
    with engine.begin() as conn:  # in the caller's transaction: stands or falls with it
        audit.record(conn, "cli:root", "member.export", "member:1", "local", {"format": "json"}, mall_id="m2", now=T)


def check_append_only(engine: sa.Engine, truncate: bool) -> None:
    fill(engine)
    rows = audit.entries(engine)
    assert [(e.user_name, e.role, e.mall_id, e.action, e.address) for e in rows] == [
        ("cli:root", "cli", "m2", "member.export", "local"),
        ("mo", "mall", "m1", "session.kick", "10.0.0.6"),
        ("ops", "admin", None, "member.view", "10.0.0.5")]
    assert rows[1].detail == {"why": "abuse"} and rows[1].store_id == "s1" and rows[1].ts == T
    assert [e.action for e in audit.entries(engine, mall_id="m1")] == ["session.kick"]
    statements = ["UPDATE staff_audit SET user_name = 'nobody'", "DELETE FROM staff_audit"]
    if truncate:
        statements.append("TRUNCATE staff_audit")
    for stmt in statements:
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(sa.text(stmt))
    assert len(audit.entries(engine)) == 3


def test_append_only_on_sqlite(migrated_sqlite_url: str) -> None:
    check_append_only(migrated(migrated_sqlite_url), truncate=False)


@pytest.mark.integration
def test_append_only_on_postgresql(migrated_postgres_url: str) -> None:
    engine = migrated(migrated_postgres_url)
    try:
        check_append_only(engine, truncate=True)
    finally:
        engine.dispose()


def test_record_refuses_an_empty_action(tmp_path: Path) -> None:
    engine = migrated(f"sqlite:///{tmp_path / 'k.db'}")
    with pytest.raises(ValueError, match="action"):
        audit.record(engine, "cli:x", "", "member:1", "local")


def test_cli_lists_newest_first_with_filters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    fill(migrated(url))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KELIU_DATABASE_URL", url)
    from keliu.cli import cli

    out = CliRunner().invoke(cli, ["audit", "list", "--json"])
    assert out.exit_code == 0, out.output
    lines = [json.loads(line) for line in out.output.splitlines()]
    assert [(x["user"], x["action"]) for x in lines] == [("cli:root", "member.export"), ("mo", "session.kick"),
                                                          ("ops", "member.view")]
    out = CliRunner().invoke(cli, ["audit", "list", "--mall", "m1"])
    assert out.exit_code == 0 and out.output.count("\n") == 1 and "session.kick session:3" in out.output
    out = CliRunner().invoke(cli, ["audit", "list", "--since", "2026-11-19"])
    assert out.exit_code == 0 and out.output == ""
