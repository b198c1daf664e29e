from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path
from typing import Any

import pytest

from keliu import keys
from keliu.errors import ConfigError


def test_secret_generated_once_with_mode_0600(tmp_path: Path) -> None:
    first = keys.secret_bytes(tmp_path, "device_hmac")
    assert len(first) == 32
    path = tmp_path / "keys" / "device_hmac"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keys.secret_bytes(tmp_path, "device_hmac") == first
    assert keys.secret_bytes(tmp_path, "flask_secret") != first


def test_admin_password_stable_and_private(tmp_path: Path) -> None:
    pw = keys.admin_password(tmp_path)
    assert len(pw) >= 12 and keys.admin_password(tmp_path) == pw
    assert stat.S_IMODE((tmp_path / "keys" / "admin_password").stat().st_mode) == 0o600


def test_unknown_or_truncated_secret_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        keys.secret_bytes(tmp_path, "nope")
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "token_hmac").write_bytes(b"short")
    with pytest.raises(ConfigError, match="shorter than 16 bytes"):
        keys.secret_bytes(tmp_path, "token_hmac")


def _first_run_worker(root: str, rounds: int, barrier: Any, results: Any) -> None:
    """One of the processes starting together: every round, wait for the others, then ask for the keys at once."""
    for n in range(rounds):
        var = Path(root) / str(n)
        barrier.wait()
        got: list[tuple[str, bytes | str, int]] = []
        for name in ("device_hmac", "token_hmac"):
            try:
                key: bytes | str = keys.secret_bytes(var, name)
            except ConfigError as exc:
                key = f"error: {exc}"
            mode = stat.S_IMODE((var / "keys" / name).stat().st_mode)
            got.append((name, key, mode))
        results.put((n, got))


def test_processes_starting_together_all_get_the_same_full_key(tmp_path: Path) -> None:
    """Attack review #10: the first-run race let a process read (and use) an empty key, or fail.

    Real processes, released together by a barrier, each round in a fresh var dir: every one must get the same
    full-length key, and the file must stay 0600 with no temporary file left beside it.
    """
    workers, rounds = 4, 300
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(workers, timeout=60)
    results = ctx.Queue()
    procs = [ctx.Process(target=_first_run_worker, args=(str(tmp_path), rounds, barrier, results))
             for _ in range(workers)]
    for proc in procs:
        proc.start()
    try:
        by_round: dict[int, list[list[tuple[str, bytes | str, int]]]] = {}
        for _ in range(workers * rounds):
            n, got = results.get(timeout=120)
            by_round.setdefault(n, []).append(got)
    finally:
        for proc in procs:
            proc.join(timeout=60)
    assert [proc.exitcode for proc in procs] == [0] * workers
    bad = []
    for n, answers in sorted(by_round.items()):
        for i, name in enumerate(("device_hmac", "token_hmac")):
            seen = {answer[i][1] for answer in answers}
            modes = {answer[i][2] for answer in answers}
            on_disk = (tmp_path / str(n) / "keys" / name).read_bytes()
            if seen != {on_disk} or len(on_disk) != 32 or modes != {0o600}:
                bad.append((n, name, seen, modes))
        assert sorted(p.name for p in (tmp_path / str(n) / "keys").iterdir()) == ["device_hmac", "token_hmac"]
    assert len(by_round) == rounds
    assert bad == []


def test_an_empty_key_file_is_an_error_never_a_key(tmp_path: Path) -> None:
    """What a reader racing an old-style writer saw: an existing, empty file. It must fail loudly, not key HMACs."""
    (tmp_path / "keys").mkdir()
    for name in ("device_hmac", "token_hmac", "admin_password"):
        (tmp_path / "keys" / name).write_bytes(b"")
    for name in ("device_hmac", "token_hmac"):
        with pytest.raises(ConfigError, match="delete it to regenerate"):
            keys.secret_bytes(tmp_path, name)
    with pytest.raises(ConfigError, match="delete it to regenerate"):
        keys.admin_password(tmp_path)
