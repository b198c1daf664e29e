"""Typed configuration of the router: ``[router]`` (a pure dataclass). Rendering is in ``router_config.render``.

One router sits in one store, so the rate limits here are that store's per-client limits. Every value is checked
once by :func:`keliu.config.load`; :meth:`RouterConfig.validate` adds the checks that span several keys.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import netaddr

from keliu.config import cidr, each, ipv4, mac, positive

_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_IFNAME = re.compile(r"[A-Za-z0-9_.@-]{1,15}")


def domain(value: str) -> str:
    """A DNS name (lower-cased); used for the walled garden and the portal's local name."""
    name = value.strip().lower().rstrip(".")
    if not name or len(name) > 253 or not all(_LABEL.fullmatch(p) for p in name.split(".")):
        raise ValueError(f"not a domain name: {value!r}")
    return name


def ifname(value: str) -> str:
    """A Linux interface name (at most 15 characters, no spaces or slashes)."""
    if not _IFNAME.fullmatch(value):
        raise ValueError(f"not an interface name (1-15 of A-Z a-z 0-9 _ . @ -): {value!r}")
    return value


#: WeChat's hosts that a phone must reach during the 微信连Wi-Fi hand-off. Only *temporarily released* clients
#: reach them before login; opening them to every phone would put most of China's mobile traffic outside the portal.
WECHAT_DOMAINS = ["weixin.qq.com", "wx.qq.com", "wechat.com", "qpic.cn", "qlogo.cn"]


@dataclass(frozen=True)
class RouterConfig:
    lan_iface: str = field(default="br-lan", metadata={"check": ifname})
    wan_iface: str = field(default="eth0", metadata={"check": ifname})
    lan_cidr: str = field(default="10.77.0.0/22", metadata={"check": cidr})
    portal_ip: str = field(default="10.77.0.1", metadata={"check": ipv4})
    dhcp_start: str = field(default="10.77.0.10", metadata={"check": ipv4})
    dhcp_end: str = field(default="10.77.3.250", metadata={"check": ipv4})
    lease_minutes: int = field(default=120, metadata={"check": positive})
    portal_name: str = field(default="portal.keliu.lan", metadata={"check": domain})
    #: reachable by every phone before login (resolved through dnsmasq, which fills an nft set)
    walled_garden_domains: list[str] = field(default_factory=list, metadata={"check": each(domain)})
    walled_garden_cidrs: list[str] = field(default_factory=list, metadata={"check": each(cidr)})
    #: reachable before login only by a phone the portal released temporarily (the WeChat hand-off)
    release_domains: list[str] = field(default_factory=lambda: list(WECHAT_DOMAINS),
                                       metadata={"check": each(domain)})
    #: how long an address learnt from a walled-garden DNS answer stays open
    garden_dns_minutes: int = field(default=360, metadata={"check": positive})
    #: devices (staff POS, printers) that bypass the portal
    trusted_macs: list[str] = field(default_factory=list, metadata={"check": each(mac)})
    client_timeout_minutes: int = field(default=24 * 60, metadata={"check": positive})
    rate_up_kbit: int | None = field(default=None, metadata={"check": positive})
    rate_down_kbit: int | None = field(default=None, metadata={"check": positive})
    #: "block": guests get no IPv6 at all; "handle": an authorized phone's MAC may use IPv6, others may not
    ipv6: Literal["block", "handle"] = "block"
    ssid: str = "免费WiFi"
    channel: int = 6
    hw_mode: Literal["g", "a"] = "g"
    wlan_iface: str = field(default="wlan0", metadata={"check": ifname})
    staff_ssid: str | None = None
    staff_passphrase: str | None = None
    staff_bridge: str = field(default="br-staff", metadata={"check": ifname})
    country: str = "CN"
    #: the sensor's monitor-mode interface, created on ``monitor_phy`` by ``router_config.monitor``
    monitor_iface: str = field(default="mon0", metadata={"check": ifname})
    monitor_phy: int = 0
    #: the NAT log (MPS Order 82): "portblock" translates each LAN address to a fixed block of source ports on
    #: the WAN (RFC 7422, router_config.portblock), so the access log's login records answer "who used port P";
    #: "conntrack": per-connection records from conntrack events (ulogd2's NFCT plugin, run apart from keliu);
    #: "none": no translation rules from keliu (another NAT, and its log, is the operator's)
    nat_log: Literal["portblock", "conntrack", "none"] = "portblock"

    def validate(self) -> None:
        lan = netaddr.IPNetwork(self.lan_cidr)
        if lan.version != 4:
            raise ValueError(f"lan_cidr: must be an IPv4 network: {self.lan_cidr!r}")
        for key in ("portal_ip", "dhcp_start", "dhcp_end"):
            if netaddr.IPAddress(getattr(self, key)) not in lan:
                raise ValueError(f"{key}: {getattr(self, key)} is outside lan_cidr {self.lan_cidr}")
        start, end = netaddr.IPAddress(self.dhcp_start), netaddr.IPAddress(self.dhcp_end)
        if start > end:
            raise ValueError(f"dhcp_start: {self.dhcp_start} is after dhcp_end {self.dhcp_end}")
        if start <= netaddr.IPAddress(self.portal_ip) <= end:
            raise ValueError(f"portal_ip: {self.portal_ip} lies inside the DHCP range")
        if self.nat_log == "portblock":
            from router_config.portblock import block_size

            if block_size(self.lan_cidr) < 8:
                raise ValueError(f"nat_log: {self.lan_cidr} leaves fewer than 8 source ports per address; use a "
                                 "smaller lan_cidr or nat_log = \"conntrack\"")
        if self.lan_iface == self.wan_iface:
            raise ValueError(f"wan_iface: same as lan_iface ({self.lan_iface!r})")
        for key in ("ssid", "staff_ssid"):
            value = getattr(self, key)
            if value is not None and not 1 <= len(value.encode("utf-8")) <= 32:
                raise ValueError(f"{key}: an SSID is 1-32 bytes of UTF-8, got {len(value.encode('utf-8'))}")
        if self.staff_ssid is not None:
            pw = self.staff_passphrase
            if pw is None or not 8 <= len(pw) <= 63 or not pw.isascii():
                raise ValueError("staff_passphrase: required with staff_ssid, 8-63 ASCII characters")
        valid = range(1, 15) if self.hw_mode == "g" else range(36, 178)
        if self.channel not in valid:
            raise ValueError(f"channel: {self.channel} is not a channel of hw_mode {self.hw_mode!r}")
        if len(self.country) != 2 or not self.country.isalpha() or not self.country.isupper():
            raise ValueError(f"country: an ISO 3166 alpha-2 code such as 'CN', got {self.country!r}")
        for net in self.walled_garden_cidrs:
            if netaddr.IPNetwork(net).version != 4:
                raise ValueError(f"walled_garden_cidrs: only IPv4 networks are supported, got {net!r}")
