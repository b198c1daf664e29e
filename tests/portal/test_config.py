"""portal.config: validated once, errors name the key."""
from __future__ import annotations

import pytest

from keliu import config
from keliu.errors import ConfigError


@pytest.mark.parametrize(("env", "key"), [
    ({"KELIU_PORTAL_PORT": "0"}, "portal.port"),
    ({"KELIU_PORTAL_HTTPS_PORT": "70000"}, "portal.https_port"),
    ({"KELIU_PORTAL_HOST": "portal.lan"}, "portal.host"),
    ({"KELIU_PORTAL_PUBLIC_URL": "portal.lan"}, "portal"),
    ({"KELIU_PORTAL_HTTPS_CERT": "/etc/x.pem"}, "portal"),
    ({"KELIU_PORTAL_GATE": "iptables"}, "portal.gate"),
    ({"KELIU_SMS_BACKEND": "tencent"}, "sms"),
    ({"KELIU_SMS_MAX_TRIES": "-1"}, "sms.max_tries"),
    ({"KELIU_SMS_PHONE_DAILY_CAP": "0"}, "sms.phone_daily_cap"),
])
def test_bad_values_name_the_key(env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        config.load(env=env)
    assert err.value.key == key


def test_defaults() -> None:
    cfg = config.load(env={})
    assert (cfg.portal.host, cfg.portal.port, cfg.portal.session_minutes, cfg.portal.reauth_days) == (
        "127.0.0.1", 8080, 1440, 7)
    assert (cfg.sms.backend, cfg.sms.code_ttl_s, cfg.sms.max_tries, cfg.sms.resend_s) == ("console", 300, 5, 60)
    assert (cfg.sms.daily_cap, cfg.sms.phone_daily_cap) == (10, 50)


@pytest.mark.parametrize(("daily", "phone"), [(10, 20), (10, 5), (3, 6)])
def test_a_numbers_cap_two_devices_reach_is_refused(daily: int, phone: int) -> None:
    with pytest.raises(ConfigError) as err:
        config.load(env={"KELIU_SMS_DAILY_CAP": str(daily), "KELIU_SMS_PHONE_DAILY_CAP": str(phone)})
    assert err.value.key == "sms" and "phone_daily_cap" in str(err.value)
