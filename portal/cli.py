"""``keliu portal``: serve the captive portal with gunicorn (composition root of the portal's process)."""
from __future__ import annotations

import click


@click.command("portal")
@click.option("--host", default=None, help="Listen address (default: [portal] host, 127.0.0.1).")
@click.option("--port", default=None, type=click.IntRange(1, 65535), help="Port (default: [portal] port, 8080).")
@click.option("--listener", type=click.Choice(["http", "https", "captive"]), default="http", hidden=True)
@click.option("--after-master", is_flag=True, hidden=True, help="A listener child: wait for the master's go on stdin.")
def portal(host: str | None, port: int | None, listener: str, after_master: bool) -> None:
    """Serve the captive portal, member pages, admin and dashboard with gunicorn, and the captive front (the
    port the router sends a captive phone's HTTP to) beside it."""
    # on use only: `keliu portal --help` (and `keliu --help`) need neither gunicorn nor the app
    from portal.serve.server import serve

    serve(host, port, listener, after_master)
