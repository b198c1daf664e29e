"""Without a broker (the embedded default, the demo), ``keliu analytics run`` runs marketing's beat too: a lapsed
campaign's members get their success-page message from the in-process loop."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from click.testing import CliRunner

from keliu import db
from keliu.cli import cli
from marketing import execution
from tests.marketing.campaign_kit import new_campaign

MEMBERS = sa.table("members", sa.column("id"), sa.column("created_at", db.TS), sa.column("first_store_id"),
                   sa.column("last_seen_at", db.TS))
CONSENTS = sa.table("consents", sa.column("member_id"), sa.column("kind"), sa.column("version"),
                    sa.column("granted"), sa.column("ts", db.TS), sa.column("store_id"), sa.column("lang"))


def test_run_once_sends_a_lapsed_campaign_in_process(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'k.db'}"
    (tmp_path / "keliu.toml").write_text('[[malls]]\nid = "m1"\n[[stores]]\nid = "s1"\nmall = "m1"\n')
    env = {"KELIU_DATABASE_URL": url, "KELIU_CONFIG": str(tmp_path / "keliu.toml"),
           "KELIU_VAR_DIR": str(tmp_path / "var")}
    res = CliRunner().invoke(cli, ["db"], env=env)
    assert res.exit_code == 0, res.output
    engine = db.make_engine(url)
    now = datetime.now(UTC)
    old = now - timedelta(days=45)
    with engine.begin() as conn:
        conn.execute(sa.insert(MEMBERS), [{"id": i, "created_at": old, "first_store_id": "s1", "last_seen_at": old}
                                          for i in (1, 2, 3)])
        conn.execute(sa.insert(CONSENTS), [{"member_id": i, "kind": "marketing", "version": "v1", "granted": i != 3,
                                            "ts": old, "store_id": "s1", "lang": "zh-CN"} for i in (1, 2, 3)])
    cid = new_campaign(engine, now, name="we miss you", trigger="lapsed", channel="splash", category="notice",
                       message={"text": "好久不见"})
    res = CliRunner().invoke(cli, ["analytics", "run", "--once"], env=env)
    assert res.exit_code == 0, res.output
    assert execution.counts(engine, cid) == {"status": {"sent": 2, "suppressed": 1},
                                             "suppressed": {"no_consent:marketing": 1}}
    engine.dispose()
