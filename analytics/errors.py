"""Errors of the analytics package.

    KeliuError (keliu.errors)
    ├── ConfigError            e.g. a worker started without ``analytics.broker_url``
    └── ServiceError
        └── AnalyticsServiceError  the database or InfluxDB failed during a job; wraps the library error
            └── InfluxError        an InfluxDB-compatible server refused or could not be reached
"""
from __future__ import annotations

from keliu.errors import ServiceError


class AnalyticsServiceError(ServiceError):
    """A service analytics needs failed (raised ``from`` the library's exception; tasks retry on it)."""


class InfluxError(AnalyticsServiceError):
    """Writing line protocol to the InfluxDB-compatible server failed."""
