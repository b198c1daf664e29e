"""``keliu member import``: CSV and XLSX, consent evidence per purpose, rejected rows reported by line, idempotent on
the phone, one transaction; the row checks (pure) by table."""
from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from keliu import db, tenants
from keliu.config import build
from portal.core import member_import as mi
from portal.errors import BadRequest
from portal.store import member_import

NOW = datetime(2026, 11, 18, 8, 0, tzinfo=UTC)
CST = timezone(timedelta(hours=8))
ZONES = {"s1": CST, "s2": CST}
HEAD = "phone,store,joined,marketing_source,marketing_date,marketing_version,analytics_source,analytics_date," \
       "analytics_version\n"


@pytest.mark.parametrize(("cells", "result"), [
    ({"phone": "13800138000"}, mi.Row("+8613800138000", "s1", None, ())),
    ({"phone": "138 0013 8000", "store": "s2", "joined": "2024-03-01"},
     mi.Row("+8613800138000", "s2", datetime(2024, 3, 1, tzinfo=CST), ())),
    ({"phone": "13800138000", "marketing_source": "CRM", "marketing_date": "2024-03-01 10:00",
      "marketing_version": "v3"},
     mi.Row("+8613800138000", "s1", None, (mi.Evidence("marketing", "CRM", datetime(2024, 3, 1, 10, tzinfo=CST),
                                                       "v3"),))),
    ({"phone": "12345"}, "phone:"),
    ({"phone": "13800138000", "store": "nowhere"}, "store: no store"),
    ({"phone": "13800138000", "marketing_source": "CRM"}, "marketing_date, marketing_version: missing"),
    ({"phone": "13800138000", "marketing_source": "CRM", "marketing_date": "March", "marketing_version": "v"},
     "marketing_date: not a date"),
    ({"phone": "13800138000", "joined": "2027-01-01"}, "joined: in the future"),
])
def test_parse(cells: dict[str, str], result: mi.Row | str) -> None:
    if isinstance(result, str):
        with pytest.raises(BadRequest, match=result):
            mi.parse(cells, "s1", ZONES, NOW)
    else:
        assert mi.parse(cells, "s1", ZONES, NOW) == result


@pytest.mark.parametrize(("head", "error"), [
    (["phone", "marketing_sorce"], "unknown column 'marketing_sorce'"),
    (["store"], "no 'phone' column"),
    (["phone", "Phone"], "twice"),
])
def test_bad_headers(head: list[str], error: str) -> None:
    with pytest.raises(BadRequest, match=error):
        mi.header(head)


def engine_for(url: str) -> sa.Engine:
    engine = db.make_engine(url)
    db.upgrade(engine)
    tenants.sync(engine, build({"malls": [{"id": "m1"}], "stores": [{"id": "s1", "mall": "m1"},
                                                                   {"id": "s2", "mall": "m1"}],
                                "portal": {"store": "s1"}}))
    return engine


def consent_rows(engine: sa.Engine) -> list[tuple[str, str, str, bool, str | None]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            "SELECT m.phone_e164, c.kind, c.version, c.granted, c.source FROM consents c "
            "JOIN members m ON m.id = c.member_id ORDER BY c.id"))]


def run_import(engine: sa.Engine, tmp_path: Path) -> None:
    f = tmp_path / "crm.csv"
    f.write_text("\ufeff" + HEAD +
                 "13800138000,s2,2024-03-01,CRM 2024,2024-03-01,mkt-v3,,,\n"
                 "13900139000,,,,,,,,\n"                                   # no evidence: no consent
                 "12345,,,,,,,,\n"                                          # rejected
                 "13700137000,,,paper,2024-05-05,,,,\n"                     # partial evidence: rejected
                 "13600136000,,,,,,store form,2025-01-02,ana-v1\n", encoding="utf-8")
    r = member_import.import_file(engine, f, default_store="s1", now=NOW)
    assert (r.created, r.updated, r.consents, r.committed) == (3, 0, 2, True)
    assert [(x.line, x.reason.split(":")[0]) for x in r.rejected] == [(4, "phone"), (5, "marketing_version")]
    assert consent_rows(engine) == [("+8613800138000", "marketing", "mkt-v3", True, "CRM 2024"),
                                    ("+8613600136000", "analytics", "ana-v1", True, "store form")]
    with engine.connect() as conn:
        first = conn.execute(sa.text("SELECT first_store_id, created_at FROM members "
                                     "WHERE phone_e164 = '+8613800138000'")).one()
    assert first.first_store_id == "s2"
    # idempotent: the same file again adds no member and no consent
    again = member_import.import_file(engine, f, default_store="s1", now=NOW)
    assert (again.created, again.updated, again.consents) == (0, 3, 0)
    assert len(consent_rows(engine)) == 2
    # a member's newer decision on the portal is not overridden by older evidence; newer evidence is appended
    with engine.begin() as conn:
        mid = conn.execute(sa.text("SELECT id FROM members WHERE phone_e164 = '+8613900139000'")).scalar()
        conn.execute(sa.text("INSERT INTO consents (member_id, kind, version, granted, ts, store_id, lang) "
                             "VALUES (:m, 'marketing', 'marketing-2026-11', false, :t, 's1', 'zh-CN')"),
                     {"m": mid, "t": datetime(2025, 6, 1, tzinfo=UTC)})
    g = tmp_path / "later.csv"
    g.write_text(HEAD + "13900139000,,,CRM,2024-01-01,old,,,\n13800138000,,,CRM,2026-01-01,mkt-v4,,,\n",
                 encoding="utf-8")
    r = member_import.import_file(engine, g, default_store="s1", now=NOW)
    assert r.consents == 1 and consent_rows(engine)[-1] == ("+8613800138000", "marketing", "mkt-v4", True, "CRM")
    # all or nothing: a rejected row imports nothing at all
    h = tmp_path / "strict.csv"
    h.write_text(HEAD + "13500135000,,,,,,,,\nnot-a-phone,,,,,,,,\n", encoding="utf-8")
    r = member_import.import_file(engine, h, default_store="s1", now=NOW, all_or_nothing=True)
    assert not r.committed and r.created == 0 and len(r.rejected) == 1
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM members WHERE phone_e164 = '+8613500135000'")).scalar() == 0


