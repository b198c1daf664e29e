"""``keliu token create|list|revoke`` and ``keliu pos import`` as processes (the real CLI, real SQLite)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from keliu import db
from keliu.accounts import tokens

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def keliu(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KELIU_")}
    env.update({"KELIU_DATABASE_URL": f"sqlite:///{tmp_path / 'k.db'}", "KELIU_VAR_DIR": str(tmp_path / "var"),
                "PYTHONPATH": str(ROOT)})
    return subprocess.run([sys.executable, "-m", "keliu.cli", *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_tokens_and_pos_import(tmp_path: Path) -> None:
    assert keliu(tmp_path, "db").returncode == 0
    r = keliu(tmp_path, "token", "create", "--role", "store", "--store", "demo-store", "--name", "till-1")
    assert r.returncode == 0, r.stderr
    name, token = r.stdout.strip().split("\t")
    assert name == "till-1" and token.startswith("kl_")
    r = keliu(tmp_path, "token", "create", "--role", "store", "--store", "nowhere")
    assert r.returncode == 1 and r.stderr.startswith("keliu: --store")
    r = keliu(tmp_path, "token", "create", "--role", "mall", "--mall", "demo-mall")
    assert r.returncode == 0
    listed = keliu(tmp_path, "token", "list").stdout
    assert "till-1\tstore\tdemo-store" in listed and token not in listed
    assert keliu(tmp_path, "token", "revoke", "till-1").returncode == 0
    assert keliu(tmp_path, "token", "revoke", "till-1").returncode == 1
    engine = db.make_engine(f"sqlite:///{tmp_path / 'k.db'}")
    with engine.connect() as conn:
        assert tokens.principal(conn, token) is None

    f = tmp_path / "pos.csv"
    f.write_text("txn_id,ts,amount\nT1,2026-12-06 10:00,1\nT2,bad,1\n", encoding="utf-8")
    r = keliu(tmp_path, "pos", "import", str(f), "--store", "demo-store", "--rejects", str(tmp_path / "rej.csv"))
    assert r.returncode == 0, r.stderr
    assert "1 new" in r.stdout and "1 rejected" in r.stdout and "line 3: ts" in r.stderr
    assert (tmp_path / "rej.csv").read_text().splitlines()[1].startswith("3,ts,")
    r = keliu(tmp_path, "pos", "import", str(f), "--store", "demo-store", "--strict")
    assert r.returncode == 1 and "nothing imported" in r.stderr
    r = keliu(tmp_path, "pos", "import", str(f), "--store", "nowhere")
    assert r.returncode == 1 and "--store" in r.stderr
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM sales")).scalar() == 1
    engine.dispose()
