"""The (MAC . IP) binding decisions and the lease-file parser (pure: plain values in, a reason or None out)."""
from __future__ import annotations

import pytest

from portal.core import binding
from portal.core.binding import NO_LEASE_FILE, Bound, Lease

KEY = b"k" * 32
NOW = 1_795_000_000.0
MAC, OTHER_MAC = "3c:22:fb:00:00:01", "3c:22:fb:00:00:02"
IP, OTHER_IP = "10.77.0.20", "10.77.0.99"


def tlease(mac: str = MAC, ip: str = IP, hostname: str = "Zhangs-phone", client_id: str = "01:3c:22:fb:00:00:01",
           expiry: int = int(NOW) + 3600) -> Lease:
    return Lease(expiry, mac, ip, hostname, client_id)


LEASE = tlease()
TAG = binding.lease_tag(KEY, LEASE)


def test_parse_reads_ipv4_leases_and_skips_dhcpv6_and_junk() -> None:
    text = ("1795003600 3C:22:FB:00:00:01 10.77.0.20 Zhangs-phone 01:3c:22:fb:00:00:01\n"
            "0 3c:22:fb:00:00:02 10.77.0.21 * *\n"
            "garbage line\n"
            "1795003600 3c:22:fb:00:00:03 10.77.0.300 x *\n"
            "duid 00:01:00:01:2c:5e:6f:70:02:00:00:00:00:01\n"
            "1795003600 1234 2001:db8:77::5 phone 00:01:00:01\n")
    assert binding.parse(text) == (
        Lease(1795003600, "3c:22:fb:00:00:01", "10.77.0.20", "Zhangs-phone", "01:3c:22:fb:00:00:01"),
        Lease(0, "3c:22:fb:00:00:02", "10.77.0.21", "*", "*"))
    assert binding.parse("") == ()


def test_lease_tag_hides_the_values_and_changes_with_them() -> None:
    assert len(TAG) == 16 and "phone" not in TAG
    assert binding.lease_tag(KEY, tlease(hostname="other")) != TAG
    assert binding.lease_tag(KEY, tlease(client_id="ff:00:00:00:01")) != TAG
    assert binding.lease_tag(KEY, tlease(expiry=0, ip=OTHER_IP)) == TAG  # only what the client sent
    assert binding.lease_tag(b"j" * 32, LEASE) != TAG


@pytest.mark.parametrize(("leases", "mac", "ip", "tag"), [
    ((LEASE,), MAC, IP, TAG),
    ((LEASE,), MAC.upper(), IP, TAG),
    ((tlease(expiry=0),), MAC, IP, TAG),  # an infinite lease
    ((tlease(expiry=int(NOW) - 1),), MAC, IP, None),  # expired
    ((LEASE,), MAC, OTHER_IP, None),  # no lease on the address
    ((tlease(mac=OTHER_MAC),), MAC, IP, None),  # the address is another device's lease
    (None, MAC, IP, None),  # the file is unreadable: the login goes ahead, unconfirmed
    (NO_LEASE_FILE, MAC, IP, None),
])
def test_tag_at_login(leases: binding.Leases, mac: str, ip: str, tag: str | None) -> None:
    assert binding.tag_at_login(leases, mac, ip, KEY, NOW) == tag


@pytest.mark.parametrize(("session_ip", "ip", "leases", "refusal"), [
    (IP, IP, (LEASE,), None),  # the Gate lost the pair: re-allowed
    (IP, IP, (LEASE, tlease(ip="10.77.0.21", mac=OTHER_MAC)), None),
    (IP, IP, NO_LEASE_FILE, None),  # the demo: the address alone
    (IP, OTHER_IP, (LEASE, tlease(ip=OTHER_IP)), "other_ip"),  # a clone of the MAC at another address
    (IP, OTHER_IP, NO_LEASE_FILE, "other_ip"),
    (IP, IP, None, "leases_unreadable"),  # fail closed
    (IP, IP, (), "no_lease"),
    (IP, IP, (tlease(expiry=int(NOW) - 1),), "no_lease"),
    (IP, IP, (tlease(mac=OTHER_MAC),), "lease_of_other_mac"),  # the address is another device's now
])
def test_heal_refusal(session_ip: str, ip: str, leases: binding.Leases, refusal: str | None) -> None:
    assert binding.heal_refusal(session_ip, MAC, ip, leases, NOW) == refusal


@pytest.mark.parametrize(("bound", "ip", "leases", "refusal"), [
    (Bound(IP, TAG), IP, (LEASE,), None),  # the same phone on the same lease, days later
    (Bound(IP, TAG), IP, (tlease(expiry=int(NOW) + 99),), None),  # its lease renewed (the same address)
    (Bound(IP, TAG), IP, (LEASE, tlease(ip="10.77.0.21", mac=OTHER_MAC, client_id="x")), None),
    (Bound(IP, None), IP, NO_LEASE_FILE, None),  # the demo: the address alone
    (None, IP, (LEASE,), "not_bound"),  # remembered before bindings, or never logged in in this store
    (Bound(IP, TAG), OTHER_IP, (tlease(ip=OTHER_IP),), "other_ip"),
    (Bound(IP, TAG), IP, None, "leases_unreadable"),
    (Bound(IP, TAG), IP, (), "no_lease"),
    (Bound(IP, TAG), IP, (tlease(mac=OTHER_MAC),), "lease_of_other_mac"),
    (Bound(IP, None), IP, (LEASE,), "lease_unconfirmed_at_login"),
    (Bound(IP, TAG), IP, (tlease(client_id="01:de:ad:be:ef:00:01"),), "lease_changed"),  # another DHCP client
    (Bound(IP, TAG), IP, (tlease(hostname="*"),), "lease_changed"),
    # the victim's own lease, while a clone holds another one of the same MAC: the victim is not refused
    (Bound(IP, TAG), IP, (LEASE, tlease(ip=OTHER_IP, hostname="clone", client_id="*")), None),
    (Bound(IP, TAG), IP, (tlease(expiry=int(NOW) - 5),), "no_lease"),  # expired
])
def test_reauth_refusal(bound: Bound | None, ip: str, leases: binding.Leases, refusal: str | None) -> None:
    assert binding.reauth_refusal(bound, MAC, ip, leases, KEY, NOW) == refusal
