"""Errors shared by every component.

    KeliuError                 base of everything keliu raises on purpose
    ├── ConfigError            a configuration key has a bad value (names the key and the value)
    ├── ServiceError           a real service (database, broker, nft, InfluxDB) failed; wraps the library error
    └── AccesslogError         the access log cannot be read, written or trusted as asked (keliu.accesslog)

The CLI turns any KeliuError into one line ``keliu: <message>`` and a non-zero exit.
"""
from __future__ import annotations


class KeliuError(Exception):
    """Base class for errors keliu raises deliberately."""


class ConfigError(KeliuError):
    """A configuration value is missing, unknown or malformed. ``key`` is the dotted key."""

    def __init__(self, key: str, reason: str) -> None:
        from keliu.redaction import redact_url

        # a reason may quote the bad value, and a bad URL may carry a password: never print it
        reason = redact_url(reason)
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


class ServiceError(KeliuError):
    """A service keliu talks to failed. Raised ``from`` the library's own exception."""


class AccesslogError(KeliuError):
    """The access log cannot be read, written or trusted as asked: a broken chain, a bad key, a bad request."""
