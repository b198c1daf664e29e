"""The CLI as a user meets it: a real ``keliu`` process, its help and its one-line errors with exit 2."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

KELIU = [sys.executable, "-m", "keliu.cli"]


def run(args: list[str], tmp_path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("KELIU_")}
    full.update(env or {})
    return subprocess.run(KELIU + args, cwd=tmp_path, env=full, capture_output=True, text=True, timeout=120, check=False)


def test_help_lists_every_subcommand(tmp_path: Path) -> None:
    out = run(["--help"], tmp_path)
    assert out.returncode == 0, out.stderr
    for cmd in ("demo", "portal", "sensor", "analytics", "router", "dashboards"):
        assert f"\n  {cmd} " in out.stdout


@pytest.mark.parametrize("cmd", ["demo", "portal", "sensor", "analytics", "router", "dashboards", "config", "db",
                                 "user"])
def test_each_subcommand_explains_itself(tmp_path: Path, cmd: str) -> None:
    out = run([cmd, "--help"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Usage: keliu " + cmd in out.stdout
    assert len(out.stdout.splitlines()) >= 3


@pytest.mark.parametrize(
    ("toml", "env", "line"),
    [
        ("colour = 'red'\n", {}, "keliu: colour: unknown key"),
        ("[portal]\nport = 'x'\n", {}, "keliu: portal.port: expected an integer, got 'x'"),
        ("", {"KELIU_PORTAL_PORT": "x"}, "keliu: portal.port: expected an integer, got 'x'"),
        ("[router]\ntrusted_macs = ['zz:11:22:33:44:55']\n", {}, "keliu: router.trusted_macs: not a MAC address"),
        ("[router]\nlan_cidr = '300.1.1.0/24'\n", {}, "keliu: router.lan_cidr: not a CIDR network"),
    ],
)
def test_config_errors_print_one_line_and_exit_2(tmp_path: Path, toml: str, env: dict[str, str], line: str) -> None:
    (tmp_path / "keliu.toml").write_text(toml, encoding="utf-8")
    out = run(["config", "--check"], tmp_path, env)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [out.stderr.strip()]
    assert out.stderr.startswith(line)


def test_db_creates_schema_on_sqlite(tmp_path: Path) -> None:
    out = run(["db"], tmp_path)
    assert out.returncode == 0, out.stderr
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'var' / 'keliu.db'}")
    names = set(sa.inspect(engine).get_table_names())
    assert {"malls", "stores", "sightings"} <= names
    with engine.connect() as conn:
        assert conn.exec_driver_sql("select id, mall_id from stores").all() == [("demo-store", "demo-mall")]


# passwords an attacker who reads `keliu config` output (a support ticket, a screen share, a log) must not learn
URL_SECRETS = {
    "KELIU_DATABASE_URL": ("postgresql://keliu:DbPw-s3cret@db.example:5432/keliu", "DbPw-s3cret"),
    "KELIU_ANALYTICS_BROKER_URL": ("amqp://guest:Broker-s3cret@rabbit.example:5672//", "Broker-s3cret"),
    "KELIU_ANALYTICS_RESULT_BACKEND": ("redis://:Redis-s3cret@redis.example:6379/0", "Redis-s3cret"),
    "KELIU_ANALYTICS_INFLUX_URL": ("http://admin:Influx-s3cret@influx.example:8086/?token=QueryTok-s3cret",
                                   "s3cret"),
    "KELIU_PORTAL_VENUE_INFO_URL": ("https://shop:Venue-s3cret@venue.example/info", "Venue-s3cret"),
}


def test_config_hides_passwords_inside_urls(tmp_path: Path) -> None:
    """Attack review #11: `keliu config` printed the passwords inside database_url, broker_url and friends."""
    out = run(["config"], tmp_path, {k: url for k, (url, _pw) in URL_SECRETS.items()})
    assert out.returncode == 0, out.stderr
    assert "s3cret" not in out.stdout + out.stderr
    assert '"database_url": "postgresql://keliu:***@db.example:5432/keliu"' in out.stdout
    assert '"broker_url": "amqp://guest:***@rabbit.example:5672//"' in out.stdout
    assert '"result_backend": "redis://:***@redis.example:6379/0"' in out.stdout
    assert '"influx_url": "http://admin:***@influx.example:8086/?token=***"' in out.stdout
    assert '"venue_info_url": "https://shop:***@venue.example/info"' in out.stdout


def test_config_error_quoting_a_url_hides_its_password(tmp_path: Path) -> None:
    out = run(["config", "--check"], tmp_path, {"KELIU_DATABASE_URL": "postgre sql://keliu:DbPw-s3cret@db/keliu"})
    assert out.returncode == 2
    assert out.stderr.startswith("keliu: database_url: not an SQLAlchemy URL: 'postgre sql://keliu:***@db/keliu'")
    assert "s3cret" not in out.stderr
