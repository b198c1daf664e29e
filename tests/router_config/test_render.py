"""Policy in, text out: golden files for the table, dnsmasq and hostapd; exact Gate scripts (pure).

Regenerate the golden files after an intended change with ``KELIU_UPDATE_GOLDEN=1`` and review the diff.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from router_config import render
from router_config.config import RouterConfig
from router_config.model import Policy

GOLDEN = Path(__file__).parent / "golden"

POLICIES = {
    # the NAT log's port blocks have their own policy (below): a /22's thousand rules would drown these files
    "default": Policy(RouterConfig(nat_log="none")),
    "full": Policy(
        RouterConfig(
            walled_garden_domains=["pay.example.com", "cdn.example.cn"],
            walled_garden_cidrs=["198.51.100.0/28", "192.0.2.7/32"],
            trusted_macs=["02:00:00:00:00:aa", "02:00:00:00:00:bb"],
            rate_up_kbit=2000,
            rate_down_kbit=8000,
            ipv6="handle",
            ssid="星巴克免费WiFi",
            staff_ssid="员工",
            staff_passphrase="correct horse battery",
            hw_mode="a",
            channel=36,
            nat_log="none",
        ),
        portal_port=9080,
        portal_https_port=9443,
        portal_captive_port=9081,
        api_url="https://portal.mall.lan:9443/api/captive",
    ),
    # deterministic NAT (RFC 7422) on a /28: 4,032 ports per address
    "portblock": Policy(RouterConfig(lan_cidr="10.77.0.0/28", portal_ip="10.77.0.1", dhcp_start="10.77.0.2",
                                     dhcp_end="10.77.0.5")),
}

RENDERERS: dict[str, Callable[[Policy], str]] = {
    "nft": render.nftables,
    "apply.nft": render.apply_script,
    "dnsmasq.conf": render.dnsmasq,
    "hostapd.conf": render.hostapd,
}


@pytest.mark.parametrize("name", sorted(POLICIES))
@pytest.mark.parametrize("kind", sorted(RENDERERS))
def test_golden(name: str, kind: str) -> None:
    text = RENDERERS[kind](POLICIES[name])
    path = GOLDEN / f"{name}.{kind}"
    if os.environ.get("KELIU_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def test_the_table_never_flushes_the_ruleset_and_names_only_itself() -> None:
    for p in POLICIES.values():
        script = render.apply_script(p)
        assert "flush ruleset" not in script
        tables = {" ".join(line.split()[1:3]) for line in script.splitlines() if line.startswith("table ")}
        assert tables == {"inet keliu"}


def test_apply_keeps_the_client_sets_and_refills_the_static_ones() -> None:
    flushed = {line.split()[-1] for line in render.apply_script(POLICIES["full"]).splitlines()
               if line.startswith("flush set")}
    assert flushed == {"trusted", "garden"}


def test_hostapd_ssid_is_the_utf8_bytes() -> None:
    text = render.hostapd(POLICIES["full"])
    assert "ssid2=" + "星巴克免费WiFi".encode().hex() in text.splitlines()
    assert "utf8_ssid=1" in text.splitlines()


def test_ipv6_block_rejects_guests_ipv6_and_handle_admits_logged_in_macs() -> None:
    block, handle = render.nftables(POLICIES["default"]), render.nftables(POLICIES["full"])
    assert "meta nfproto ipv6 reject with icmpx type admin-prohibited" in block
    assert "allowed6" not in block
    assert "meta nfproto ipv6 ether saddr @allowed6 accept" in handle
    assert "meta nfproto ipv6 reject" not in handle


def test_the_lan_is_masqueraded_behind_the_wan_and_only_there() -> None:
    chains = {c.name: c for c in render.nft_chains(POLICIES["default"])}
    assert chains["postrouting"].hook == "type nat hook postrouting priority srcnat; policy accept;"
    assert chains["postrouting"].rules == ('oifname "eth0" ip saddr 10.77.0.0/22 masquerade',)
    other = Policy(RouterConfig(wan_iface="ppp0", lan_cidr="192.168.8.0/24", portal_ip="192.168.8.1",
                                dhcp_start="192.168.8.10", dhcp_end="192.168.8.200", nat_log="none"))
    text = render.nftables(other)
    assert '\t\toifname "ppp0" ip saddr 192.168.8.0/24 masquerade' in text.splitlines()
    assert text.count("masquerade") == 1
    # with the NAT log's port blocks (the default) the generic rule stays, for what no block covers
    blocks = render.nftables(Policy(RouterConfig(wan_iface="ppp0", lan_cidr="192.168.8.0/24", portal_ip="192.168.8.1",
                                                 dhcp_start="192.168.8.10", dhcp_end="192.168.8.200")))
    assert '\t\toifname "ppp0" ip saddr 192.168.8.0/24 masquerade' in blocks.splitlines()
    assert "masquerade to :" in blocks
    # IPv6 in "handle" mode is routed, never NATed: the one rule matches IPv4 sources only ("ip saddr")
    assert [r for c in render.nft_chains(POLICIES["full"]) for r in c.rules if "masquerade" in r] == [
        'oifname "eth0" ip saddr 10.77.0.0/22 masquerade']
    # apply declares the chain with its hook and flushes it, so an older table gains it on the next apply
    script = render.apply_script(POLICIES["default"]).splitlines()
    assert "flush chain inet keliu postrouting" in script


# -- Gate commands -> nft text

P = POLICIES["default"]
P6 = POLICIES["full"]
MAC, IP = "02:00:00:00:00:01", "10.77.0.20"


def test_allow_forgets_old_elements_then_adds_with_the_seconds_left() -> None:
    assert render.allow_script(P, "02-00-00-00-00-01", IP, until=1600.2, now=1000.0) == (
        "add element inet keliu allowed { 02:00:00:00:00:01 . 10.77.0.20 }\n"
        "delete element inet keliu allowed { 02:00:00:00:00:01 . 10.77.0.20 }\n"
        "add element inet keliu allowed_down { 10.77.0.20 }\n"
        "delete element inet keliu allowed_down { 10.77.0.20 }\n"
        "add element inet keliu released { 02:00:00:00:00:01 . 10.77.0.20 }\n"
        "delete element inet keliu released { 02:00:00:00:00:01 . 10.77.0.20 }\n"
        "add element inet keliu allowed { 02:00:00:00:00:01 . 10.77.0.20 timeout 601s }\n"
        "add element inet keliu allowed_down { 10.77.0.20 timeout 601s }\n"
    )


def test_allow_after_a_new_dhcp_address_drops_the_old_one() -> None:
    script = render.allow_script(P, MAC, IP, until=2000, now=1000, previous_ip="10.77.0.99")
    assert "delete element inet keliu allowed { 02:00:00:00:00:01 . 10.77.0.99 }" in script.splitlines()
    assert "delete element inet keliu allowed_down { 10.77.0.99 }" in script.splitlines()


def test_allow_in_ipv6_handle_mode_adds_the_mac() -> None:
    lines = render.allow_script(P6, MAC, IP, until=1010, now=1000).splitlines()
    assert lines[-2:] == ["delete element inet keliu allowed6 { 02:00:00:00:00:01 }",
                          "add element inet keliu allowed6 { 02:00:00:00:00:01 timeout 10s }"]


def test_allow_that_already_expired_is_a_revoke() -> None:
    assert render.allow_script(P, MAC, IP, until=999, now=1000) == render.revoke_script(P, MAC, IP)


def test_revoke() -> None:
    assert render.revoke_script(P6, MAC, IP) == (
        "add element inet keliu allowed { 02:00:00:00:00:01 . 10.77.0.20 }\n"
        "delete element inet keliu allowed { 02:00:00:00:00:01 . 10.77.0.20 }\n"
        "add element inet keliu allowed_down { 10.77.0.20 }\n"
        "delete element inet keliu allowed_down { 10.77.0.20 }\n"
        "add element inet keliu released { 02:00:00:00:00:01 . 10.77.0.20 }\n"
        "delete element inet keliu released { 02:00:00:00:00:01 . 10.77.0.20 }\n"
        "add element inet keliu allowed6 { 02:00:00:00:00:01 }\n"
        "delete element inet keliu allowed6 { 02:00:00:00:00:01 }\n"
    )
    assert render.revoke_script(P, MAC, None) == ""


@pytest.mark.parametrize(
    ("until", "expected_last"),
    [(1060.0, "add element inet keliu released { 02:00:00:00:00:01 . 10.77.0.20 timeout 60s }"),
     (1000.0, "delete element inet keliu released { 02:00:00:00:00:01 . 10.77.0.20 }")],
)
def test_release(until: float, expected_last: str) -> None:
    assert render.release_script(P, MAC, IP, until, now=1000.0).splitlines()[-1] == expected_last


def test_reconcile_is_exactly_the_unexpired_sessions() -> None:
    sessions = [
        ("02:00:00:00:00:01", "10.77.0.20", 1600.0),
        ("02:00:00:00:00:02", "10.77.0.21", 900.0),  # expired: left out
        ("02:00:00:00:00:03", "10.77.0.22", 1000.5),
    ]
    assert render.reconcile_script(P6, sessions, now=1000.0) == (
        "flush set inet keliu allowed\n"
        "flush set inet keliu allowed_down\n"
        "flush set inet keliu released\n"
        "flush set inet keliu allowed6\n"
        "add element inet keliu allowed { 02:00:00:00:00:01 . 10.77.0.20 timeout 600s, "
        "02:00:00:00:00:03 . 10.77.0.22 timeout 1s }\n"
        "add element inet keliu allowed_down { 10.77.0.20 timeout 600s, 10.77.0.22 timeout 1s }\n"
        "add element inet keliu allowed6 { 02:00:00:00:00:01 timeout 600s, 02:00:00:00:00:03 timeout 1s }\n"
    )


def test_reconcile_with_nobody_only_flushes() -> None:
    assert render.reconcile_script(P, [], now=0.0) == (
        "flush set inet keliu allowed\nflush set inet keliu allowed_down\nflush set inet keliu released\n"
    )


def test_apply_deletes_chains_and_sets_the_policy_no_longer_has() -> None:
    script = render.apply_script(P, existing_chains=["forward", "client_down"], existing_sets=["allowed", "rate_down"])
    tail = script.split("table inet keliu {")[1].split("}\n", 1)[1].split("table inet keliu {")[0]
    assert [line for line in tail.splitlines() if "client_down" in line or "rate_down" in line] == [
        "flush chain inet keliu client_down",
        "delete chain inet keliu client_down",
        "delete set inet keliu rate_down",
    ]
    assert render.apply_script(P, ["forward"], ["allowed"]) == render.apply_script(P)
