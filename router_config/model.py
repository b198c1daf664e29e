"""The router's policy: what render needs, as one validated value (pure).

:class:`Policy` joins the ``[router]`` section with the three portal values the firewall and DHCP server must know
(its HTTP port for the DNAT, its HTTPS port for the RFC 8908 API, and the API's URI for DHCP option 114). It also
names the nftables objects, so that render, the Gate and the tests agree on them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from keliu.config import ipv4, mac, port
from router_config.config import RouterConfig
from router_config.errors import PolicyError

FAMILY = "inet"
TABLE = "keliu"

#: (MAC . IPv4) of logged-in phones; element timeout = end of session; element counter = bytes up
ALLOWED = "allowed"
#: IPv4 of logged-in phones; only counts bytes down (decisions are never made on the IP alone)
ALLOWED_DOWN = "allowed_down"
#: MAC of logged-in phones, for IPv6 in ``ipv6 = "handle"`` mode
ALLOWED6 = "allowed6"
#: (MAC . IPv4) released for a short while to the release hosts (WeChat hand-off); set only server-side
RELEASED = "released"
TRUSTED = "trusted"
GARDEN = "garden"
GARDEN_DNS = "garden_dns"
RELEASE_DNS = "release_dns"
RATE_UP = "rate_up"
RATE_DOWN = "rate_down"

#: sets whose elements the Gate owns; ``apply`` never flushes them
CLIENT_SETS = (ALLOWED, ALLOWED_DOWN, ALLOWED6, RELEASED)


@dataclass(frozen=True)
class Policy:
    router: RouterConfig
    portal_port: int = 8080
    portal_https_port: int = 8443
    #: the portal's captive front (portal.serve.front), where a captive phone's HTTP to any other host is DNATed;
    #: None: to ``portal_port`` as well
    portal_captive_port: int | None = None
    #: RFC 8908 API URI, handed out in DHCP option 114; must be https
    api_url: str = "https://portal.keliu.lan:8443/api/captive"

    def __post_init__(self) -> None:
        for key in ("portal_port", "portal_https_port", "portal_captive_port"):
            if getattr(self, key) is None:
                continue
            try:
                port(getattr(self, key))
            except ValueError as exc:
                raise PolicyError(key, str(exc)) from exc
        url = urlsplit(self.api_url)
        if url.scheme != "https" or not url.hostname:
            raise PolicyError("api_url", f"RFC 8908 wants an https URI, got {self.api_url!r}")
        if any(c in self.api_url for c in "\"\n\\ "):
            raise PolicyError("api_url", f"contains a quote, backslash, space or newline: {self.api_url!r}")

    @property
    def captive_port(self) -> int:
        """Where a captive phone's HTTP to a foreign host goes."""
        return self.portal_captive_port or self.portal_port

    @property
    def ipv6(self) -> bool:
        """True when authorized phones may use IPv6 (``ipv6 = "handle"``)."""
        return self.router.ipv6 == "handle"

    @property
    def rate_limited(self) -> bool:
        return self.router.rate_up_kbit is not None or self.router.rate_down_kbit is not None


class PortalSide(Protocol):
    """What the router needs of ``portal.config.PortalConfig``."""

    @property
    def port(self) -> int: ...

    @property
    def https_port(self) -> int: ...

    @property
    def captive_port(self) -> int: ...

    @property
    def api_url(self) -> str: ...


def policy_from(router: RouterConfig, portal: PortalSide | None = None) -> Policy:
    """Build the Policy from ``[router]`` and, when given, the portal's config (port, https_port, api_url)."""
    if portal is None:
        return Policy(router=router, api_url=f"https://{router.portal_name}:8443/api/captive")
    return Policy(
        router=router,
        portal_port=portal.port,
        portal_https_port=portal.https_port,
        portal_captive_port=portal.captive_port or None,
        api_url=portal.api_url,
    )


def client_key(mac_value: str, ip_value: str) -> tuple[str, str]:
    """Normalise one client's (MAC, IPv4), raising :class:`PolicyError` on a bad value (they reach nft text)."""
    try:
        return mac(mac_value), ipv4(ip_value)
    except ValueError as exc:
        raise PolicyError("client", str(exc)) from exc


def client_mac(mac_value: str) -> str:
    try:
        return mac(mac_value)
    except ValueError as exc:
        raise PolicyError("client", str(exc)) from exc
