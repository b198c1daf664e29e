from __future__ import annotations

import stat
from pathlib import Path

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
