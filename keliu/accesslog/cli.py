"""``keliu accesslog``: check the chain, serve the authorities, anchor and purge (a composition root).

Every query and export is itself appended to the chain (who asked, what, how many records went out) before the
answer is printed: a request that is not recorded is not served.
"""
from __future__ import annotations

import csv
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click

from keliu.accesslog import chain
from keliu.errors import AccesslogError

FIELDS = ("seq", "ts", "event", "store_id", "session_id", "member_id", "phone", "account", "mac", "ip",
          "public_ip", "port_lo", "port_hi", "started_at", "ended_at", "detail", "prev_hash", "hash")


def _setup() -> tuple[Any, Any]:
    from keliu import config, db

    cfg = config.load()
    engine = db.make_engine(cfg.database_url)
    return cfg, engine


def _time(value: str | None, tz: str) -> datetime | None:
    """ISO 8601; without an offset, the store's local time zone (``timezone`` of the configuration)."""
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError as exc:
        raise AccesslogError(f"not an ISO 8601 time: {value!r}") from exc
    return (t.replace(tzinfo=ZoneInfo(tz)) if t.tzinfo is None else t).astimezone(UTC)


@click.group("accesslog")
def accesslog() -> None:
    """The access and NAT log the law requires: verify, query, export, anchor, purge."""


@accesslog.command("verify")
@click.option("--public-key", "public_key", type=click.Path(exists=True, dir_okay=False),
              help="PEM public key to check signatures with (default: the router's own key in var/keys).")
@click.option("--in-database", is_flag=True,
              help="PostgreSQL: let the database recompute the links (less data moved) instead of keliu.")
def verify_cmd(public_key: str | None, in_database: bool) -> None:
    """Check every record's link, the sequence, the start (genesis or last purge), the signatures and the head.
    Exit 1 naming the first bad record."""
    from keliu.accesslog import signing, store

    cfg, engine = _setup()
    public = (signing.load_public(Path(public_key).read_bytes()) if public_key
              else signing.signer(cfg.var_path).public)
    with engine.connect() as conn:
        report = store.verify(conn, public, in_database=in_database)
    if report.bad is not None:
        raise AccesslogError(f"chain broken at {report.bad}")
    span = "no records" if report.first_seq is None else f"records {report.first_seq}–{report.last_seq}"
    last = "never" if report.last_anchor is None else report.last_anchor.isoformat()
    click.echo(f"ok: {report.records} {span}, {report.anchors} signed anchors (last {last})")


def _use(event: str, detail: dict[str, Any]) -> tuple[Any, Any]:
    cfg, engine = _setup()
    from keliu.accesslog import store

    with engine.begin() as conn:
        store.log_use(conn, event, datetime.now(UTC), detail)
    return cfg, engine


@accesslog.command("query")
@click.option("--public-ip", help="The public address the authorities name.")
@click.option("--port", type=click.IntRange(1, 65535), help="The public source port.")
@click.option("--at", "at", help="The time (ISO 8601; without an offset: the configured time zone).")
@click.option("--phone", help="A member's phone (E.164, +86…).")
@click.option("--mac", help="A device's MAC address.")
@click.option("--from", "start", help="From (with --phone or --mac).")
@click.option("--to", "end", help="Until, exclusive (with --phone or --mac).")
@click.option("--requester", required=True, help="Who asks, and the request's reference (recorded in the log).")
def query_cmd(public_ip: str | None, port: int | None, at: str | None, phone: str | None, mac: str | None,
              start: str | None, end: str | None, requester: str) -> None:
    """Who used PUBLIC-IP:PORT at AT, or the records of one phone or MAC. Prints JSON, one record a line."""
    from keliu.accesslog import store
    from keliu.config import load

    tz = load().timezone
    if port is not None or at is not None:
        if port is None or at is None:
            raise AccesslogError("--port and --at go together")
        when = _time(at, tz)
        assert when is not None
        criteria: dict[str, Any] = {"public_ip": public_ip, "port": port, "at": when.isoformat()}
    elif phone is not None or mac is not None:
        criteria = {"phone": phone, "mac": mac.lower() if mac else None}
    else:
        raise AccesslogError("give --port and --at (and --public-ip), or --phone, or --mac")
    t0, t1 = _time(start, tz), _time(end, tz)
    criteria.update(requester=requester, **({"from": t0.isoformat()} if t0 else {}),
                    **({"to": t1.isoformat()} if t1 else {}))
    _cfg, engine = _setup()
    with engine.begin() as conn:
        if "port" in criteria:
            found = store.who(conn, public_ip, criteria["port"], datetime.fromisoformat(criteria["at"]))
            out = [] if found is None else [found]
        else:
            out = list(store.records(conn, start=t0, end=t1, phone=phone, mac=criteria["mac"]))
        # recorded in the same transaction as the answer is read: no unrecorded answer
        store.log_use(conn, "query", datetime.now(UTC), {**criteria, "records": len(out)})
    for rec in out:
        click.echo(json.dumps(rec, ensure_ascii=False, sort_keys=True))
    if not out:
        click.echo("no record", err=True)


@accesslog.command("export")
@click.option("--from", "start", required=True, help="From (ISO 8601).")
@click.option("--to", "end", required=True, help="Until, exclusive (ISO 8601).")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), help="File (default: stdout).")
@click.option("--requester", required=True, help="Who asks, and the request's reference (recorded in the log).")
def export_cmd(start: str, end: str, fmt: str, output: str | None, requester: str) -> None:
    """Every record in [FROM, TO), with its links (so the recipient can check the chain), as CSV or JSON."""
    from keliu.accesslog import store
    from keliu.config import load

    tz = load().timezone
    t0, t1 = _time(start, tz), _time(end, tz)
    _cfg, engine = _setup()
    fh = open(output, "w", encoding="utf-8", newline="") if output else sys.stdout  # noqa: SIM115
    try:
        with engine.begin() as conn:
            rows = list(store.records(conn, start=t0, end=t1))
            store.log_use(conn, "export", datetime.now(UTC), {
                "from": t0.isoformat() if t0 else None, "to": t1.isoformat() if t1 else None, "format": fmt,
                "requester": requester, "records": len(rows)})
        if fmt == "json":
            json.dump(rows, fh, ensure_ascii=False, indent=1)
            fh.write("\n")
        else:
            w = csv.DictWriter(fh, fieldnames=FIELDS)
            w.writeheader()
            w.writerows(rows)
    finally:
        if fh is not sys.stdout:
            fh.close()
    click.echo(f"exported {len(rows)} records", err=True)


@accesslog.command("anchor")
def anchor_cmd() -> None:
    """Append a signed anchor of the chain's head now (the beat does it every day)."""
    from keliu.accesslog import signing, store

    cfg, engine = _setup()
    with engine.begin() as conn:
        seq = store.anchor(conn, signing.signer(cfg.var_path), datetime.now(UTC))
    click.echo(f"anchor {seq}")


@accesslog.command("purge")
def purge_cmd() -> None:
    """Delete records older than [accesslog] retention_days now (the beat does it every night)."""
    from keliu.accesslog import signing, store

    cfg, engine = _setup()
    with engine.begin() as conn:
        n = store.purge(conn, signing.signer(cfg.var_path), datetime.now(UTC), cfg.accesslog.retention_days)
    click.echo(f"purged {n} records")


@accesslog.command("public-key")
def public_key_cmd() -> None:
    """Print the PEM public key that checks this router's anchors and purges (give it to the auditor)."""
    from keliu import config
    from keliu.accesslog import signing

    click.echo(signing.signer(config.load().var_path).public_pem(), nl=False)


__all__ = ["accesslog", "chain"]
