"""First-run secrets in ``var/`` (an edge: it reads and writes files).

Secrets have no defaults in code or in the repository. The first time a component asks for one, a random value
is generated and written to ``<var_dir>/keys/<name>`` with mode 0600; later runs read it back. Nothing here logs a
secret's value. A secret given in the configuration (for a real deployment, from the environment) wins.
"""
from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from keliu.errors import ConfigError

#: name -> number of random bytes
KNOWN = {
    "device_hmac": 32,  # keys device ids (sensor/identity); rotated per privacy mode by derivation
    "flask_secret": 32,  # signs the portal's session cookies
    "token_hmac": 32,  # signs single-use tokens (WeChat extend, logout links)
    "sms_pepper": 32,  # keys the hashes of SMS codes at rest
    "accesslog_ed25519": 32,  # the Ed25519 seed signing the access log's anchors and purges (keliu.accesslog)
}


def secret_bytes(var_dir: str | Path, name: str) -> bytes:
    """Return the secret ``name``, generating it on first use.

    A key file shorter than 16 bytes (empty, truncated) is an error, never a key: an empty ``device_hmac`` or
    ``token_hmac`` would make device ids and tokens computable by anyone.
    """
    if name not in KNOWN:
        raise ConfigError(f"keys.{name}", "unknown secret")
    path = Path(var_dir) / "keys" / name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = _create(path, secrets.token_bytes(KNOWN[name]))
    if len(data) < 16:
        raise ConfigError(f"keys.{name}", f"{path} is shorter than 16 bytes; delete it to regenerate")
    return data


def admin_password(var_dir: str | Path) -> str:
    """The demo admin's password: generated once, readable so ``make demo`` can print it to its operator."""
    return login_password(var_dir, "admin")


def login_password(var_dir: str | Path, user: str) -> str:
    """A generated login password of ``user`` (``var/keys/<user>_password``): the first admin's, and the demo's
    store manager and mall operator. Generated once, readable so that ``make demo`` can print it."""
    if not user.replace("-", "").replace("_", "").isalnum():
        raise ConfigError("keys.login_password", f"not a plain user name: {user!r}")
    name = f"{user}_password"
    path = Path(var_dir) / "keys" / name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = _create(path, secrets.token_urlsafe(12).encode("ascii"))
    password = data.decode("ascii").strip()
    if len(password) < 12:
        raise ConfigError(f"keys.{name}", f"{path} is shorter than 12 characters; delete it to regenerate")
    return password


def _create(path: Path, data: bytes) -> bytes:
    """Publish ``data`` at ``path`` unless another process got there first; return what ``path`` now holds.

    Processes starting together on first run race here. The key is written whole and fsynced to a private temporary
    file in the same directory, then hard-linked into place: ``link`` fails if ``path`` exists, so exactly one
    writer wins, and ``path`` never names a partly written file (``O_CREAT | O_EXCL`` on ``path`` itself let a
    reader see it empty). The losers read the winner's key.
    """
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o600)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return path.read_bytes()
    finally:
        os.unlink(tmp)
    _fsync_dir(directory)
    return data


def _fsync_dir(directory: Path) -> None:
    """Make the new directory entry durable: a power cut must not bring back a first run with a different key."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
