"""Errors of the dashboards package (pure).

    KeliuError (keliu.errors)
    ├── ConfigError                  a bad configuration value
    └── DashboardsError              base of what the dashboards package raises on purpose
        ├── StaleDashboards          committed Grafana JSON/YAML differs from what the code generates
        ├── ProvisionError           Grafana refused or could not be reached; wraps the grafana-client error
        └── ReportError              a dashboard request cannot be answered (bad range, unknown store)
            └── Forbidden            the logged-in user may not see that store or mall (HTTP 403)
"""
from __future__ import annotations

from keliu.errors import KeliuError


class DashboardsError(KeliuError):
    """Base class for errors the dashboards package raises deliberately."""


class StaleDashboards(DashboardsError):
    """The committed dashboards differ from the generated ones. ``paths`` lists the differing files."""

    def __init__(self, paths: list[str]) -> None:
        super().__init__("stale Grafana files (run `keliu dashboards build`): " + ", ".join(paths))
        self.paths = paths


class ProvisionError(DashboardsError):
    """Pushing to Grafana failed. Raised ``from`` the grafana-client exception."""


class ReportError(DashboardsError):
    """A request for numbers is malformed (bad date, range too long, unknown store). HTTP 400/404."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class Forbidden(ReportError):
    """The user may not see the requested store or mall. HTTP 403."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=403)
