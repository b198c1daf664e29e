"""A monitor-mode interface for the foot-traffic sensor, created through nl80211 by pyroute2 (edge).

The sensor captures probe requests on a second, monitor-mode virtual interface of the access point's radio
(``iw phy phy0 interface add mon0 type monitor``, done here over netlink with no process spawned). A kernel without
a wireless driver has no ``nl80211`` generic-netlink family at all; :func:`unavailable` says so in words, and the
tests skip with that reason.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from router_config.errors import MonitorError

_ENOENT, _ENODEV = 2, 19


def _iw() -> Any:
    from pyroute2 import IW
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        return IW()
    except NetlinkError as exc:
        if exc.code == _ENOENT:
            raise MonitorError("no nl80211 in this kernel: no wireless driver is loaded") from exc
        raise MonitorError(f"nl80211: {exc}") from exc


def phys(sysfs: Path = Path("/sys/class/ieee80211")) -> list[int]:
    """Indexes of the wireless phys (``phy0`` → 0), from sysfs.

    Read from sysfs rather than asked of nl80211: without cfg80211 the netlink family does not exist, and a failed
    pyroute2 ``IW()`` leaves its event loop behind.
    """
    if not sysfs.is_dir():
        raise MonitorError("no nl80211 in this kernel: no wireless driver is loaded (/sys/class/ieee80211 absent)")
    found = []
    for entry in sysfs.iterdir():
        try:
            found.append(int((entry / "index").read_text(encoding="ascii").strip()))
        except (OSError, ValueError) as exc:
            raise MonitorError(f"unreadable {entry / 'index'}: {exc}") from exc
    return sorted(found)


def unavailable(phy: int) -> str | None:
    """Why a monitor interface cannot be created on ``phy`` here, or None if it can be tried."""
    try:
        found = phys()
    except MonitorError as exc:
        return str(exc)
    if phy not in found:
        return f"no wireless phy{phy} (phys: {', '.join(f'phy{p}' for p in found) or 'none'})"
    return None


def create(ifname: str, phy: int = 0) -> int:
    """Create monitor interface ``ifname`` on ``phy`` and bring it up; returns its ifindex. Idempotent."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    reason = unavailable(phy)
    if reason is not None:
        raise MonitorError(f"cannot create {ifname}: {reason}")
    with IPRoute() as ipr:
        existing = ipr.link_lookup(ifname=ifname)
        if not existing:
            iw = _iw()
            try:
                iw.add_interface(ifname, "monitor", phy=phy)
            except NetlinkError as exc:
                raise MonitorError(f"cannot create {ifname} on phy{phy}: {exc}") from exc
            finally:
                iw.close()
            existing = ipr.link_lookup(ifname=ifname)
        if not existing:
            raise MonitorError(f"{ifname} did not appear after creation")
        index = int(existing[0])
        try:
            ipr.link("set", index=index, state="up")
        except NetlinkError as exc:
            raise MonitorError(f"cannot bring {ifname} up: {exc}") from exc
        return index


def remove(ifname: str) -> bool:
    """Delete ``ifname`` if it exists; returns whether it did.

    Through nl80211 (``iw dev IFACE del``), as it was made: rtnetlink's link delete answers EOPNOTSUPP for a
    wireless virtual interface (found on mac80211_hwsim in the VM tests).
    """
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=ifname)
    if not found:
        return False
    iw = _iw()
    try:
        iw.del_interface(int(found[0]))
    except NetlinkError as exc:
        raise MonitorError(f"cannot delete {ifname}: {exc}") from exc
    finally:
        iw.close()
    return True
