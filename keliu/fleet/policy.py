"""What a router's PostgreSQL role may touch, as data, and the SQL that grants it (pure: no I/O).

A router connects as its own login role (``keliu_router_<store>``), never as the tables' owner (who bypasses row
level security). ``fleet_routers`` maps each role to its store; ``keliu_fleet_store()`` reads that mapping for the
connected role (``session_user``, which the router cannot change), so no setting the router controls decides which
store it is (the one setting a policy reads, the phone of a login in progress, is in ``table_policies``). Each table a router needs gets exactly one of the access kinds below; tables not listed are not granted
at all (central only). docs/DEPLOY.md "A fleet" lists them for operators.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from keliu.errors import ConfigError

Kind = Literal["store", "store_append", "store_read", "mall_read", "shared", "shared_read", "shared_append",
               "shared_update", "members", "consents", "admin_sessions"]


@dataclass(frozen=True)
class Access:
    kind: Kind
    column: str = "store_id"  # the store (or mall) column the policy compares


#: table -> what a router may do with it (``table_policies`` and ``grants`` say what each kind means)
TABLES: dict[str, Access] = {
    # the portal: sessions, logins and devices of this store only
    "portal_sessions": Access("store"),
    "logins": Access("store"),
    "devices": Access("store"),
    "splash_content": Access("store"),
    "wechat_extend_used": Access("store"),
    "card_uses": Access("store"),
    # the law's access log: append and read this store's records only, never change one
    "access_log": Access("store_append"),
    "staff_audit": Access("store_append"),
    # the sensor and the store's analytics
    "sightings": Access("store", "store"),
    "sensor_health": Access("store", "store"),
    "visits": Access("store", "store"),
    "rollups": Access("store", "store"),
    "device_days": Access("store", "store"),
    "connected_days": Access("store", "store"),
    "connected_visits": Access("store", "store"),
    # the late sightings' quarter hours (the insert records them) and the mall-days their roll-ups record
    "late_sightings": Access("store", "store"),
    "late_mall_days": Access("store", "store"),
    # the AP's station list heard (the poller's records, no device), written with the sightings
    "station_polls": Access("store", "store"),
    # marketing at this store
    "coupons": Access("store"),
    "redemptions": Access("store"),
    "sales": Access("store"),
    "pos_imports": Access("store"),
    "staff_bindings": Access("store"),
    "staff_cards": Access("store"),
    "staff_flags": Access("store"),
    "staff_redemptions": Access("store"),
    "staff_settings": Access("store"),
    # a campaign's message for this store's next success page (a mall-wide one, store NULL, waits for the central host)
    "splash_messages": Access("store"),
    "offer_stores": Access("store_read"),
    "api_tokens": Access("store_read"),
    "admin_users": Access("store_read"),
    "admin_sessions": Access("admin_sessions"),
    # the store's own offers and campaigns and its mall's (store_id NULL, mall_id its mall): read only
    "offers": Access("mall_read"),
    "campaigns": Access("mall_read"),
    # tenants: names are not secret
    "malls": Access("shared_read"),
    "stores": Access("shared_read"),
    "alembic_version": Access("shared_read"),
    # the mall's one member system: this store's members and the one logging in; consents appended by store,
    # readable by member id
    "members": Access("members"),
    "consents": Access("consents"),
    # keyed ids and hashes, no store column: shared by the mall's routers by design (a device id is the same in
    # every store; the chain head of the access log is one row)
    "sms_codes": Access("shared"),
    "rate_events": Access("shared"),
    "landing_urls": Access("shared"),
    "member_registry": Access("shared"),
    "sensor_device_registry": Access("shared"),
    "wechat_identities": Access("shared"),
    "wechat_releases": Access("shared_append"),
    "member_offers": Access("shared"),
    "accesslog_head": Access("shared_update"),  # the chain's head: moved forward, never deleted
}

#: tables no router is granted: the mall's campaigns and their audiences (and the member tags their segments read,
#: set in the central console and CLI), the SMS provider's replies (its callback reaches the central host), mall-wide
#: figures, the WeChat official account's events, member card template and activated cards (the member pages live on
#: the public central host), budgets, and the fleet's own mapping (the central host's processes use them as the owner)
CENTRAL_ONLY = frozenset({"campaign_members", "campaign_sends", "contact_counts", "mall_days", "mall_transitions",
                          "member_tags", "offer_days", "sms_replies", "wechat_follows", "wechat_member_cards",
                          "wechat_card_members", "fleet_routers"})

#: members' columns a router may change (a login refreshes them); the rest only the central host
MEMBER_UPDATE = ("last_seen_at", "wechat_unionid")

ROLE_PREFIX = "keliu_router_"
_STORE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,40}$")
MY_STORE = "keliu_fleet_store()"
MY_MALL = "keliu_fleet_mall()"


def role_name(store_id: str) -> str:
    """The router role of a store: ``keliu_router_<store>`` (``-`` becomes ``_``; PostgreSQL names are short)."""
    if not _STORE.match(store_id):
        raise ConfigError("fleet.store", f"not a store id keliu can name a role after: {store_id!r}")
    return ROLE_PREFIX + store_id.replace("-", "_")


def check_id(value: str) -> str:
    """A store or mall id safe to write into DDL (the ids keliu's configuration allows)."""
    if not _STORE.match(value):
        raise ConfigError("fleet.store", f"not a store or mall id keliu accepts here: {value!r}")
    return value


def q(name: str) -> str:
    """A quoted identifier (names come from TABLES and role_name, never from input unchecked)."""
    if not re.match(r"^[a-z_][a-z0-9_]*$", name):
        raise ConfigError("fleet.identifier", f"refusing identifier {name!r}")
    return f'"{name}"'


def setup_sql() -> list[str]:
    """The mapping table and the two functions every policy calls (idempotent)."""
    return [
        ("CREATE TABLE IF NOT EXISTS fleet_routers (role_name text PRIMARY KEY, store_id text NOT NULL UNIQUE,"
        " mall_id text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"),
        "REVOKE ALL ON fleet_routers FROM PUBLIC",
        # SECURITY DEFINER: the router reads its own mapping through the function, never the table; session_user
        # is the role it logged in as (SET ROLE cannot change it)
        (f"CREATE OR REPLACE FUNCTION {MY_STORE} RETURNS text LANGUAGE sql STABLE SECURITY DEFINER"
        " SET search_path = pg_catalog, public"
        " AS $$ SELECT store_id FROM public.fleet_routers WHERE role_name = session_user $$"),
        (f"CREATE OR REPLACE FUNCTION {MY_MALL} RETURNS text LANGUAGE sql STABLE SECURITY DEFINER"
        " SET search_path = pg_catalog, public"
        " AS $$ SELECT mall_id FROM public.fleet_routers WHERE role_name = session_user $$"),
    ]


def _policy(table: str, name: str, command: str, using: str | None, check: str | None) -> list[str]:
    sql = f"CREATE POLICY {q(name)} ON {q(table)} FOR {command} TO PUBLIC"
    if using is not None:
        sql += f" USING ({using})"
    if check is not None:
        sql += f" WITH CHECK ({check})"
    return [sql]


def table_policies(table: str, access: Access) -> list[str]:
    """Enable row level security on ``table`` and (re)create its policies. The policies apply to every role but
    the owner, so they hold for each router; the owner (migrations, the central host's processes) bypasses them."""
    col = q(access.column)
    mine = f"{col} = {MY_STORE}"
    # drop every fleet policy first: one left from an earlier version of these rules would widen access (policies
    # of one command are OR-ed)
    sql = [(f"DO $$ DECLARE p record; BEGIN FOR p IN SELECT policyname FROM pg_policies WHERE schemaname = 'public'"
           f" AND tablename = '{table}' AND left(policyname, 5) = 'fleet' LOOP"
           f" EXECUTE 'DROP POLICY ' || quote_ident(p.policyname) || ' ON public.{q(table)}'; END LOOP; END $$"),
           f"ALTER TABLE {q(table)} ENABLE ROW LEVEL SECURITY"]
    k = access.kind
    if k == "store":
        sql += _policy(table, "fleet_store", "ALL", mine, mine)
    elif k == "store_append":
        sql += _policy(table, "fleet_read", "SELECT", mine, None)
        sql += _policy(table, "fleet_append", "INSERT", None, mine)
    elif k == "store_read":
        sql += _policy(table, "fleet_read", "SELECT", mine, None)
    elif k == "mall_read":
        sql += _policy(table, "fleet_read", "SELECT",
                       f"{mine} OR ({col} IS NULL AND mall_id = {MY_MALL})", None)
    elif k == "consents":
        # a member's decisions are the mall's: a withdrawal at another store must hold here (fail closed), and a
        # consent row says nothing of who the member is; written only for this store
        sql += _policy(table, "fleet_read", "SELECT", "true", None)
        sql += _policy(table, "fleet_append", "INSERT", None, mine)
    elif k == "members":
        # the mall's members: this store's (first seen here, or logged in here) and the one a login in progress
        # names (its phone or openid, put in the transaction's settings by the trigger below, which fires before
        # INSERT … ON CONFLICT looks for the existing row): find-or-create works, listing others' does not
        visible = (f"first_store_id = {MY_STORE}"
                   " OR phone_e164 = current_setting('keliu.fleet_phone', true)"
                   " OR wechat_openid = current_setting('keliu.fleet_openid', true)"
                   f" OR EXISTS (SELECT 1 FROM logins l WHERE l.member_id = {q(table)}.id AND l.store_id = {MY_STORE})")
        sql += [
            ("CREATE OR REPLACE FUNCTION keliu_fleet_member_lookup() RETURNS trigger LANGUAGE plpgsql"
            " SET search_path = pg_catalog AS $$ BEGIN"
            " PERFORM set_config('keliu.fleet_phone', coalesce(NEW.phone_e164, ''), true);"
            " PERFORM set_config('keliu.fleet_openid', coalesce(NEW.wechat_openid, ''), true);"
            " RETURN NEW; END $$"),
            f"DROP TRIGGER IF EXISTS keliu_fleet_member_lookup ON {q(table)}",
            (f"CREATE TRIGGER keliu_fleet_member_lookup BEFORE INSERT ON {q(table)} FOR EACH ROW"
            " EXECUTE FUNCTION keliu_fleet_member_lookup()"),
        ]
        sql += _policy(table, "fleet_read", "SELECT", visible, None)
        sql += _policy(table, "fleet_insert", "INSERT", None, f"first_store_id = {MY_STORE}")
        sql += _policy(table, "fleet_touch", "UPDATE", visible, visible)
    elif k == "admin_sessions":
        sql += _policy(table, "fleet_store", "ALL",
                       f"user_name IN (SELECT name FROM admin_users WHERE store_id = {MY_STORE})",
                       f"user_name IN (SELECT name FROM admin_users WHERE store_id = {MY_STORE})")
    elif k in ("shared", "shared_read", "shared_append", "shared_update"):
        sql = [f"ALTER TABLE {q(table)} DISABLE ROW LEVEL SECURITY"]
    return sql


def grants(table: str, access: Access, role: str) -> list[str]:
    """The table privileges of ``role`` (row level security narrows them to its rows)."""
    t, r = q(table), q(role)
    k = access.kind
    if k in ("store", "shared", "admin_sessions"):
        return [f"GRANT SELECT, INSERT, UPDATE, DELETE ON {t} TO {r}"]
    if k in ("store_append", "consents", "shared_append"):
        return [f"GRANT SELECT, INSERT ON {t} TO {r}"]
    if k == "shared_update":
        return [f"GRANT SELECT, INSERT, UPDATE ON {t} TO {r}"]
    if k in ("store_read", "mall_read", "shared_read"):
        return [f"GRANT SELECT ON {t} TO {r}"]
    if k == "members":
        # no DELETE: erasing a member is the central host's (member rights), never a router's
        return [f"GRANT SELECT, INSERT ON {t} TO {r}",
                f"GRANT UPDATE ({', '.join(MEMBER_UPDATE)}) ON {t} TO {r}"]
    raise AssertionError(k)  # pragma: no cover - every Kind is handled above


def router_sql(role: str, store_id: str, mall_id: str, password: str, tables: set[str]) -> list[str]:
    """Create (or reset) ``role`` for ``store_id`` and grant it the tables that exist (``tables``)."""
    r = q(role)
    check_id(store_id)
    check_id(mall_id)
    pw = password.replace("'", "''")
    sql = [
        (f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN "
        f"CREATE ROLE {r} LOGIN; END IF; END $$"),
        f"ALTER ROLE {r} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOBYPASSRLS PASSWORD '{pw}'",
        ("INSERT INTO fleet_routers (role_name, store_id, mall_id) VALUES "
        f"('{role}', '{store_id}', '{mall_id}') ON CONFLICT (role_name) DO UPDATE SET store_id = EXCLUDED.store_id,"
        " mall_id = EXCLUDED.mall_id"),
        f"REVOKE CREATE ON SCHEMA public FROM {r}",
        f"GRANT USAGE ON SCHEMA public TO {r}",
        f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {r}",
        f"GRANT EXECUTE ON FUNCTION {MY_STORE}, {MY_MALL} TO {r}",
    ]
    for table in sorted(tables & TABLES.keys()):
        sql += grants(table, TABLES[table], role)
    return sql


def policies_sql(tables: set[str]) -> list[str]:
    """Row level security on every listed table that exists."""
    out = setup_sql()
    for table in sorted(tables & TABLES.keys()):
        out += table_policies(table, TABLES[table])
    return out
