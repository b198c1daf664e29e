"""Fixtures of the VM tests (``make test-vm``; marked ``vm``, deselected from ``make test``).

``deps`` builds keliu's dependencies as wheels (cached by the hash of pyproject.toml); ``vm_image`` builds (once,
then cached by content hash) the Debian 12 image of mkimage.sh with those dependencies installed in /opt/keliu;
``wheelhouse`` is what ``provision.sh --wheels`` installs offline: the same dependencies plus a wheel of this tree
built for each run. ``router`` boots the image and runs provision.sh in it with the flags
docs/DEPLOY.md documents; everything in a test module shares that one router, in file order.

The cache lives in ``.vm/`` of the checkout (git-ignored) or in ``$KELIU_VM_CACHE``. Each run writes
``<cache>/runs/<stamp>/``: the serial console, the channel's transcript, the journal at the end. They are kept;
only the run's disk overlay is deleted when every test passed.
"""
from __future__ import annotations

import email.parser
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, require
from tests.vm.machine import Machine, qemu_available

CACHE = Path(os.environ.get("KELIU_VM_CACHE", str(ROOT / ".vm")))
HERE = Path(__file__).resolve().parent
# provision.sh as docs/DEPLOY.md runs it offline (--wheels) and as the Vagrantfile runs it in a VM (--hwsim): the
# WAN is the veth to the test's "internet" namespace, the sensor gets phy1, the AP phy0, the test phone phy2.
PROVISION = "/mnt/keliu/router_config/deploy/provision.sh --src /mnt/keliu --wheels /mnt/wheels --wan wan0 --hwsim"
KEEP_RUNS = 5
# Installed beside keliu in the VM (never into /opt/keliu) to run tests of this tree that need real radios there.
TEST_WHEELS = ["pytest>=8,<10", "pytest-timeout>=2.3,<3"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed:
        item.session.config.stash.setdefault(FAILED, []).append(item.nodeid)


FAILED = pytest.StashKey[list[str]]()


def _require_host() -> None:
    require(os.geteuid() == 0, "the VM tests build the image as root (mmdebstrap, mkfs.ext4 -d)")
    require(qemu_available() is not None, "qemu-system-x86_64 is not installed (make test-vm installs it)")
    require(shutil.which("mmdebstrap") is not None, "mmdebstrap is not installed (make test-vm installs it)")


@pytest.fixture(scope="session")
def vm_image(deps: Path) -> Path:
    _require_host()
    out = subprocess.run(["bash", str(HERE / "mkimage.sh"), str(CACHE), str(deps)], check=False, capture_output=True,
                         text=True, timeout=3600)
    assert out.returncode == 0, out.stderr[-4000:]
    return Path(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def run_dir() -> Path:
    runs = CACHE / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    for old in sorted(runs.iterdir())[:-KEEP_RUNS]:
        shutil.rmtree(old, ignore_errors=True)
    path = runs / time.strftime("%Y%m%d-%H%M%S")
    path.mkdir(exist_ok=True)
    return path


def _builder() -> Path:
    """A virtualenv of Debian's own python3, the one the VM has: wheels are built and resolved for it.

    This checkout's virtualenv may be another 3.11 (environment markers such as ``python_full_version < "3.11.3"``
    then pick other dependencies), which is why docs/DEPLOY.md says to build the wheelhouse on the same Debian.
    """
    venv = CACHE / "builder"
    if not (venv / "bin" / "pip").exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True, timeout=300)
    return venv / "bin" / "python"


def _requirements(wheel: Path) -> list[str]:
    """keliu's own requirements (``Requires-Dist`` without an extra) from its wheel's METADATA."""
    with zipfile.ZipFile(wheel) as whl:
        meta = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
        msg = email.parser.BytesParser().parsebytes(whl.read(meta))
    return [r for r in msg.get_all("Requires-Dist", []) if "extra ==" not in r]


@pytest.fixture(scope="session")
def deps() -> Path:
    """keliu's dependencies and TEST_WHEELS as wheels for Debian's python3, with ``requirements.txt`` (keliu's own)
    and ``test-requirements.txt``; cached by the hash of pyproject.toml. The image gets them installed (mkimage.sh),
    each run's wheelhouse links them."""
    _require_host()
    require(Path("/usr/bin/python3").exists(), "Debian's python3 builds the wheelhouse")
    python = _builder()
    version = subprocess.run([str(python), "-VV"], check=True, capture_output=True, text=True).stdout
    key = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + version.encode() + repr(TEST_WHEELS).encode()
                         + b"requirements.txt").hexdigest()[:16]
    out = CACHE / f"wheels-{key}"
    if not (out / "ok").exists():
        tmp = CACHE / f"wheels-{key}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run([*_pip_wheel(python), "-w", str(tmp), str(ROOT), *TEST_WHEELS], check=True, timeout=1800)
        for whl in tmp.glob("keliu-*.whl"):
            (tmp / "requirements.txt").write_text("\n".join(_requirements(whl)) + "\n", encoding="utf-8")
            whl.unlink()
        (tmp / "test-requirements.txt").write_text("\n".join(TEST_WHEELS) + "\n", encoding="utf-8")
        (tmp / "ok").touch()
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    return out


