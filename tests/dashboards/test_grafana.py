"""Grafana as code: committed files up to date, stable uids, chained variables, provisioning via a recording server."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dashboards.config import DashboardsConfig
from dashboards.errors import ProvisionError
from dashboards.grafana import files, push
from dashboards.grafana.boards import boards, for_mall, mall_uid, store_board
from dashboards.grafana.provisioning import tree
from tests.dashboards.fakegrafana import fake_grafana

CFG = DashboardsConfig()


def test_committed_files_are_not_stale() -> None:
    # fails until `keliu dashboards build` has been run and its output committed
    assert files.stale(CFG) == []


def test_stale_detects_edit_and_missing_and_extra(tmp_path: Path) -> None:
    files.write(CFG, tmp_path)
    assert files.stale(CFG, tmp_path) == []
    (tmp_path / "json/keliu-mall.json").write_text("{}")
    (tmp_path / "provisioning/dashboards/keliu.yaml").unlink()
    (tmp_path / "json/old.json").write_text("{}")
    assert files.stale(CFG, tmp_path) == ["json/keliu-mall.json", "json/old.json",
                                          "provisioning/dashboards/keliu.yaml"]
    files.write(CFG, tmp_path)
    assert files.stale(CFG, tmp_path) == []


def test_uids_are_stable_and_unique() -> None:
    uids = {name: b["uid"] for name, b in boards(CFG).items()}
    assert uids == {"keliu-store.json": "keliu-store", "keliu-mall.json": "keliu-mall",
                    "keliu-fleet.json": "keliu-fleet"}


def test_every_panel_uses_the_configured_datasource_and_unique_ids() -> None:
    cfg = DashboardsConfig(datasource_uid="other-ds")
    for board in boards(cfg).values():
        ids = [p["id"] for p in board["panels"]]
        assert ids == list(range(1, len(ids) + 1))
        for p in board["panels"]:
            assert p["datasource"] == {"type": "influxdb", "uid": "other-ds"}
            assert p["targets"] and all(t["rawQuery"] and t["query"] for t in p["targets"])
            assert p["gridPos"]["x"] + p["gridPos"]["w"] <= 24


def test_store_variable_is_chained_on_mall() -> None:
    variables = {v["name"]: v for v in store_board(CFG)["templating"]["list"]}
    assert list(variables) == ["mall", "store", "tz"]
    assert variables["store"]["query"] == 'SHOW TAG VALUES WITH KEY = "store" WHERE "mall" =~ /^$mall$/'
    assert variables["mall"]["query"] == 'SHOW TAG VALUES WITH KEY = "mall"'


def test_for_mall_pins_the_mall_variable() -> None:
    pinned = for_mall(store_board(CFG), "wanda-cbd", "万达CBD")
    assert pinned["uid"] == "keliu-store-wanda-cbd"
    assert pinned["title"] == "keliu · Store · 万达CBD"
    mall = pinned["templating"]["list"][0]
    assert (mall["type"], mall["query"], mall["hide"]) == ("constant", "wanda-cbd", 2)
    assert store_board(CFG)["templating"]["list"][0]["type"] == "query"  # the original is untouched
    long = mall_uid("keliu-store", "a" * 64)
    assert len(long) <= 40 and long == mall_uid("keliu-store", "a" * 64) != mall_uid("keliu-store", "b" * 64)


def test_provisioning_yaml() -> None:
    t = tree(CFG)
    ds = yaml.safe_load(t["provisioning/datasources/keliu.yaml"])["datasources"][0]
    assert (ds["uid"], ds["type"], ds["jsonData"]["version"], ds["jsonData"]["dbName"]) == (
        "keliu-influx", "influxdb", "InfluxQL", "keliu")
    assert "$KELIU_INFLUX_TOKEN" in ds["secureJsonData"]["httpHeaderValue1"]
    provider = yaml.safe_load(t["provisioning/dashboards/keliu.yaml"])["providers"][0]
    assert (provider["type"], provider["folder"]) == ("file", "keliu")
    for name in ("keliu-store", "keliu-mall", "keliu-fleet"):
        assert json.loads(t[f"json/{name}.json"])["uid"] == name


MALLS = [("wanda-cbd", "万达CBD"), ("joy-city", "Joy City")]


def test_plan_has_a_folder_per_mall() -> None:
    cmds = push.plan(CFG, MALLS, influx_url="http://influx:8086", influx_token="t0k")
    summary = [(type(c).__name__, getattr(c, "uid", None) or getattr(c, "folder_uid", None),
                c.board["uid"] if isinstance(c, push.PutDashboard) else None) for c in cmds]
    assert summary == [
        ("EnsureDatasource", None, None),
        ("EnsureFolder", "keliu", None),
        ("PutDashboard", "keliu", "keliu-fleet"),
        ("EnsureFolder", "keliu-m-wanda-cbd", None),
        ("PutDashboard", "keliu-m-wanda-cbd", "keliu-mall-wanda-cbd"),
        ("PutDashboard", "keliu-m-wanda-cbd", "keliu-store-wanda-cbd"),
        ("EnsureFolder", "keliu-m-joy-city", None),
        ("PutDashboard", "keliu-m-joy-city", "keliu-mall-joy-city"),
        ("PutDashboard", "keliu-m-joy-city", "keliu-store-joy-city"),
    ]
    ds = cmds[0]
    assert isinstance(ds, push.EnsureDatasource)
    assert ds.body["secureJsonData"] == {"httpHeaderValue1": "Token t0k"}


@pytest.mark.integration
def test_provision_against_a_recording_server() -> None:
    with fake_grafana() as (url, state):
        api = push.connect(url, state.token)
        push.apply(api, push.plan(CFG, MALLS))
        first = [(c.method, c.path.split("?")[0]) for c in state.calls]
        assert first == [
            ("GET", "/api/folders/keliu"), ("POST", "/api/folders"), ("POST", "/api/dashboards/db"),
            ("GET", "/api/folders/keliu-m-wanda-cbd"), ("POST", "/api/folders"),
            ("POST", "/api/dashboards/db"), ("POST", "/api/dashboards/db"),
            ("GET", "/api/folders/keliu-m-joy-city"), ("POST", "/api/folders"),
            ("POST", "/api/dashboards/db"), ("POST", "/api/dashboards/db"),
        ]
        assert all(c.auth == f"Bearer {state.token}" for c in state.calls)
        assert {uid: d["folderUid"] for uid, d in state.dashboards.items()} == {
            "keliu-fleet": "keliu", "keliu-mall-wanda-cbd": "keliu-m-wanda-cbd",
            "keliu-store-wanda-cbd": "keliu-m-wanda-cbd", "keliu-mall-joy-city": "keliu-m-joy-city",
            "keliu-store-joy-city": "keliu-m-joy-city"}
        assert state.folders["keliu-m-wanda-cbd"]["title"] == "keliu · 万达CBD"
        assert all(d["overwrite"] is True for d in state.dashboards.values())
        # a second run creates nothing new: folders are found by uid, dashboards overwritten
        state.calls.clear()
        push.apply(api, push.plan(CFG, MALLS))
        assert [c.method for c in state.calls if c.path == "/api/folders"] == []
        assert len(state.dashboards) == 5


@pytest.mark.integration
def test_provision_upserts_the_datasource() -> None:
    with fake_grafana() as (url, state):
        api = push.connect(url, state.token)
        plan = push.plan(CFG, MALLS[:1], influx_url="http://influx:8086")
        push.apply(api, plan)
        push.apply(api, plan)
        ds_calls = [(c.method, c.path) for c in state.calls if "datasources" in c.path]
        assert ds_calls == [("GET", "/api/datasources/uid/keliu-influx"), ("POST", "/api/datasources"),
                            ("GET", "/api/datasources/uid/keliu-influx"), ("PUT", "/api/datasources/uid/keliu-influx")]
        assert state.datasources["keliu-influx"]["url"] == "http://influx:8086"


@pytest.mark.integration
def test_provision_errors_are_translated() -> None:
    with fake_grafana() as (url, _state), pytest.raises(ProvisionError, match="Grafana refused EnsureFolder"):
        push.apply(push.connect(url, "wrong-token"), push.plan(CFG, MALLS))
    with pytest.raises(ProvisionError, match="cannot reach Grafana"):
        push.apply(push.connect(url, "t", timeout=2), push.plan(CFG, MALLS))
