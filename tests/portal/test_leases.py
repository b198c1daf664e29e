"""dnsmasq's lease file read from disk (the edge), and where the portal looks for it (``[portal] dhcp_leases``)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from keliu import config
from portal.core.binding import NO_LEASE_FILE, Lease
from portal.edges import leases


def test_reads_the_leases_of_a_real_file(tmp_path: Path) -> None:
    path = tmp_path / "dnsmasq.leases"
    path.write_bytes(b"1795003600 3c:22:fb:00:00:01 10.77.0.20 \xff-phone 01:3c:22:fb:00:00:01\n")
    assert leases.read(leases.LeaseFile(str(path))) == (
        Lease(1795003600, "3c:22:fb:00:00:01", "10.77.0.20", "\ufffd-phone", "01:3c:22:fb:00:00:01"),)


def test_a_missing_or_unreadable_file_is_none_and_none_configured_is_said_so(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert leases.read(leases.LeaseFile(str(tmp_path / "absent"))) is None
    assert leases.read(leases.LeaseFile(str(tmp_path))) is None  # a directory
    assert "unreadable" in caplog.text
    if os.geteuid() != 0:  # root reads a mode-000 file all the same
        path = tmp_path / "locked"
        path.write_text("")
        path.chmod(0)
        assert leases.read(leases.LeaseFile(str(path))) is None
    assert leases.read(None) is NO_LEASE_FILE


@pytest.mark.parametrize(("portal", "expected"), [
    ({"gate": "nft"}, "/var/lib/misc/dnsmasq.leases"),
    ({"gate": "nft", "dhcp_leases": "/tmp/dhcp.leases"}, "/tmp/dhcp.leases"),  # OpenWrt's
    ({"gate": "memory"}, ""),
    ({"gate": "memory", "dhcp_leases": "/srv/leases"}, "/srv/leases"),
])
def test_where_the_lease_file_is(portal: dict[str, str], expected: str) -> None:
    assert config.build({"portal": portal}).portal.dhcp_leases == expected
    assert config.build({}, {"KELIU_PORTAL_DHCP_LEASES": "/x/leases"}).portal.dhcp_leases == "/x/leases"
