"""Deterministic NAT in the manner of RFC 7422: each LAN address owns a fixed block of public source ports (pure).

The LAN's addresses share the ports 1024–65535 in equal blocks, in address order: in the default 10.77.0.0/22
(1,024 addresses) each gets 63 ports, 10.77.0.10 the ports 1654–1716. The kernel reuses a source port for
different destinations, so a block limits only the connections one phone keeps open *to the same server address
and port* at once. Because the mapping is a function of the address, the NAT log needs no line per connection:
the access log's record of who held the address (``keliu.accesslog``), with the block written on it, answers "who
used public address A, port P at time T?". The nftables rules are rendered by
``router_config.render.nat_block_chains``.
"""
from __future__ import annotations

import netaddr

FIRST_PORT = 1024
LAST_PORT = 65535


def block_size(lan_cidr: str) -> int:
    """Ports per LAN address (at least 1: a LAN larger than the port space cannot be mapped)."""
    size = (LAST_PORT - FIRST_PORT + 1) // int(netaddr.IPNetwork(lan_cidr).size)
    if size < 1:
        raise ValueError(f"{lan_cidr} has more addresses than there are source ports to share")
    return size


def block(lan_cidr: str, ip: str) -> tuple[int, int] | None:
    """The (first, last) public source port of ``ip``'s block, or ``None`` if ``ip`` is not in the LAN."""
    net = netaddr.IPNetwork(lan_cidr)
    try:
        addr = netaddr.IPAddress(ip)
    except (netaddr.AddrFormatError, ValueError):
        return None
    if addr.version != net.version or addr not in net:
        return None
    size = block_size(lan_cidr)
    lo = FIRST_PORT + (int(addr) - int(net.network)) * size
    return lo, lo + size - 1


def blocks(lan_cidr: str, first: str, last: str) -> list[tuple[str, int, int]]:
    """(address, first port, last port) of every address from ``first`` to ``last`` (the DHCP range)."""
    out = []
    for addr in netaddr.iter_iprange(first, last):
        b = block(lan_cidr, str(addr))
        if b is not None:
            out.append((str(addr), b[0], b[1]))
    return out
