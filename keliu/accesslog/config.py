"""Typed configuration of the access log: ``[accesslog]`` (a pure dataclass)."""
from __future__ import annotations

from dataclasses import dataclass, field

from keliu.config import ipv4

#: the law's floor (MPS Order 82: at least 60 days); the Cybersecurity Law's six months is the default
MIN_RETENTION_DAYS = 60


def retention(value: int) -> int:
    if value < MIN_RETENTION_DAYS:
        raise ValueError(f"must be at least {MIN_RETENTION_DAYS} days (MPS Order 82), got {value}")
    return value


def ipv4_or_empty(value: str) -> str:
    return value if value == "" else ipv4(value)


@dataclass(frozen=True)
class AccesslogConfig:
    #: days access and NAT records are kept, then purged (a signed purge record stays in the chain)
    retention_days: int = field(default=180, metadata={"check": retention})
    #: the router's public (WAN) IPv4 address as the ISP assigned it, written on every login's NAT block so that
    #: "who used A:P at T" can be answered; empty: not known (queries then match the port block alone)
    public_ip: str = field(default="", metadata={"check": ipv4_or_empty})
