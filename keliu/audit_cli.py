"""``keliu audit``: read the staff audit trail (composition root: the database from the configuration)."""
from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from keliu import audit, config, db
from keliu.errors import KeliuError


@click.group("audit")
def audit_cmd() -> None:
    """The staff audit trail: who viewed, exported, kicked, changed what, when and from where."""


@audit_cmd.command("list")
@click.option("--since", default=None, help="From this day or time (ISO 8601, UTC).")
@click.option("--until", default=None, help="Before this day or time (ISO 8601, UTC).")
@click.option("--action", default=None, help="Only this action (member.export, session.kick, ...).")
@click.option("--user", "user_name", default=None, help="Only this user.")
@click.option("--mall", default=None, help="Only this mall's entries.")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True, help="One JSON object a line.")
def list_cmd(since: str | None, until: str | None, action: str | None, user_name: str | None, mall: str | None,
             limit: int, as_json: bool) -> None:
    """The newest entries first."""

    def when(raw: str | None, name: str) -> datetime | None:
        if raw is None:
            return None
        try:
            t = datetime.fromisoformat(raw)
        except ValueError as exc:
            raise KeliuError(f"--{name}: not an ISO 8601 date or time: {raw!r}") from exc
        return t.replace(tzinfo=UTC) if t.tzinfo is None else t

    cfg = config.load()
    engine = db.make_engine(cfg.database_url)
    try:
        rows = audit.entries(engine, mall_id=mall, since=when(since, "since"), until=when(until, "until"),
                             action=action, user_name=user_name, limit=limit)
    finally:
        engine.dispose()
    for e in rows:
        if as_json:
            click.echo(json.dumps({"id": e.id, "ts": e.ts.isoformat(), "user": e.user_name, "role": e.role,
                                   "mall": e.mall_id, "store": e.store_id, "action": e.action, "target": e.target,
                                   "address": e.address, "detail": e.detail}, ensure_ascii=False))
        else:
            click.echo(f"{e.ts:%Y-%m-%d %H:%M:%S} {e.user_name} ({e.role}) {e.address} {e.action} {e.target} "
                       f"{json.dumps(e.detail, ensure_ascii=False)}")
