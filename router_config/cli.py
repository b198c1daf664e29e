"""``keliu router``: render and apply the firewall, DHCP and AP config; the Gate by hand (edge).

A composition root: it loads the configuration, builds the Policy and calls the edges. Errors are
:class:`router_config.errors.RouterError` (a ``KeliuError``), printed by ``keliu`` as ``keliu: <message>``.
"""
from __future__ import annotations

import time
from pathlib import Path

import click

from router_config.model import Policy


def _policy() -> Policy:
    from keliu import config
    from router_config.model import policy_from

    cfg = config.load()
    return policy_from(cfg.router, cfg.portal)


netns_option = click.option("--netns", default=None, metavar="NAME",
                            help="Act in this network namespace (e.g. a bench's <prefix>-rtr).")


@click.group("router")
def router() -> None:
    """Render and apply the firewall, DHCP and AP config."""


@router.command("render")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write keliu.nft, dnsmasq.conf and hostapd.conf here instead of printing them.")
def render_cmd(out: Path | None) -> None:
    """Print (or write) the nftables table, the dnsmasq and the hostapd configuration."""
    from router_config import render

    p = _policy()
    files = {"keliu.nft": render.nftables(p), "dnsmasq.conf": render.dnsmasq(p), "hostapd.conf": render.hostapd(p)}
    if out is None:
        for name, text in files.items():
            click.echo(f"# ---- {name}")
            click.echo(text, nl=False)
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
        click.echo(f"wrote {out / name}")


@router.command("apply")
@netns_option
@click.option("--replace", is_flag=True, help="Delete and re-create the table (clients are lost until reconcile).")
def apply_cmd(netns: str | None, replace: bool) -> None:
    """Atomically make the inet keliu table match the configuration (logged-in clients stay)."""
    from router_config import nft

    nft.apply(_policy(), netns, replace=replace)
    click.echo("inet keliu applied")


@router.command("status")
@netns_option
def status_cmd(netns: str | None) -> None:
    """Is the table there, and how many clients are allowed."""
    from router_config import nft
    from router_config.errors import NftError
    from router_config.gate import NftGate

    if not nft.table_exists(netns):
        raise NftError("table inet keliu is not applied (run `keliu router apply`)")
    with NftGate(_policy(), netns=netns, cut_connections=False) as gate:
        clients = gate.clients()
    click.echo(f"table inet keliu: applied; {len(clients)} client(s) allowed")


@router.command("clients")
@netns_option
def clients_cmd(netns: str | None) -> None:
    """List allowed clients: MAC, IPv4, seconds left, bytes up and down."""
    from router_config.gate import NftGate

    with NftGate(_policy(), netns=netns, cut_connections=False) as gate:
        for c in gate.clients():
            left = "-" if c.expires_in is None else f"{c.expires_in:.0f}s"
            click.echo(f"{c.mac}  {c.ip:<15}  {left:>8}  up {c.bytes_up}  down {c.bytes_down}")


@router.command("allow")
@netns_option
@click.argument("mac")
@click.argument("ip")
@click.option("--minutes", type=click.IntRange(min=1), default=None,
              help="Session length (default: router.client_timeout_minutes).")
def allow_cmd(netns: str | None, mac: str, ip: str, minutes: int | None) -> None:
    """Let MAC at IP onto the internet."""
    from keliu.gate import AllowClient
    from router_config.gate import NftGate
    from router_config.model import client_key

    p = _policy()
    mac, ip = client_key(mac, ip)  # a bad value is named before any netlink socket is opened
    minutes = minutes or p.router.client_timeout_minutes
    with NftGate(p, netns=netns) as gate:
        gate.execute(AllowClient(mac, ip, time.time() + 60 * minutes))
    click.echo(f"allowed {mac} {ip} for {minutes} min")


@router.command("revoke")
@netns_option
@click.argument("mac")
def revoke_cmd(netns: str | None, mac: str) -> None:
    """Close the internet to MAC and cut its open connections."""
    from keliu.gate import RevokeClient
    from router_config.gate import NftGate
    from router_config.model import client_mac

    mac = client_mac(mac)
    with NftGate(_policy(), netns=netns) as gate:
        gate.execute(RevokeClient(mac))
    click.echo(f"revoked {mac}")


@router.command("monitor")
@click.option("--phy", type=click.IntRange(min=0), default=None, help="Wireless phy index (default: router.monitor_phy).")
@click.option("--name", default=None, help="Interface name (default: router.monitor_iface).")
@click.option("--remove", is_flag=True, help="Delete the interface instead.")
def monitor_cmd(phy: int | None, name: str | None, remove: bool) -> None:
    """Create (or remove) the sensor's monitor-mode interface through nl80211."""
    from keliu import config
    from router_config import monitor

    r = config.load().router
    ifname = name or r.monitor_iface
    if remove:
        click.echo(f"removed {ifname}" if monitor.remove(ifname) else f"no {ifname}")
        return
    index = monitor.create(ifname, r.monitor_phy if phy is None else phy)
    click.echo(f"{ifname} (ifindex {index}) is up in monitor mode")
