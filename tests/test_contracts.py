"""Architecture contracts that fail the build (docs/ARCHITECTURE.md): the import rules of pyproject.toml's
``[tool.importlinter]`` hold, a deliberate violation of them is caught, and every exception a package defines
derives from that package's base error."""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PACKAGES = ("keliu", "portal", "marketing", "sensor", "analytics", "router_config", "dashboards")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True, check=False,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def test_the_import_contracts_hold() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 broken" in result.stdout


def test_a_deliberate_violation_breaks_the_build(tmp_path: Path) -> None:
    # a copy of the packages in which the sensor imports analytics, the reverse of the allowed direction
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("*.pyc", "__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    records = tmp_path / "sensor" / "records.py"
    records.write_text(records.read_text() + "\nimport analytics.visits  # noqa: E402,F401\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "The sensor depends on no other component" in result.stdout and "BROKEN" in result.stdout
    assert "sensor.records -> analytics.visits" in result.stdout


#: each package's base error: everything the package raises of its own derives from it
BASES = {"keliu": "KeliuError", "portal": "PortalError", "marketing": "MarketingError", "sensor": "SensorError",
         "analytics": "AnalyticsError",
         "router_config": "RouterError", "dashboards": "DashboardsError"}


def modules_of(pkg: str) -> list[str]:
    root = importlib.import_module(pkg)
    names = [pkg]
    for info in pkgutil.walk_packages(root.__path__, prefix=pkg + "."):
        if ".migrations" in info.name:
            continue  # alembic revision scripts need alembic's context to import
        names.append(info.name)
    return names


@pytest.mark.parametrize("pkg", ["portal", "marketing", "sensor", "analytics", "router_config", "dashboards", "keliu"])
def test_every_exception_a_package_defines_derives_from_its_base(pkg: str) -> None:
    base = getattr(importlib.import_module(f"{pkg}.errors"), BASES[pkg])
    strays = []
    for name in modules_of(pkg):
        module = importlib.import_module(name)
        for obj in vars(module).values():
            if (inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == name
                    and not issubclass(obj, base)):
                strays.append(f"{name}.{obj.__name__}")
    assert strays == []
