"""``keliu staff``: staff attribution by hand (an edge: the configured database): a store's settings, a staff
member's phone (recorded as a keyed hash, to flag a staff member redeeming their own coupons), the flags raised."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click
import sqlalchemy as sa

from keliu import config, db, keys
from marketing import staff as st
from marketing.core.attribution import Settings


@click.group("staff")
def staff() -> None:
    """Staff attribution: settings per store, staff phones, flags."""


def _engine() -> sa.Engine:
    return db.make_engine(config.load().database_url, hide_parameters=True)


@staff.command("settings")
@click.argument("store_id")
@click.option("--window-days", type=int, help="days a member stays bound to the staff member whose card they scanned")
@click.option("--protection-days", type=int, help="days another staff member cannot take the member (0: none)")
@click.option("--burst-count", type=int, help="redemptions by one staff member that make a burst …")
@click.option("--burst-minutes", type=int, help="… within this many minutes")
def settings(store_id: str, window_days: int | None, protection_days: int | None, burst_count: int | None,
             burst_minutes: int | None) -> None:
    """Show a store's attribution settings; change those given."""
    engine = _engine()
    try:
        with engine.begin() as conn:
            cur = st.settings_of(conn, store_id)
            given = {k: v for k, v in {"window_days": window_days, "protection_days": protection_days,
                                       "burst_count": burst_count, "burst_minutes": burst_minutes}.items()
                     if v is not None}
            if given:
                try:
                    cur = Settings(**{**cur.__dict__, **given})
                except ValueError as exc:
                    raise click.BadParameter(str(exc)) from exc
                st.set_settings(conn, store_id, cur)
    finally:
        engine.dispose()
    click.echo(f"{store_id}\twindow_days={cur.window_days}\tprotection_days={cur.protection_days}\t"
               f"burst={cur.burst_count} in {cur.burst_minutes} min")


@staff.command("phone")
@click.argument("name")
@click.argument("phone", required=False)
@click.option("--clear", is_flag=True, help="forget the recorded phone")
def phone(name: str, phone: str | None, clear: bool) -> None:
    """Record a staff member's phone (E.164, e.g. +8613812345678) as a keyed hash, never the number."""
    if not clear and not phone:
        raise click.UsageError("give a phone number or --clear")
    cfg = config.load()
    digest = None
    if not clear:
        try:
            digest = st.phone_hash(keys.secret_bytes(cfg.var_dir, "token_hmac"), str(phone))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="PHONE") from exc
    engine = db.make_engine(cfg.database_url, hide_parameters=True)
    try:
        with engine.begin() as conn:
            store = conn.execute(sa.text("SELECT store_id FROM admin_users WHERE name = :n AND role = 'staff'"),
                                 {"n": name}).scalar()
            if store is None:
                raise click.BadParameter(f"no staff user {name!r}", param_hint="NAME")
            st.ensure_card(conn, name, str(store), datetime.now(UTC))
            st.set_phone_hash(conn, name, digest)
    finally:
        engine.dispose()
    click.echo(f"{name}: phone {'forgotten' if clear else 'recorded (hashed)'}")


@staff.command("flags")
@click.argument("store_id")
@click.option("--days", type=click.IntRange(1, 366), default=7, show_default=True)
def flags(store_id: str, days: int) -> None:
    """The flags raised at a store's counter in the last days: time, staff, kind, reference."""
    engine = _engine()
    now = datetime.now(UTC)
    try:
        with engine.connect() as conn:
            for f in st.flags(conn, store_id, now - timedelta(days=days), now + timedelta(seconds=1)):
                click.echo(f"{f['at']}\t{f['staff']}\t{f['kind']}\t{f['reference']}")
    finally:
        engine.dispose()