def test_csv_import_on_sqlite(tmp_path: Path, migrated_sqlite_url: str) -> None:
    run_import(engine_for(migrated_sqlite_url), tmp_path)


@pytest.mark.integration
def test_csv_import_on_postgresql(tmp_path: Path, migrated_postgres_url: str) -> None:
    engine = engine_for(migrated_postgres_url)
    try:
        run_import(engine, tmp_path)
    finally:
        engine.dispose()


def test_xlsx_import_with_date_cells(tmp_path: Path, migrated_sqlite_url: str) -> None:
    import openpyxl

    engine = engine_for(migrated_sqlite_url)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Phone", "marketing_source", "marketing_date", "marketing_version"])
    ws.append([13800138000, "CRM", datetime(2024, 3, 1, 9, 0), "v3"])  # a number cell, a date cell
    ws.append([None, None, None, None])
    ws.append(["13900139000", None, None, None])
    wb.save(tmp_path / "crm.xlsx")
    r = member_import.import_file(engine, tmp_path / "crm.xlsx", default_store="s1", now=NOW)
    assert (r.created, r.consents, r.rejected) == (2, 1, [])
    with engine.connect() as conn:
        ts = conn.execute(sa.text("SELECT ts FROM consents")).scalar()
    assert str(ts).startswith("2024-03-01 01:00")  # 09:00 in the store's zone (Asia/Shanghai), stored as UTC


def test_a_broken_file_imports_nothing(tmp_path: Path, migrated_sqlite_url: str) -> None:
    engine = engine_for(migrated_sqlite_url)
    bad = tmp_path / "crm.csv"
    bad.write_bytes(HEAD.encode() + b"13800138000,,,,,,,,\n\xff\xfe broken\n")
    with pytest.raises(BadRequest, match="not UTF-8"):
        member_import.import_file(engine, bad, default_store="s1", now=NOW)
    (tmp_path / "x.xlsx").write_bytes(b"not a zip")
    with pytest.raises(BadRequest, match="not an XLSX"):
        member_import.import_file(engine, tmp_path / "x.xlsx", default_store="s1", now=NOW)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM members")).scalar() == 0


def test_cli_import_reports_rejected_rows_and_is_audited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        migrated_sqlite_url: str) -> None:
    from click.testing import CliRunner

    from keliu import audit
    from keliu.cli import cli

    url = migrated_sqlite_url
    engine = engine_for(url)
    f = tmp_path / "crm.csv"
    f.write_text(HEAD + "13800138000,,,CRM,2024-03-01,v3,,,\nbad,,,,,,,,\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    for k in [k for k in os.environ if k.startswith("KELIU_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("KELIU_DATABASE_URL", url)
    monkeypatch.setenv("KELIU_VAR_DIR", str(tmp_path / "var"))
    out = CliRunner().invoke(cli, ["member", "import", str(f), "--store", "s1", "--report", str(tmp_path / "r.csv")])
    assert out.exit_code == 1  # some rows were rejected
    assert "imported: 1 new, 0 known, 1 consents, 1 rejected" in out.output and "line 3: phone:" in out.output
    assert (tmp_path / "r.csv").read_text(encoding="utf-8").splitlines()[1].startswith("3,phone:")
    [entry] = audit.entries(engine)
    assert entry.action == "member.import" and entry.detail["created"] == 1 and entry.address == "local"
    out = CliRunner().invoke(cli, ["member", "import", str(f), "--store", "s1", "--all-or-nothing"])
    assert out.exit_code == 1 and "nothing imported" in out.output
