"""Writing and checking the committed Grafana files (an edge: the file system only).

``write`` regenerates ``dashboards/grafana/{json,provisioning}``; ``stale`` lists the files that differ from what the
code generates, so a test (and CI) fails until someone runs ``keliu dashboards build`` and commits the result.
"""
from __future__ import annotations

from pathlib import Path

from dashboards.config import DashboardsConfig
from dashboards.grafana.provisioning import tree

ROOT = Path(__file__).resolve().parent


def write(cfg: DashboardsConfig, root: Path | None = None) -> list[Path]:
    """Write every generated file under ``root``; remove generated-looking JSON that is no longer generated."""
    root = ROOT if root is None else root
    files = tree(cfg)
    written = []
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    for old in sorted((root / "json").glob("*.json")):
        if f"json/{old.name}" not in files:
            old.unlink()
    return written


def stale(cfg: DashboardsConfig, root: Path | None = None) -> list[str]:
    """Relative paths whose committed text differs from the generated one (missing and extra files included)."""
    root = ROOT if root is None else root
    files = tree(cfg)
    out = [rel for rel, text in files.items()
           if not (root / rel).is_file() or (root / rel).read_text(encoding="utf-8") != text]
    out += [f"json/{p.name}" for p in sorted((root / "json").glob("*.json")) if f"json/{p.name}" not in files]
    return sorted(out)
