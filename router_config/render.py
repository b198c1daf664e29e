"""Policy in, configuration text out: the ``inet keliu`` nftables table, dnsmasq and hostapd files (pure).

Nothing here runs ``nft``, reads the clock or the environment. The Gate's commands are translated here too
(``allow_script`` and friends take ``now`` as an argument), so that the exact text sent to the kernel is
tested with ``==``.

The table is ours alone: it coexists with the router's own firewall (OpenWrt fw4, Debian's nftables.conf), and
:func:`apply_script` replaces our chains and static sets in one transaction without ever flushing the ruleset or
touching the client sets that the Gate fills.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import netaddr

from router_config import model as m
from router_config import portblock
from router_config.model import Policy


@dataclass(frozen=True)
class NftSet:
    name: str
    decl: tuple[str, ...]
    elements: tuple[str, ...] = ()
    #: static sets are re-filled from the policy on apply; the others belong to the Gate or to dnsmasq
    static: bool = False
    comment: str = ""


@dataclass(frozen=True)
class NftChain:
    name: str
    rules: tuple[str, ...]
    #: "type filter hook forward priority filter; policy accept;" for a base chain, "" for a regular one
    hook: str = ""
    comment: str = ""


def _rate(kbit: int) -> str:
    per_s = kbit * 125  # kbit/s -> bytes/s
    return f"limit rate over {per_s} bytes/second burst {per_s} bytes"


def nft_sets(p: Policy) -> list[NftSet]:
    r = p.router
    garden_dns_s = r.garden_dns_minutes * 60
    sets = [
        NftSet(m.ALLOWED, ("type ether_addr . ipv4_addr", "flags timeout", "counter"),
               comment="logged-in phones (MAC . IPv4); timeout = end of session; counter = bytes up"),
        NftSet(m.ALLOWED_DOWN, ("type ipv4_addr", "flags timeout", "counter"),
               comment="the same phones by IPv4, only to count bytes down"),
        NftSet(m.RELEASED, ("type ether_addr . ipv4_addr", "flags timeout"),
               comment="released for a minute to the release hosts (WeChat hand-off); only the server adds"),
        NftSet(m.TRUSTED, ("type ether_addr",), tuple(sorted(r.trusted_macs)), static=True,
               comment="staff devices that bypass the portal"),
        NftSet(m.GARDEN, ("type ipv4_addr", "flags interval"), tuple(r.walled_garden_cidrs), static=True,
               comment="walled garden: fixed networks"),
        NftSet(m.GARDEN_DNS, ("type ipv4_addr", "flags timeout", f"timeout {garden_dns_s}s"),
               comment="walled garden: addresses dnsmasq resolved for the garden's names"),
        NftSet(m.RELEASE_DNS, ("type ipv4_addr", "flags timeout", f"timeout {garden_dns_s}s"),
               comment="release hosts: addresses dnsmasq resolved for their names"),
    ]
    if p.ipv6:
        sets.insert(2, NftSet(m.ALLOWED6, ("type ether_addr", "flags timeout"),
                              comment="logged-in phones by MAC, for IPv6"))
    if r.rate_up_kbit is not None:
        sets.append(NftSet(m.RATE_UP, ("type ipv4_addr", "size 65535", "flags dynamic,timeout", "timeout 1m"),
                           comment="per-client upload policers"))
    if r.rate_down_kbit is not None:
        sets.append(NftSet(m.RATE_DOWN, ("type ipv4_addr", "size 65535", "flags dynamic,timeout", "timeout 1m"),
                           comment="per-client download policers"))
    return sets


def nft_chains(p: Policy) -> list[NftChain]:
    r = p.router
    lan, portal = f'"{r.lan_iface}"', r.portal_ip
    to_portal = f"dnat ip to {portal}:{p.portal_port}"
    to_front = f"dnat ip to {portal}:{p.captive_port}"
    prerouting = (
        f"iifname != {lan} return",
        f"ip daddr {portal} tcp dport 80 {to_portal}",
        f"ether saddr @{m.TRUSTED} return",
        f"ether saddr . ip saddr @{m.ALLOWED} return",
        f"ip daddr @{m.GARDEN} return",
        f"ip daddr @{m.GARDEN_DNS} return",
        f"ether saddr . ip saddr @{m.RELEASED} ip daddr @{m.RELEASE_DNS} return",
        f"tcp dport 80 {to_front}",
    )
    inp = (
        f"iifname != {lan} return",
        "ct state established,related accept",
        "udp dport { 53, 67, 547 } accept" if p.ipv6 else "udp dport { 53, 67 } accept",
        f"tcp dport {{ 53, {', '.join(str(x) for x in sorted({p.portal_port, p.portal_https_port, p.captive_port}))} }} accept",
        "meta l4proto { icmp, ipv6-icmp } accept",
        f"ether saddr @{m.TRUSTED} accept",
        "reject",
    )
    up = ["accept"] if r.rate_up_kbit is None else [
        f"update @{m.RATE_UP} {{ ip saddr {_rate(r.rate_up_kbit)} }} drop", "accept"]
    from_lan = [
        f"ether saddr @{m.TRUSTED} accept",
        f"ether saddr . ip saddr @{m.ALLOWED} jump client_up",
    ]
    if p.ipv6:
        from_lan.append(f"meta nfproto ipv6 ether saddr @{m.ALLOWED6} accept")
    from_lan += [
        # "block": no IPv6 past the router for guests; "handle": only a logged-in MAC's (above)
        # (rejected rather than dropped, so that a phone's happy eyeballs fall back to IPv4 at once)
        *(() if p.ipv6 else ("meta nfproto ipv6 reject with icmpx type admin-prohibited",)),
        f"ip daddr @{m.GARDEN} accept",
        f"ip daddr @{m.GARDEN_DNS} accept",
        f"ether saddr . ip saddr @{m.RELEASED} ip daddr @{m.RELEASE_DNS} accept",
        "meta l4proto tcp reject with tcp reset",
        "udp dport 443 drop",
        "drop",
    ]
    down: list[str] = []
    if r.rate_down_kbit is not None:
        down.append(f"update @{m.RATE_DOWN} {{ ip daddr {_rate(r.rate_down_kbit)} }} drop")
    to_lan = (
        f"ip daddr @{m.ALLOWED_DOWN} jump client_down" if down else f"ip daddr @{m.ALLOWED_DOWN}",
        "ct state established,related accept",
        # a server still talking on a connection the Gate cut (its conntrack entry is gone) is told at once
        "meta l4proto tcp reject with tcp reset",
        "drop",
    )
    # the guests' private addresses leave by the router's WAN address (IPv4 only: IPv6 in "handle" mode is routed)
    lan_net = netaddr.IPNetwork(r.lan_cidr).cidr
    postrouting = (f'oifname "{r.wan_iface}" ip saddr {lan_net} masquerade',)
    chains = [
        NftChain("prerouting", prerouting, "type nat hook prerouting priority dstnat; policy accept;",
                 "before login, HTTP goes to the portal"),
        NftChain("postrouting", postrouting, "type nat hook postrouting priority srcnat; policy accept;",
                 "NAT: the LAN leaves by the WAN address"),
        NftChain("input", inp, "type filter hook input priority filter; policy accept;",
                 "what a phone may ask of the router itself"),
        NftChain("forward", (f"iifname {lan} jump from_lan", f"oifname {lan} jump to_lan"),
                 "type filter hook forward priority filter; policy accept;"),
        NftChain("from_lan", tuple(from_lan), comment="phone -> internet"),
        NftChain("client_up", tuple(up), comment="a logged-in phone's packet (its element counted it)"),
        NftChain("to_lan", to_lan, comment="internet -> phone: only answers; the set lookup counts bytes down"),
    ]
    if down:
        chains.append(NftChain("client_down", tuple(down), comment="download policer"))
    chains += nat_block_chains(p)
    return chains


def nat_block_chains(p: Policy) -> list[NftChain]:
    """Deterministic NAT (RFC 7422, :mod:`router_config.portblock`): every DHCP address leaves through the WAN
    with its own fixed block of source ports. A base chain of its own, before the ``srcnat`` priority: the first
    NAT chain whose rule matches a new connection decides its translation, so a generic masquerade elsewhere
    (ours or the router's) only sees what no block covers."""
    r = p.router
    if r.nat_log != "portblock":
        return []
    rules = [f'oifname != "{r.wan_iface}" return']
    rules += [f"ip saddr {ip} meta l4proto {{ tcp, udp }} masquerade to :{lo}-{hi}"
              for ip, lo, hi in portblock.blocks(r.lan_cidr, r.dhcp_start, r.dhcp_end)]
    # what has no ports (ICMP) leaves from the WAN's address too
    rules.append(f"ip saddr {r.lan_cidr} masquerade")
    return [NftChain("nat_blocks", tuple(rules), "type nat hook postrouting priority srcnat - 10; policy accept;",
                     "NAT log: each LAN address's fixed block of source ports (RFC 7422)")]


def _set_text(s: NftSet, with_elements: bool) -> list[str]:
    out = [f"\t# {s.comment}"] if s.comment else []
    out.append(f"\tset {s.name} {{")
    out += [f"\t\t{d}" for d in s.decl]
    if with_elements and s.elements:
        out.append(f"\t\telements = {{ {', '.join(s.elements)} }}")
    out.append("\t}")
    return out


def _chain_text(c: NftChain, with_rules: bool) -> list[str]:
    out = [f"\t# {c.comment}"] if c.comment and with_rules else []
    out.append(f"\tchain {c.name} {{")
    if c.hook:
        out.append(f"\t\t{c.hook}")
    if with_rules:
        out += [f"\t\t{rule}" for rule in c.rules]
    out.append("\t}")
    return out


def nftables(p: Policy) -> str:
    """The whole ``inet keliu`` table as nft text (what ``nft list table inet keliu`` would show, annotated)."""
    lines = [f"table {m.FAMILY} {m.TABLE} {{"]
    for s in nft_sets(p):
        lines += _set_text(s, with_elements=True)
    for c in nft_chains(p):
        lines += _chain_text(c, with_rules=True)
    lines.append("}")
    return "\n".join(lines) + "\n"


def apply_script(p: Policy, existing_chains: Iterable[str] = (), existing_sets: Iterable[str] = ()) -> str:
    """One nft transaction that makes our table equal to the policy, idempotently, keeping the client sets.

    First every object is declared (a no-op when it exists), then our chains and static sets are flushed and
    the table is declared again with its rules and static elements. The client sets the Gate fills and the
    sets dnsmasq fills are never flushed, so re-applying keeps every logged-in phone online. Chains and sets of
    ``existing_*`` (what the kernel has now) that the policy no longer has (a rate limit switched off) are deleted
    after the flushes, when nothing refers to them any more.
    """
    t = f"{m.FAMILY} {m.TABLE}"
    sets, chains = nft_sets(p), nft_chains(p)
    lines = [f"table {t} {{"]
    for s in sets:
        lines += _set_text(s, with_elements=False)
    for c in chains:
        lines += _chain_text(c, with_rules=False)
    lines.append("}")
    lines += [f"flush chain {t} {c.name}" for c in chains]
    stale_chains = sorted(set(existing_chains) - {c.name for c in chains})
    lines += [f"flush chain {t} {name}" for name in stale_chains]
    lines += [f"delete chain {t} {name}" for name in stale_chains]
    lines += [f"delete set {t} {name}" for name in sorted(set(existing_sets) - {s.name for s in sets})]
    lines += [f"flush set {t} {s.name}" for s in sets if s.static]
    return "\n".join(lines) + "\n" + nftables(p)


# ---------------------------------------------------------------------------------------------------------------
# Gate commands -> nft text


def _timeout(until: float, now: float) -> int | None:
    """Whole seconds left (rounded up), or None when already expired."""
    left = until - now
    return math.ceil(left) if left > 0 else None


def _forget(t: str, name: str, elem: str) -> list[str]:
    # nft 1.0.6 has no "destroy": adding first makes the delete succeed whether or not the element exists.
    return [f"add element {t} {name} {{ {elem} }}", f"delete element {t} {name} {{ {elem} }}"]


def allow_script(p: Policy, mac: str, ip: str, until: float, now: float, previous_ip: str | None = None) -> str:
    """Let (mac, ip) out until ``until``: re-adding restarts the element's timeout (and its counters)."""
    mac, ip = m.client_key(mac, ip)
    secs = _timeout(until, now)
    if secs is None:
        return revoke_script(p, mac, ip if previous_ip is None else previous_ip)
    t = f"{m.FAMILY} {m.TABLE}"
    lines: list[str] = []
    for old in [ip] + ([previous_ip] if previous_ip not in (None, ip) else []):
        lines += _forget(t, m.ALLOWED, f"{mac} . {old}") + _forget(t, m.ALLOWED_DOWN, str(old))
    lines += _forget(t, m.RELEASED, f"{mac} . {ip}")
    lines += [f"add element {t} {m.ALLOWED} {{ {mac} . {ip} timeout {secs}s }}",
              f"add element {t} {m.ALLOWED_DOWN} {{ {ip} timeout {secs}s }}"]
    if p.ipv6:
        lines += _forget(t, m.ALLOWED6, mac) + [f"add element {t} {m.ALLOWED6} {{ {mac} timeout {secs}s }}"]
    return "\n".join(lines) + "\n"


def revoke_script(p: Policy, mac: str, ip: str | None) -> str:
    """Remove every element of ``mac`` (and of its IPv4 when known)."""
    mac = m.client_mac(mac)
    t = f"{m.FAMILY} {m.TABLE}"
    lines: list[str] = []
    if ip is not None:
        mac, ip = m.client_key(mac, ip)
        lines += _forget(t, m.ALLOWED, f"{mac} . {ip}") + _forget(t, m.ALLOWED_DOWN, ip)
        lines += _forget(t, m.RELEASED, f"{mac} . {ip}")
    if p.ipv6:
        lines += _forget(t, m.ALLOWED6, mac)
    return "\n".join(lines) + ("\n" if lines else "")


def release_script(p: Policy, mac: str, ip: str, until: float, now: float) -> str:
    mac, ip = m.client_key(mac, ip)
    secs = _timeout(until, now)
    t = f"{m.FAMILY} {m.TABLE}"
    lines = _forget(t, m.RELEASED, f"{mac} . {ip}")
    if secs is not None:
        lines.append(f"add element {t} {m.RELEASED} {{ {mac} . {ip} timeout {secs}s }}")
    return "\n".join(lines) + "\n"


def reconcile_script(p: Policy, allowed: Iterable[tuple[str, str, float]], now: float) -> str:
    """Make the client sets exactly ``allowed`` ((mac, ip, until) triples; expired ones are left out)."""
    t = f"{m.FAMILY} {m.TABLE}"
    names: Sequence[str] = (m.ALLOWED, m.ALLOWED_DOWN, m.RELEASED) + ((m.ALLOWED6,) if p.ipv6 else ())
    lines = [f"flush set {t} {name}" for name in names]
    pairs: dict[tuple[str, str], str] = {}
    ips: dict[str, str] = {}
    macs: dict[str, str] = {}
    for mac, ip, until in allowed:
        mac, ip = m.client_key(mac, ip)
        secs = _timeout(until, now)
        if secs is None:
            continue
        # a later session of the same client wins, as in the Gate
        pairs[(mac, ip)] = f"{mac} . {ip} timeout {secs}s"
        ips[ip] = f"{ip} timeout {secs}s"
        macs[mac] = f"{mac} timeout {secs}s"
    if pairs:
        lines.append(f"add element {t} {m.ALLOWED} {{ {', '.join(pairs.values())} }}")
        lines.append(f"add element {t} {m.ALLOWED_DOWN} {{ {', '.join(ips.values())} }}")
        if p.ipv6:
            lines.append(f"add element {t} {m.ALLOWED6} {{ {', '.join(macs.values())} }}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------------------
# dnsmasq and hostapd


def dnsmasq(p: Policy) -> str:
    """dnsmasq for the guest LAN: DHCP (with option 114, RFC 8910), the portal's name, walled-garden nftsets."""
    r = p.router
    lan = netaddr.IPNetwork(r.lan_cidr)
    t = f"{m.FAMILY}#{m.TABLE}"
    lines = [
        "# keliu: DHCP and DNS of the guest LAN (rendered by `keliu router render`; edit keliu.toml instead)",
        f"interface={r.lan_iface}",
        "bind-dynamic",
        "domain-needed",
        "bogus-priv",
        f"dhcp-range={r.dhcp_start},{r.dhcp_end},{lan.netmask},{r.lease_minutes}m",
        f"dhcp-option=option:router,{r.portal_ip}",
        f"dhcp-option=option:dns-server,{r.portal_ip}",
        "# RFC 8910: the captive-portal API (RFC 8908) for Android 11+ and iOS 14+",
        f'dhcp-option=114,"{p.api_url}"',
        "dhcp-authoritative",
        f"address=/{r.portal_name}/{r.portal_ip}",
    ]
    if p.ipv6:
        lines += [
            "# IPv6 (ipv6 = \"handle\"): SLAAC from the router's prefix, DNS and the captive-portal API by DHCPv6",
            "enable-ra",
            f"dhcp-range=::,constructor:{r.lan_iface},ra-stateless,{r.lease_minutes}m",
            f'dhcp-option=option6:103,"{p.api_url}"',
        ]
    if r.walled_garden_domains:
        lines.append("# walled garden: every answer for these names opens its addresses to every phone")
        lines.append(f"nftset=/{'/'.join(r.walled_garden_domains)}/4#{t}#{m.GARDEN_DNS}")
    if r.release_domains:
        lines.append("# release hosts: opened only to a phone the portal released (WeChat hand-off)")
        lines.append(f"nftset=/{'/'.join(r.release_domains)}/4#{t}#{m.RELEASE_DNS}")
    return "\n".join(lines) + "\n"


#: hostapd's control interface of the guest SSID: the socket ``<dir>/<router.wlan_iface>``, owned by root and this
#: group, mode 0770 in a folder root:group 0750 (hostapd chowns both, measured in the VM): keliu-stations.service reads the station list through it, with
#: this group as its only supplementary group. provision.sh creates the group (hostapd refuses a group it cannot
#: resolve). Anyone who can write to the socket can command hostapd, so no other keliu unit is in the group.
HOSTAPD_CTRL_DIR = "/var/run/hostapd"
HOSTAPD_CTRL_GROUP = "keliu-hostapd"


def hostapd(p: Policy) -> str:
    """hostapd: the open guest SSID on the LAN bridge (UTF-8 names), optionally a WPA2 staff SSID.

    The control socket (:data:`HOSTAPD_CTRL_DIR`) is set in the guest SSID's section: keliu-stations reads the
    guest SSID's stations, never the staff SSID's."""
    r = p.router
    lines = [
        "# keliu: access point (rendered by `keliu router render`; edit keliu.toml instead)",
        f"interface={r.wlan_iface}",
        f"bridge={r.lan_iface}",
        "driver=nl80211",
        "# the station list for keliu-stations (keliu sensor stations): root and this group only",
        f"ctrl_interface={HOSTAPD_CTRL_DIR}",
        f"ctrl_interface_group={HOSTAPD_CTRL_GROUP}",
        f"country_code={r.country}",
        "ieee80211d=1",
        f"hw_mode={r.hw_mode}",
        f"channel={r.channel}",
        "ieee80211n=1",
        "wmm_enabled=1",
        f"# SSID: {r.ssid}",
        f"ssid2={r.ssid.encode('utf-8').hex()}",
        "utf8_ssid=1",
        "auth_algs=1",
        "wpa=0",
        "# guests must not reach one another",
        "ap_isolate=1",
    ]
    if r.staff_ssid is not None and r.staff_passphrase is not None:
        lines += [
            "",
            f"bss={r.wlan_iface}_1",
            f"bridge={r.staff_bridge}",
            f"# SSID: {r.staff_ssid}",
            f"ssid2={r.staff_ssid.encode('utf-8').hex()}",
            "utf8_ssid=1",
            "auth_algs=1",
            "wpa=2",
            "wpa_key_mgmt=WPA-PSK",
            "rsn_pairwise=CCMP",
            f"wpa_passphrase={r.staff_passphrase}",
        ]
    return "\n".join(lines) + "\n"
