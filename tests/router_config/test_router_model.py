"""RouterConfig and Policy validation: a bad value names its key (pure)."""
from __future__ import annotations

from typing import Any

import pytest

from keliu.config import build
from keliu.errors import ConfigError
from router_config.config import RouterConfig
from router_config.errors import PolicyError
from router_config.model import Policy, client_key, policy_from


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"lan_cidr": "10.0.0.0/33"}, "router.lan_cidr"),
        ({"lan_cidr": "2001:db8::/64"}, "router"),
        ({"portal_ip": "10.99.0.1"}, "router"),
        ({"dhcp_start": "10.77.3.0", "dhcp_end": "10.77.1.0"}, "router"),
        ({"dhcp_start": "10.77.0.1"}, "router"),
        ({"lan_iface": "a-very-long-interface-name"}, "router.lan_iface"),
        ({"wan_iface": "br-lan"}, "router"),
        ({"walled_garden_domains": ["bad domain"]}, "router.walled_garden_domains"),
        # a newline inside a name would start a new line of the rendered dnsmasq, hostapd or nft file
        ({"walled_garden_domains": ["pay\n.example.com"]}, "router.walled_garden_domains"),
        ({"lan_iface": "br-lan\n"}, "router.lan_iface"),
        ({"walled_garden_cidrs": ["2001:db8::/32"]}, "router"),
        ({"trusted_macs": ["not-a-mac"]}, "router.trusted_macs"),
        ({"ssid": "x" * 33}, "router"),
        ({"ssid": "免费免费免费免费免费免费"}, "router"),  # 12 characters, 36 bytes of UTF-8
        ({"staff_ssid": "staff"}, "router"),
        ({"staff_ssid": "staff", "staff_passphrase": "short"}, "router"),
        ({"channel": 40}, "router"),
        ({"hw_mode": "a", "channel": 6}, "router"),
        ({"country": "cn"}, "router"),
        ({"rate_up_kbit": 0}, "router.rate_up_kbit"),
        ({"ipv6": "maybe"}, "router.ipv6"),
    ],
)
def test_bad_router_values_name_their_key(raw: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        build({"router": raw})
    assert err.value.key == key


def test_values_are_normalised() -> None:
    cfg = build({"router": {"trusted_macs": ["AA-BB-CC-DD-EE-FF"], "walled_garden_domains": ["Pay.Example.COM."]}})
    assert cfg.router.trusted_macs == ["aa:bb:cc:dd:ee:ff"]
    assert cfg.router.walled_garden_domains == ["pay.example.com"]


def test_environment_overrides_router_keys() -> None:
    cfg = build({}, env={"KELIU_ROUTER_IPV6": "handle", "KELIU_ROUTER_RATE_DOWN_KBIT": "4000"})
    assert (cfg.router.ipv6, cfg.router.rate_down_kbit) == ("handle", 4000)


@pytest.mark.parametrize(
    ("kw", "key"),
    [
        ({"api_url": "http://portal.keliu.lan/api"}, "api_url"),
        ({"api_url": 'https://x/"; rm -rf /'}, "api_url"),
        ({"portal_port": 0}, "portal_port"),
        ({"portal_https_port": 70000}, "portal_https_port"),
        ({"portal_captive_port": 0}, "portal_captive_port"),
    ],
)
def test_bad_policy_values_name_their_key(kw: dict[str, Any], key: str) -> None:
    with pytest.raises(PolicyError) as err:
        Policy(RouterConfig(), **kw)
    assert err.value.key == key


def test_policy_takes_the_portals_ports_and_api_url() -> None:
    cfg = build({"portal": {"port": 9080, "https_port": 9443, "api_url": "https://p.lan:9443/api/captive"}})
    p = policy_from(cfg.router, cfg.portal)
    assert (p.portal_port, p.portal_https_port, p.api_url) == (9080, 9443, "https://p.lan:9443/api/captive")
    assert p.captive_port == 8081  # the portal's captive front, on by default


def test_captive_http_goes_to_the_front_and_the_portals_own_address_to_gunicorn() -> None:
    from router_config import render

    front = policy_from(build({}).router, build({"portal": {"captive_port": 9081}}).portal)
    rules = render.nftables(front)
    assert "ip daddr 10.77.0.1 tcp dport 80 dnat ip to 10.77.0.1:8080" in rules
    assert rules.rstrip().count("tcp dport 80 dnat ip to 10.77.0.1:9081") == 1
    assert "tcp dport { 53, 8080, 8081, 8443 }" not in rules and "tcp dport { 53, 8080, 8443, 9081 } accept" in rules
    off = policy_from(build({}).router, build({"portal": {"captive_port": 0}}).portal)
    assert off.portal_captive_port is None and off.captive_port == 8080
    assert "9081" not in render.nftables(off) and "dnat ip to 10.77.0.1:8081" not in render.nftables(off)


@pytest.mark.parametrize(
    ("mac", "ip"),
    [("02:00:00:00:00:01 } ; flush ruleset", "10.77.0.5"), ("02:00:00:00:00:01", "10.77.0.5 }"), ("", "")],
)
def test_client_values_cannot_smuggle_nft_text(mac: str, ip: str) -> None:
    with pytest.raises(PolicyError):
        client_key(mac, ip)
