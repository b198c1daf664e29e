"""dnsmasq's DHCP lease file, read for the (MAC . IP) binding (an edge: one file read; parsing is pure).

``[portal] dhcp_leases`` names the file (dnsmasq's ``dhcp-leasefile``). It is read only when a decision needs it
(a login, a heal, a re-authorization), never on the probe path of a client the Gate holds. A missing or
unreadable file gives ``None``, which :mod:`portal.core.binding` treats as "cannot confirm": heal and
re-authorization are refused (fail closed), a fresh SMS or WeChat login still goes ahead (without a lease tag).
"""
from __future__ import annotations

import logging
from pathlib import Path

from portal.core import binding

log = logging.getLogger("keliu.portal")


class LeaseFile:
    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def read(self) -> tuple[binding.Lease, ...] | None:
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            log.error("DHCP lease file %s unreadable (%s): heal and re-authorization refused",
                      self.path, exc.__class__.__name__)
            return None
        return binding.parse(text)


def read(leases: LeaseFile | None) -> binding.Leases:
    """What a decision is told: the leases, ``None`` (unreadable) or ``NO_LEASE_FILE`` (none configured)."""
    return binding.NO_LEASE_FILE if leases is None else leases.read()
