"""The mall's device key reaches a router sealed to its certificate: the CLI round trip (central: export; router:
import into var/keys/device_hmac, 0600), no clear key in the file, and every wrong box refused."""
from __future__ import annotations

import base64
import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from keliu.errors import ConfigError
from keliu.fleet import ca, keybox
from keliu.fleet.cli import fleet

NOW = datetime.now(UTC)
SECRET = bytes(range(32))


@pytest.fixture
def fleet_dir(tmp_path: Path) -> Path:
    d = tmp_path / "central" / "fleet"
    ca.init_ca(d, NOW)
    ca.issue(d, "keliu_router_s1", NOW)
    ca.issue(d, "keliu_router_s2", NOW)
    return d


def cert(d: Path, name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((d / f"{name}.pem").read_bytes())


def key(d: Path, name: str) -> object:
    return serialization.load_pem_private_key((d / f"{name}.key").read_bytes(), password=None)


def test_cli_round_trip_and_no_clear_key(fleet_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mall_key = tmp_path / "device_hmac"
    mall_key.write_bytes(SECRET)
    box = tmp_path / "s1.keybox"
    runner = CliRunner()
    central = runner.invoke(fleet, ["key", "export", "--to", str(fleet_dir / "keliu_router_s1.pem"), "--out",
                                    str(box), "--from", str(mall_key), "--ca", str(fleet_dir)])
    assert central.exit_code == 0, central.output
    data = box.read_bytes()
    for form in (SECRET, SECRET.hex().encode(), base64.b64encode(SECRET), base64.b64encode(SECRET[:24])):
        assert form not in data
    # on the router: its own var dir, its key and certificate
    router_var = tmp_path / "router" / "var"
    monkeypatch.setenv("KELIU_VAR_DIR", str(router_var))
    args = ["key", "import", str(box), "--identity", str(fleet_dir / "keliu_router_s1.key"),
            "--cert", str(fleet_dir / "keliu_router_s1.pem")]
    router = runner.invoke(fleet, args)
    assert router.exit_code == 0, router.output
    installed = router_var / "keys" / "device_hmac"
    assert installed.read_bytes() == SECRET
    assert stat.S_IMODE(installed.stat().st_mode) == 0o600
    # again: nothing changes; a different key in place is never replaced
    assert runner.invoke(fleet, args).exit_code == 0
    installed.write_bytes(b"x" * 32)
    again = runner.invoke(fleet, args)
    assert isinstance(again.exception, ConfigError) and "another key" in str(again.exception)
    assert installed.read_bytes() == b"x" * 32
    # router s2 cannot open s1's box
    other = runner.invoke(fleet, ["key", "import", str(box), "--identity", str(fleet_dir / "keliu_router_s2.key")])
    assert isinstance(other.exception, ConfigError)


def test_every_wrong_box_is_refused(fleet_dir: Path, tmp_path: Path) -> None:
    s1 = cert(fleet_dir, "keliu_router_s1")
    box = keybox.seal(SECRET, "device_hmac", s1)
    assert keybox.open_box(box, key(fleet_dir, "keliu_router_s1"), s1) == ("device_hmac", SECRET)  # type: ignore[arg-type]
    # another router's key, or checked against another certificate
    with pytest.raises(ConfigError, match="does not open"):
        keybox.open_box(box, key(fleet_dir, "keliu_router_s2"))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="another router"):
        keybox.open_box(box, key(fleet_dir, "keliu_router_s1"), cert(fleet_dir, "keliu_router_s2"))  # type: ignore[arg-type]
    # any field changed: the header is authenticated, the ciphertext too
    fields = json.loads(box)
    ct = base64.b64decode(fields["ct"])
    flipped = base64.b64encode(bytes([ct[0] ^ 1]) + ct[1:]).decode()
    for field, value in (("name", "token_hmac"), ("to", "00" * 32), ("ct", flipped)):
        with pytest.raises(ConfigError):
            keybox.open_box(json.dumps({**fields, field: value}).encode(), key(fleet_dir, "keliu_router_s1"))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="not a keliu key file"):
        keybox.open_box(b"\x00garbage", key(fleet_dir, "keliu_router_s1"))  # type: ignore[arg-type]
    # a certificate the fleet's CA did not sign gets no key
    rogue = tmp_path / "rogue"
    ca.init_ca(rogue, NOW)
    ca.issue(rogue, "keliu_router_s1", NOW)
    _, ca_cert = ca.load_ca(fleet_dir)
    keybox.check_issued_by(s1, ca_cert)
    with pytest.raises(ConfigError, match="not signed by the fleet's CA"):
        keybox.check_issued_by(cert(rogue, "keliu_router_s1"), ca_cert)
