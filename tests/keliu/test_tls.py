"""The TLS settings of the database and the broker (keliu.tls): their shape checked with the configuration (errors
naming the key), the files read at start-up, and what libpq and kombu receive."""
from __future__ import annotations

import os
import ssl
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from keliu import config, tls
from keliu.errors import ConfigError
from keliu.fleet import ca

PG = "postgresql+psycopg://keliu_router_s1@db.mall.example:5432/keliu"
AMQPS = "amqp://keliu_router_s1:pw@mq.mall.example:5671//"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("fleet")
    now = datetime.now(UTC)
    ca.init_ca(d, now)
    ca.issue(d, "keliu_router_s1", now)
    ca.issue(d, "central", now, dns=("db.mall.example",), server=True)
    return d


def router_db(d: Path) -> dict[str, str]:
    return {"sslmode": "verify-full", "sslrootcert": str(d / "ca.pem"), "sslcert": str(d / "keliu_router_s1.pem"),
            "sslkey": str(d / "keliu_router_s1.key")}


def test_database_settings_reach_the_url_every_engine_is_made_from(certs: Path) -> None:
    cfg = config.build({"database_url": PG, "database": router_db(certs)})
    query = make_url(cfg.database_url).query
    assert query == {"sslmode": "verify-full", "sslrootcert": str(certs / "ca.pem"),
                     "sslcert": str(certs / "keliu_router_s1.pem"), "sslkey": str(certs / "keliu_router_s1.key")}
    assert cfg.database.sslmode == "verify-full"
    # the same from the environment
    env = {"KELIU_DATABASE_URL": PG, **{f"KELIU_DATABASE_{k.upper()}": v for k, v in router_db(certs).items()}}
    assert config.build({}, env).database_url == cfg.database_url
    # nothing set: the URL is left as it is
    assert config.build({"database_url": PG}).database_url == PG


@pytest.mark.parametrize(("raw", "key", "reason"), [
    ({"database": {"sslmode": "verify-full"}}, "database.sslrootcert", "needs the CA certificate"),
    ({"database": {"sslmode": "verify-full", "sslrootcert": "/ca.pem", "sslcert": "/r.pem"}}, "database.sslkey",
     "sslcert and sslkey go together"),
    ({"database": {"sslmode": "require", "sslrootcert": "/ca.pem"}}, "database.sslmode", "set sslmode to verify-full"),
    ({"database": {"sslrootcert": "/ca.pem"}}, "database.sslmode", "not unset"),
    ({"database": {"sslmode": "verify-everything"}}, "database.sslmode", "expected one of"),
    ({"database": {"sslmode": "require"}}, "database.sslmode", "TLS settings are for PostgreSQL; database_url is sqlite"),
    ({"database_url": PG + "?sslmode=disable", "database": {"sslmode": "verify-full", "sslrootcert": "/ca.pem"}},
     "database.sslmode", "set it in one place"),
    ({"analytics": {"broker_url": AMQPS, "broker_ssl_cert": "/r.pem", "broker_ssl_ca": "/ca.pem"}},
     "analytics.broker_ssl_key", "go together"),
    ({"analytics": {"broker_url": AMQPS, "broker_ssl_cert": "/r.pem", "broker_ssl_key": "/r.key"}},
     "analytics.broker_ssl_ca", "needs the CA"),
    ({"analytics": {"broker_url": "redis://127.0.0.1:6379/0", "broker_ssl_ca": "/ca.pem"}},
     "analytics.broker_ssl_ca", "broker_url is redis"),
    ({"analytics": {"broker_ssl_ca": "/ca.pem"}}, "analytics.broker_ssl_ca", "broker_url is unset"),
])
def test_a_bad_tls_setting_names_its_key(raw: dict[str, object], key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as err:
        config.build(raw)
    assert err.value.key == key
    assert reason in err.value.reason


def test_the_files_are_read_at_start_up(certs: Path, tmp_path: Path) -> None:
    good = router_db(certs)
    cfg = config.load(overrides={"database_url": PG, "database": good}, env={})
    assert cfg.database.sslcert == good["sslcert"]

    def refused(**section: str) -> ConfigError:
        with pytest.raises(ConfigError) as err:
            config.load(overrides={"database_url": PG, "database": {**good, **section}}, env={})
        return err.value

    assert refused(sslrootcert=str(tmp_path / "nope.pem")).key == "database.sslrootcert"
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    err = refused(sslcert=str(garbage))
    assert (err.key, "not a PEM certificate" in err.reason) == ("database.sslcert", True)
    err = refused(sslkey=str(certs / "central.key"))  # another certificate's key
    assert (err.key, "not the key of the certificate" in err.reason) == ("database.sslkey", True)
    loose = tmp_path / "loose.key"
    loose.write_bytes((certs / "keliu_router_s1.key").read_bytes())
    os.chmod(loose, 0o644)
    err = refused(sslkey=str(loose))
    assert (err.key, "chmod 600" in err.reason) == ("database.sslkey", True)
    with pytest.raises(ConfigError) as broker_err:
        config.load(overrides={"analytics": {"broker_url": AMQPS, "broker_ssl_ca": str(tmp_path / "x.pem")}}, env={})
    assert broker_err.value.key == "analytics.broker_ssl_ca"


def test_broker_settings_become_celerys_broker_use_ssl(certs: Path) -> None:
    from analytics.celery_app import make_celery

    section = {"broker_url": AMQPS, "broker_ssl_ca": str(certs / "ca.pem"),
               "broker_ssl_cert": str(certs / "keliu_router_s1.pem"), "broker_ssl_key": str(certs / "keliu_router_s1.key")}
    cfg = config.build({"analytics": section})
    expected = {"ca_certs": section["broker_ssl_ca"], "certfile": section["broker_ssl_cert"],
                "keyfile": section["broker_ssl_key"], "cert_reqs": ssl.CERT_REQUIRED, "server_hostname": None}
    app = make_celery(cfg)
    assert app.conf.broker_use_ssl == expected
    # and kombu's connection carries them (the TLS handshake itself is tested against a real broker)
    with app.connection_for_write() as conn:
        assert conn.ssl == expected
    assert make_celery(config.build({"analytics": {"broker_url": AMQPS}})).conf.broker_use_ssl is False
    assert tls.broker_use_ssl(None, None, None) is None


def test_the_sensor_sink_publishes_with_the_same_settings(certs: Path) -> None:
    from sensor.sinks import CelerySink

    opts = tls.broker_use_ssl(str(certs / "ca.pem"), str(certs / "keliu_router_s1.pem"),
                              str(certs / "keliu_router_s1.key"))
    sink = CelerySink(AMQPS, "keliu_router_s1", ssl=opts)
    with sink.app.connection_for_write() as conn:
        assert conn.ssl == opts
    assert CelerySink(AMQPS).app.conf.broker_use_ssl is False
