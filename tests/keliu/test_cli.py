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


def test_the_sensor_commands_load_no_web_framework_or_database_library(tmp_path: Path) -> None:
    # the configuration names every component's section, marketing's too; marketing.web (Flask, SQLAlchemy and
    # every marketing table) and SQLAlchemy's URL parser once came with it: a third of a second of every start
    from tests.sensor.sensorkit import tframe, write_records

    pcap = write_records(tmp_path / "one.pcap", [(1_767_600_000.0, tframe("basic", "02:1b:2c:3d:4e:01", 5))])
    code = ("import sys\nfrom keliu.cli import main\ntry:\n    main(['sensor', 'parse', sys.argv[1], '--format', 'csv'])\n"
            "finally:\n    print(sorted(m for m in ('flask', 'sqlalchemy', 'marketing.web') if m in sys.modules))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KELIU_")}
    out = subprocess.run([sys.executable, "-c", code, str(pcap)], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("ts,device,") and len(lines) == 3
    assert lines[-1] == "[]"


def test_marketing_entry_points_are_there_when_first_used() -> None:
    import marketing
    import marketing.web

    assert marketing.init_app is marketing.web.init_app
    assert marketing.welcome is marketing.web.welcome
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        marketing.nothing  # noqa: B018


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


# ---- every command: one line, exit 2, on a configuration error ----------------------------------------------

STORES = "[sensor]\nstore = 's1'\n[portal]\nstore = 's1'\n[[malls]]\nid = 'm1'\n[[stores]]\nid = 's1'\nmall = 'm1'\n"


def one_line(out: subprocess.CompletedProcess[str], start: str) -> None:
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    assert out.stderr.count("\n") == 1 and out.stderr.startswith(start), out.stderr
    assert "Traceback" not in out.stderr and "Error:" not in out.stderr


def capture(tmp_path: Path) -> Path:
    from keliu.testing.simulate import Scenario, simulate, write_pcap

    frames, _truth = simulate(Scenario(passersby_per_day=20, visitors_per_day=5, staff=0), seed=3)
    path = tmp_path / "day.pcap"
    write_pcap(path, frames)
    return path


COMMANDS = [["config", "--check"], ["db"], ["portal"], ["analytics", "report"], ["analytics", "run", "--once"],
            ["sensor", "parse", "{pcap}"], ["sensor", "replay", "{pcap}", "--max"], ["dashboards", "build", "--check"]]


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c[:2]))
@pytest.mark.parametrize(("toml", "env", "line"), [
    ("[dashboards]\nprot = 1\n", {}, "keliu: dashboards.prot: unknown key"),
    ("", {"KELIU_PORTAL_PORT": "80800"}, "keliu: portal.port: port out of range"),
    ("", {"KELIU_PORTAL_PROT": "8080"}, "keliu: KELIU_PORTAL_PROT: unknown environment variable"),
], ids=["toml-key", "bad-value", "env-typo"])
def test_every_command_prints_one_line_and_exits_2_on_a_configuration_error(
        tmp_path: Path, cmd: list[str], toml: str, env: dict[str, str], line: str) -> None:
    (tmp_path / "keliu.toml").write_text(STORES + toml, encoding="utf-8")
    pcap = capture(tmp_path) if any("{pcap}" in a for a in cmd) else None
    args = [a.replace("{pcap}", str(pcap)) for a in cmd]
    one_line(run(args, tmp_path, {"KELIU_DATABASE_URL": f"sqlite:///{tmp_path / 'k.db'}", **env}), line)


def test_an_env_typo_names_the_variable_it_meant(tmp_path: Path) -> None:
    out = run(["config", "--check"], tmp_path, {"KELIU_DATABSE_URL": "sqlite://"})
    one_line(out, "keliu: KELIU_DATABSE_URL: unknown environment variable")
    assert "did you mean KELIU_DATABASE_URL?" in out.stderr
    # the variables that are not configuration keys are not errors
    ok = run(["config", "--check"], tmp_path, {"KELIU_REQUIRE_SERVICES": "1", "KELIU_VM_CACHE": "/tmp"})
    assert ok.returncode == 0, ok.stderr


