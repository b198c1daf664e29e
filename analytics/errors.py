"""Errors of the analytics package.

    KeliuError (keliu.errors)
    ├── ConfigError                e.g. a worker started without ``analytics.broker_url``
    ├── AnalyticsError             the package's base: everything analytics raises of its own derives from it
    │   └── AnalyticsServiceError  the database or InfluxDB failed during a job; wraps the library error
    │       └── InfluxError        an InfluxDB-compatible server refused or could not be reached
    └── ServiceError               (AnalyticsServiceError is one too: callers that catch any service failure see it)
"""
from __future__ import annotations

from keliu.errors import KeliuError, ServiceError


class AnalyticsError(KeliuError):
    """The base of the analytics package's own errors."""


class AnalyticsServiceError(AnalyticsError, ServiceError):
    """A service analytics needs failed (raised ``from`` the library's exception; tasks retry on it)."""


class InfluxError(AnalyticsServiceError):
    """Writing line protocol to the InfluxDB-compatible server failed."""
