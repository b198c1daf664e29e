"""Deterministic NAT's port blocks (RFC 7422), pure: the mapping and the rules rendered from it."""
from __future__ import annotations

import itertools

import pytest

from keliu.config import build
from keliu.errors import ConfigError
from router_config import portblock, render
from router_config.config import RouterConfig
from router_config.model import Policy


@pytest.mark.parametrize(("cidr", "ip", "expected"), [
    ("10.77.0.0/22", "10.77.0.0", (1024, 1086)),
    ("10.77.0.0/22", "10.77.0.10", (1654, 1716)),
    ("10.77.0.0/22", "10.77.3.255", (65473, 65535)),
    ("10.77.0.0/24", "10.77.0.2", (1528, 1779)),
    ("10.77.0.0/22", "10.78.0.1", None),
    ("10.77.0.0/22", "2001:db8::1", None),
    ("10.77.0.0/22", "not-an-ip", None),
])
def test_block(cidr: str, ip: str, expected: tuple[int, int] | None) -> None:
    assert portblock.block(cidr, ip) == expected


def test_blocks_tile_the_port_space_without_overlap() -> None:
    got = portblock.blocks("10.77.0.0/22", "10.77.0.0", "10.77.3.255")
    assert len(got) == 1024 and got[0][1] == 1024 and got[-1][2] == 65535
    assert all(a[2] + 1 == b[1] for a, b in itertools.pairwise(got))


def test_rules_are_one_per_dhcp_address_in_their_own_chain_before_srcnat() -> None:
    cfg = RouterConfig(lan_cidr="10.77.0.0/24", portal_ip="10.77.0.1", dhcp_start="10.77.0.2",
                       dhcp_end="10.77.0.3")
    (chain,) = render.nat_block_chains(Policy(cfg))
    assert chain.hook == "type nat hook postrouting priority srcnat - 10; policy accept;"
    assert chain.rules == ('oifname != "eth0" return',
                           "ip saddr 10.77.0.2 meta l4proto { tcp, udp } masquerade to :1528-1779",
                           "ip saddr 10.77.0.3 meta l4proto { tcp, udp } masquerade to :1780-2031",
                           "ip saddr 10.77.0.0/24 masquerade")
    assert render.nat_block_chains(Policy(RouterConfig(nat_log="none"))) == []


def test_a_lan_too_large_for_port_blocks_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as exc:
        build({"router": {"lan_cidr": "10.77.0.0/19", "portal_ip": "10.77.0.1", "dhcp_start": "10.77.0.10",
                          "dhcp_end": "10.77.3.250"}})
    assert "nat_log" in str(exc.value)
    build({"router": {"lan_cidr": "10.77.0.0/19", "portal_ip": "10.77.0.1", "dhcp_start": "10.77.0.10",
                      "dhcp_end": "10.77.3.250", "nat_log": "conntrack"}})