@pytest.mark.parametrize("cmd", [["analytics", "report", "--store", "nosuch"], ["sensor", "parse", "{pcap}", "--store",
                                                                                "nosuch"],
                                 ["sensor", "replay", "{pcap}", "--store", "nosuch", "--max"]],
                         ids=lambda c: " ".join(c[:2]))
def test_an_unknown_store_is_a_configuration_error(tmp_path: Path, cmd: list[str]) -> None:
    (tmp_path / "keliu.toml").write_text(STORES, encoding="utf-8")
    pcap = capture(tmp_path)
    out = run([a.replace("{pcap}", str(pcap)) for a in cmd], tmp_path,
              {"KELIU_DATABASE_URL": f"sqlite:///{tmp_path / 'k.db'}"})
    one_line(out, "keliu: stores: no store with id 'nosuch' (configured: s1)")


def test_portal_with_an_unknown_store_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "keliu.toml").write_text(STORES, encoding="utf-8")
    one_line(run(["portal"], tmp_path, {"KELIU_PORTAL_STORE": "nosuch"}), "keliu: stores: no store with id 'nosuch'")


def test_parse_prints_iso_times_in_the_stores_offset_and_a_truncated_file_warns(tmp_path: Path) -> None:
    import json
    from datetime import datetime

    (tmp_path / "keliu.toml").write_text(STORES, encoding="utf-8")
    pcap = capture(tmp_path)
    out = run(["sensor", "parse", str(pcap)], tmp_path)
    assert out.returncode == 0 and "warning" not in out.stderr, out.stderr
    first = json.loads(out.stdout.splitlines()[0])
    assert first["ts"].endswith("+08:00") and datetime.fromisoformat(first["ts"]).utcoffset().total_seconds() == 8 * 3600
    data = pcap.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[:len(data) - 30])
    out = run(["sensor", "parse", str(cut)], tmp_path)
    assert out.returncode == 0 and out.stdout.count("\n") == len(out.stdout.splitlines()) > 0
    assert f"warning: {cut} is truncated" in out.stderr
    head = tmp_path / "head.pcap"
    head.write_bytes(data[:24 + 10])  # the file header and the start of the first record
    out = run(["sensor", "parse", str(head)], tmp_path)
    assert out.returncode == 1 and "is truncated" in out.stderr and "no probe request could be read" in out.stderr


def test_parse_of_an_anonymized_capture_hints_at_fcs_flag(tmp_path: Path) -> None:
    from tests.conftest import require_shared_data

    path = require_shared_data("baccichet__iPhone11-B_anonymized.pcap")
    out = run(["sensor", "parse", str(path)], tmp_path)
    assert out.returncode == 1 and out.stdout == ""
    assert "all 782 frames failed their FCS check" in out.stderr and "try --fcs flag" in out.stderr
    ok = run(["sensor", "parse", str(path), "--fcs", "flag"], tmp_path)
    assert ok.returncode == 0 and len(ok.stdout.splitlines()) == 782 and "warning" not in ok.stderr
    assert "anonymized captures" in run(["sensor", "parse", "--help"], tmp_path).stdout


def test_the_console_is_quiet_by_default(tmp_path: Path) -> None:
    (tmp_path / "keliu.toml").write_text(STORES, encoding="utf-8")
    env = {"KELIU_DATABASE_URL": f"sqlite:///{tmp_path / 'k.db'}"}
    out = run(["db"], tmp_path, env)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    out = run(["analytics", "run", "--once"], tmp_path, env)
    assert out.returncode == 0 and out.stdout == out.stderr == "", out


def test_a_database_keliu_has_not_created_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    out = run(["accesslog", "verify"], tmp_path, {"KELIU_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"})
    assert out.returncode == 1, out.stderr
    lines = out.stderr.strip().splitlines()
    assert "Traceback" not in out.stderr and len(lines) == 1, out.stderr
    assert lines[0].startswith("keliu: database: no such table") and "run `keliu db`" in lines[0]


def test_the_database_reason_names_a_missing_postgresql_relation_too() -> None:
    from keliu.cli import _db_reason

    class Orig(Exception):
        pass

    class Wrapped(Exception):
        orig = Orig('relation "access_log" does not exist\nLINE 1: SELECT ...')

    assert _db_reason(Wrapped("x")) == 'relation "access_log" does not exist (the schema is not keliu\'s yet: run `keliu db`)'
    assert _db_reason(Exception("connection refused\ndetail")) == "connection refused"
