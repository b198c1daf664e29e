"""First-run secrets in ``var/`` (an edge: it reads and writes files).

Secrets have no defaults in code or in the repository. The first time a component asks for one, a random value
is generated and written to ``<var_dir>/keys/<name>`` with mode 0600; later runs read it back. Nothing here logs a
secret's value. A secret given in the configuration (for a real deployment, from the environment) wins.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from keliu.errors import ConfigError

#: name -> number of random bytes
KNOWN = {
    "device_hmac": 32,  # keys device ids (sensor/identity); rotated per privacy mode by derivation
    "flask_secret": 32,  # signs the portal's session cookies
    "token_hmac": 32,  # signs single-use tokens (WeChat extend, logout links)
    "sms_pepper": 32,  # keys the hashes of SMS codes at rest
}


def secret_bytes(var_dir: str | Path, name: str) -> bytes:
    """Return the secret ``name``, generating it on first use."""
    if name not in KNOWN:
        raise ConfigError(f"keys.{name}", "unknown secret")
    path = Path(var_dir) / "keys" / name
    if path.exists():
        data = path.read_bytes()
        if len(data) < 16:
            raise ConfigError(f"keys.{name}", f"{path} is shorter than 16 bytes; delete it to regenerate")
        return data
    return _create(path, secrets.token_bytes(KNOWN[name]))


def admin_password(var_dir: str | Path) -> str:
    """The demo admin's password: generated once, readable so ``make demo`` can print it to its operator."""
    path = Path(var_dir) / "keys" / "admin_password"
    if path.exists():
        return path.read_text(encoding="ascii").strip()
    return _create(path, secrets.token_urlsafe(12).encode("ascii")).decode("ascii")


def _create(path: Path, data: bytes) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    # O_EXCL: two processes starting at once must not both write different keys.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return data
