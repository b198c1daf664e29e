"""Typed configuration of dashboards: ``[dashboards]`` (a pure dataclass)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DashboardsConfig:
    #: Grafana datasource name the committed dashboards refer to
    datasource_uid: str = "keliu-influx"
    influx_database: str = "keliu"
