"""``keliu dashboards build`` and ``provision`` through the real command line entry point."""
from __future__ import annotations

from pathlib import Path

import pytest

from dashboards.config import DashboardsConfig
from dashboards.grafana import files
from keliu.cli import main
from tests.dashboards.fakegrafana import fake_grafana

TOML = """
[[malls]]
id = "wanda-cbd"
name = "万达CBD"
[[malls]]
id = "joy-city"
name = "Joy City"
[[stores]]
id = "s1"
mall = "wanda-cbd"
[[stores]]
id = "s2"
mall = "joy-city"
[portal]
store = "s1"
"""


@pytest.fixture
def config_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "keliu.toml"
    path.write_text(TOML, encoding="utf-8")
    monkeypatch.setenv("KELIU_CONFIG", str(path))
    monkeypatch.delenv("GRAFANA_TOKEN", raising=False)
    return path


def test_build_check_passes_on_the_committed_files(config_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["dashboards", "build", "--check"])
    assert capsys.readouterr().out == "Grafana files are up to date\n"


def test_build_check_fails_on_stale_files(config_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "grafana"
    files.write(DashboardsConfig(), root)
    (root / "json" / "keliu-fleet.json").write_text("{}\n")
    monkeypatch.setattr(files, "ROOT", root)
    with pytest.raises(SystemExit) as exc:
        main(["dashboards", "build", "--check"])
    assert exc.value.code == 1
    assert capsys.readouterr().err == (
        "keliu: stale Grafana files (run `keliu dashboards build`): json/keliu-fleet.json\n")


@pytest.mark.integration
def test_provision_pushes_a_folder_per_configured_mall(config_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with fake_grafana() as (url, state):
        main(["dashboards", "provision", "--url", url, "--token", state.token])
    assert sorted(state.folders) == ["keliu", "keliu-m-joy-city", "keliu-m-wanda-cbd"]
    assert sorted(state.dashboards) == ["keliu-fleet", "keliu-mall-joy-city", "keliu-mall-wanda-cbd",
                                        "keliu-store-joy-city", "keliu-store-wanda-cbd"]
    assert "dashboard keliu-store-wanda-cbd in folder keliu-m-wanda-cbd" in capsys.readouterr().out


@pytest.mark.integration
def test_provision_errors_are_one_line(config_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with fake_grafana() as (url, _state), pytest.raises(SystemExit) as exc:
        main(["dashboards", "provision", "--url", url, "--token", "wrong"])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("keliu: Grafana refused EnsureFolder: ") and err.count("\n") == 1
    with pytest.raises(SystemExit) as exc:
        main(["dashboards", "provision", "--url", "http://127.0.0.1:9", "--token", "t", "--mall", "nowhere"])
    assert exc.value.code == 2  # an unknown mall is a configuration error
    err = capsys.readouterr().err
    assert err.startswith("keliu: malls: no mall with id 'nowhere' (configured: ") and err.count("\n") == 1
