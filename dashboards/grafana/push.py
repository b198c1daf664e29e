"""Provisioning through the Grafana HTTP API: a pure plan of commands, and their execution through grafana-client.

``plan`` decides (pure): one folder ``keliu`` with the fleet dashboard, then per mall a folder holding the store and
mall dashboards pinned to that mall, and optionally the InfluxDB datasource. ``apply`` acts (the edge): it upserts each
folder, datasource and dashboard, and turns any grafana-client or transport error into :class:`ProvisionError`.
Running it twice leaves Grafana as after one run (folders are looked up by uid, dashboards overwritten by uid).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dashboards.config import DashboardsConfig
from dashboards.errors import ProvisionError
from dashboards.grafana.boards import UID_FLEET, fleet_board, for_mall, mall_board, mall_uid, store_board
from dashboards.grafana.model import Json

FLEET_FOLDER = "keliu"


@dataclass(frozen=True)
class EnsureFolder:
    uid: str
    title: str


@dataclass(frozen=True)
class PutDashboard:
    folder_uid: str
    board: Json


@dataclass(frozen=True)
class EnsureDatasource:
    body: Json


Command = EnsureFolder | PutDashboard | EnsureDatasource


def datasource_body(cfg: DashboardsConfig, influx_url: str, token: str | None) -> Json:
    body: Json = {
        "uid": cfg.datasource_uid, "name": "keliu InfluxDB", "type": "influxdb", "access": "proxy",
        "url": influx_url,
        "jsonData": {"version": "InfluxQL", "dbName": cfg.influx_database, "httpMode": "GET", "timeInterval": "5m"},
    }
    if token:
        body["jsonData"]["httpHeaderName1"] = "Authorization"
        body["secureJsonData"] = {"httpHeaderValue1": f"Token {token}"}
    return body


def plan(cfg: DashboardsConfig, malls: Sequence[tuple[str, str]], *, tz: str = "Asia/Shanghai",
         influx_url: str | None = None, influx_token: str | None = None) -> list[Command]:
    """The commands that provision ``malls`` (pairs of id and name). Pure."""
    out: list[Command] = []
    if influx_url:
        out.append(EnsureDatasource(datasource_body(cfg, influx_url, influx_token)))
    out.append(EnsureFolder(FLEET_FOLDER, "keliu"))
    fleet = fleet_board(cfg, tz)
    assert fleet["uid"] == UID_FLEET
    out.append(PutDashboard(FLEET_FOLDER, fleet))
    store, mall = store_board(cfg, tz), mall_board(cfg, tz)
    for mall_id, name in malls:
        folder = mall_uid("keliu-m", mall_id)
        out.append(EnsureFolder(folder, f"keliu · {name or mall_id}"))
        out.append(PutDashboard(folder, for_mall(mall, mall_id, name)))
        out.append(PutDashboard(folder, for_mall(store, mall_id, name)))
    return out


def connect(url: str, token: str, timeout: float = 10.0) -> Any:
    """A grafana-client API object authenticated with a service-account token (nothing is sent yet)."""
    from grafana_client.api import GrafanaApi

    return GrafanaApi.from_url(url, credential=token, timeout=timeout)


def _status(exc: Exception) -> int | None:
    return getattr(exc, "status_code", None)


def apply(api: Any, commands: Sequence[Command]) -> list[str]:
    """Execute ``commands`` against Grafana; returns one human-readable line per command done."""
    import niquests
    from grafana_client.client import GrafanaClientError, GrafanaException

    done: list[str] = []
    for cmd in commands:
        try:
            if isinstance(cmd, EnsureFolder):
                try:
                    folder = api.folder.get_folder(cmd.uid)
                except GrafanaClientError as exc:
                    if _status(exc) != 404:
                        raise
                    api.folder.create_folder(cmd.title, uid=cmd.uid)
                    done.append(f"created folder {cmd.uid} ({cmd.title})")
                    continue
                if folder.get("title") != cmd.title:
                    api.folder.update_folder(cmd.uid, title=cmd.title, overwrite=True)
                    done.append(f"renamed folder {cmd.uid} ({cmd.title})")
                else:
                    done.append(f"folder {cmd.uid} exists")
            elif isinstance(cmd, EnsureDatasource):
                uid = cmd.body["uid"]
                try:
                    api.datasource.get_datasource_by_uid(uid)
                except GrafanaClientError as exc:
                    if _status(exc) != 404:
                        raise
                    api.datasource.create_datasource(cmd.body)
                    done.append(f"created datasource {uid}")
                    continue
                api.datasource.update_datasource_by_uid(uid, cmd.body)
                done.append(f"updated datasource {uid}")
            else:
                api.dashboard.update_dashboard({"dashboard": cmd.board, "folderUid": cmd.folder_uid,
                                                "overwrite": True, "message": "keliu dashboards provision"})
                done.append(f"dashboard {cmd.board['uid']} in folder {cmd.folder_uid}")
        except GrafanaException as exc:
            raise ProvisionError(f"Grafana refused {type(cmd).__name__}: {exc}") from exc
        except niquests.exceptions.RequestException as exc:
            raise ProvisionError(f"cannot reach Grafana: {exc}") from exc
    return done
