"""keliu on a real Debian 12 router in a VM: provision.sh under systemd, hostapd on a simulated radio, a phone.

The router is the VM of ``router`` (conftest.py): provision.sh has run in it with the flags of docs/DEPLOY.md. The
tests run in file order on that one router, as one story: provisioned, a phone joins and logs in, the sensor has
counted it. Run with ``make test-vm``.
"""
from __future__ import annotations

import pytest

from tests.vm.machine import Machine

# the first test carries the image build (cold: about a minute) and provision.sh under TCG
pytestmark = [pytest.mark.vm, pytest.mark.timeout(2400)]
GUEST = "bash /mnt/keliu/tests/vm/guest.sh"
UNITS = ("keliu-router", "keliu-portal", "keliu-sensor", "keliu-analytics")


def test_provision_sh_runs_end_to_end(router: Machine) -> None:
    res = router.provision
    assert res is not None
    assert res.rc == 0, res.out[-3000:] + res.err[-3000:]
    assert "provision: done: WAN wan0, LAN br-lan 10.77.0.1/22" in res.out
    for unit in (*UNITS, "dnsmasq", "hostapd", "systemd-networkd"):
        assert router.run(f"systemctl is-active {unit}").out.strip() == "active", router.sh(
            f"systemctl status --no-pager {unit} || true; journalctl -b --no-pager -u {unit} | tail -40")
    assert "table inet keliu" in router.sh("nft list tables")
    # the AP's radio is a port of the LAN bridge, which holds the router's address
    assert "master br-lan" in router.sh("ip -o link show wlan0")
    assert "10.77.0.1/22" in router.sh("ip -o addr show br-lan")
    # keliu-sensor made the monitor interface on phy1 through nl80211
    assert "type monitor" in router.sh("iw dev mon0 info")
