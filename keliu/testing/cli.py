"""``keliu bench``: the network-namespace test bench (router, internet, DHCP phones) for trying the portal by hand
(test support; an edge: namespaces, processes)."""
from __future__ import annotations

import click


@click.group("bench")
def bench() -> None:
    """The network-namespace bench (router, internet, DHCP phones) for trying the portal by hand."""


@bench.command("up")
@click.option("--prefix", default="klr", show_default=True)
@click.option("--phones", type=click.IntRange(0, 200), default=1, show_default=True)
@click.option("--portal-port", type=click.IntRange(1, 65535), default=8080, show_default=True)
def bench_up(prefix: str, phones: int, portal_port: int) -> None:
    """Build the bench and leave it running; `keliu bench down` removes it."""
    from keliu import config
    from keliu.testing.netbench import Bench

    b = Bench(prefix, phones=phones, portal_port=portal_port, cfg=config.load().router)
    b.start()
    b.detach()
    click.echo(f"router: ip netns exec {b.router} …   (portal must listen on {b.portal_address[0]}:"
               f"{b.portal_address[1]})")
    click.echo(f"internet: {b.inet}   CA: {b.ca_file}")
    for ph in b.phones:
        click.echo(f"phone {ph.index}: {ph.ns}  {ph.mac}  {ph.ip}")


@bench.command("down")
@click.option("--prefix", default="klr", show_default=True)
def bench_down(prefix: str) -> None:
    """Remove the bench PREFIX (only what its state file lists)."""
    from keliu.testing.netbench import Bench

    click.echo("removed" if Bench.down(prefix) else f"no bench {prefix!r}")