def _pip_wheel(python: Path) -> list[str]:
    return [str(python), "-m", "pip", "-q", "--disable-pip-version-check", "wheel"]


@pytest.fixture(scope="session")
def wheelhouse(run_dir: Path, deps: Path) -> Path:
    """What provision.sh --wheels installs from: keliu's dependencies and a fresh wheel of this tree, in one folder."""
    out = run_dir / "wheels"
    out.mkdir()
    for whl in deps.glob("*.whl"):
        os.link(whl, out / whl.name)
    subprocess.run([*_pip_wheel(_builder()), "--no-deps", "-w", str(out), str(ROOT)], check=True, timeout=600)
    return out


UPGRADE_REVISION = '''"""test only (tests/vm): the migration of a newer keliu, for the upgrade by provision.sh

Revision ID: vmupgrade_0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "vmupgrade_0001"
down_revision = None
branch_labels = ("vmupgrade",)
depends_on = None


def upgrade() -> None:
    op.create_table("vm_upgrade_probe", sa.Column("id", sa.Integer(), primary_key=True))


def downgrade() -> None:
    op.drop_table("vm_upgrade_probe")
'''


def newer_wheel(run_dir: Path) -> Path:
    """A wheel of this tree as the next release: version ``<v>.post1`` and one more alembic revision (a new branch
    that adds a table), written to ``<run>/wheels/next/`` (the VM sees it at /mnt/wheels/next)."""
    src = run_dir / "next-src"
    shutil.rmtree(src, ignore_errors=True)
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    vendor = Path("dashboards") / "builtin" / "static" / "vendor"  # git-ignored, built by `make assets`
    if (ROOT / vendor).is_dir():
        shutil.copytree(ROOT / vendor, src / vendor, dirs_exist_ok=True)
    pyproject = (src / "pyproject.toml").read_text(encoding="utf-8")
    version = re.search(r'^version = "([^"]+)"$', pyproject, re.MULTILINE)
    assert version is not None
    (src / "pyproject.toml").write_text(pyproject.replace(version.group(0), f'version = "{version.group(1)}.post1"',
                                                          1), encoding="utf-8")
    (src / "keliu" / "migrations" / "versions" / "vmupgrade_0001.py").write_text(UPGRADE_REVISION, encoding="utf-8")
    out = run_dir / "wheels" / "next"
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([*_pip_wheel(_builder()), "--no-deps", "-w", str(out), str(src)], check=True, timeout=600)
    (wheel,) = out.glob("keliu-*.whl")
    return wheel


@pytest.fixture(scope="module")
def router(request: pytest.FixtureRequest, vm_image: Path, wheelhouse: Path, run_dir: Path) -> Iterator[Machine]:
    """A booted VM with keliu provisioned by provision.sh, its WAN on the test's "internet" namespace."""
    rundir = run_dir / request.module.__name__.rsplit(".", 1)[-1]
    rundir.mkdir()
    vm = Machine(vm_image, rundir, {"keliu": ROOT, "wheels": wheelhouse},
                 accel=os.environ.get("KELIU_VM_ACCEL", "tcg"))
    vm.start()
    try:
        vm.sh("mount -t 9p -o trans=virtio,version=9p2000.L,ro keliu /mnt/keliu && "
              "mount -t 9p -o trans=virtio,version=9p2000.L,ro wheels /mnt/wheels")
        vm.sh("systemctl is-system-running --wait || true", timeout=300)
        # a veth, a key, dnsmasq and python3: 60 s was too short at load 10 (the boot alone took 3 min there)
        vm.sh("bash /mnt/keliu/tests/vm/guest.sh internet", timeout=300)
        # 15 min measured on a 2-core host at load 7-10, past 30 min (the VM at nice 10) at load 10-18
        vm.provision = vm.run(PROVISION, timeout=3600)
        yield vm
    finally:
        try:
            if vm.proc is not None and vm.proc.poll() is None:
                (rundir / "journal.log").write_text(vm.run("journalctl -b --no-pager -o short-monotonic",
                                                           timeout=120).out, encoding="utf-8")
        except AssertionError:
            pass
        clean = vm.shutdown()
        failed = request.session.config.stash.get(FAILED, [])
        if not failed and clean:
            (rundir / "disk.qcow2").unlink(missing_ok=True)
        else:
            sys.stderr.write(f"\nVM logs kept in {rundir} (console.log, transcript.log, journal.log)\n")
