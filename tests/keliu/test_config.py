from __future__ import annotations

from pathlib import Path

import pytest

from keliu import config
from keliu.errors import ConfigError


def test_defaults_validate() -> None:
    cfg = config.build({})
    assert cfg.database_url == "sqlite:///var/keliu.db"
    assert cfg.portal.port == 8080
    assert cfg.sensor.privacy == "strict"
    assert [s.id for s in cfg.stores] == ["demo-store"]


def test_example_file_is_valid() -> None:
    import tomllib

    raw = tomllib.loads((Path(__file__).parents[2] / "docs" / "keliu.example.toml").read_text())
    cfg = config.build(raw)
    assert cfg.router.lan_cidr == "10.77.0.0/22"


@pytest.mark.parametrize(
    ("raw", "env", "key", "reason"),
    [
        ({"bogus": 1}, {}, "bogus", "unknown key"),
        ({"portal": {"prot": 80}}, {}, "portal.prot", "unknown key"),
        ({"portal": {"port": "eighty"}}, {}, "portal.port", "expected an integer, got 'eighty'"),
        ({}, {"KELIU_PORTAL_PORT": "eighty"}, "portal.port", "expected an integer, got 'eighty'"),
        ({"portal": {"port": 70000}}, {}, "portal.port", "port out of range 1-65535: 70000"),
        ({"router": {"trusted_macs": ["00:11:22:33:44"]}}, {}, "router.trusted_macs", "not a MAC address"),
        ({"router": {"lan_cidr": "10.0.0.0/33"}}, {}, "router.lan_cidr", "not a CIDR network"),
        ({"router": {"walled_garden_cidrs": ["1.2.3"]}}, {}, "router.walled_garden_cidrs", "not a CIDR network"),
        ({"sensor": {"privacy": "none"}}, {}, "sensor.privacy", "expected one of 'strict', 'linked'"),
        ({}, {"KELIU_DATABASE_URL": "not a url"}, "database_url", "not an SQLAlchemy URL"),
        ({"stores": [{"id": "s1", "mall": "nowhere"}]}, {}, "stores", "unknown mall 'nowhere'"),
        ({"sms": {"backend": "tencent"}}, {}, "sms", "tencent_secret_id: required"),
        ({"analytics": {"raw_retention_days": 1}}, {}, "analytics.raw_retention_days", "at least 2 days, not 1"),
        ({"sms": {"backend": "aliyun"}}, {}, "sms", "aliyun_access_key_id: required"),
        ({"sms": {"backend": "aliyun", "aliyun_access_key_id": "LTAI1"}}, {"KELIU_SMS_ALIYUN_SIGN_NAME": "客流"}, "sms",
         "aliyun_access_key_secret: required when backend = 'aliyun'"),
    ],
)
def test_bad_values_name_key_and_reason(raw: dict, env: dict, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        config.build(raw, env)
    assert info.value.key == key
    assert reason in info.value.reason


def test_env_overrides_file_and_parses_types() -> None:
    cfg = config.build(
        {"portal": {"port": 9000}},
        {"KELIU_PORTAL_PORT": "9001", "KELIU_DATABASE_URL": "postgresql+psycopg://u@h/db",
         "KELIU_ROUTER_TRUSTED_MACS": "AA-BB-CC-DD-EE-FF, 00:11:22:33:44:55", "KELIU_WECHAT_ENABLED": "true"},
    )
    assert cfg.portal.port == 9001
    assert cfg.database_url == "postgresql+psycopg://u@h/db"
    assert cfg.router.trusted_macs == ["aa:bb:cc:dd:ee:ff", "00:11:22:33:44:55"]
    assert cfg.wechat.enabled is True


def test_load_reads_keliu_config_file(tmp_path: Path) -> None:
    path = tmp_path / "k.toml"
    path.write_text('[portal]\nport = 8181\n', encoding="utf-8")
    cfg = config.load(env={"KELIU_CONFIG": str(path)})
    assert cfg.portal.port == 8181
    with pytest.raises(ConfigError, match="no such file"):
        config.load(env={"KELIU_CONFIG": str(tmp_path / "missing.toml")})
    path.write_text("[portal\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(env={"KELIU_CONFIG": str(path)})


def test_redacted_hides_secrets_but_keeps_ids() -> None:
    cfg = config.build({"sms": {"backend": "tencent", "tencent_secret_id": "AKID1", "tencent_secret_key": "s3cr3t",
                                "tencent_sdk_app_id": "1400", "tencent_template_id": "7"},
                        "portal": {"admin_password": "hunter2"}})
    import dataclasses

    out = config.redacted(dataclasses.asdict(cfg))
    assert out["sms"]["tencent_secret_key"] == "***"
    assert out["portal"]["admin_password"] == "***"
    assert out["sms"]["tencent_secret_id"] == "AKID1"
    assert "s3cr3t" not in repr(out) and "hunter2" not in repr(out)
