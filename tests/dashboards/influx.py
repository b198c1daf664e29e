"""A small InfluxQL client for the dashboards' tests (an edge). The server itself is started by
``tests.analytics.servers.influxdb1`` (Debian's ``influxd`` on free loopback ports with a temporary directory)."""
from __future__ import annotations

import json
import urllib.parse
import urllib.request
from typing import Any


class Influx:
    """``query`` (InfluxQL, JSON results, epoch seconds) and ``write`` (line protocol, precision seconds)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, q: str, db: str | None = None) -> dict[str, Any]:
        params = {"q": q, "epoch": "s"}
        if db:
            params["db"] = db
        with urllib.request.urlopen(f"{self.url}/query?{urllib.parse.urlencode(params)}", timeout=20) as r:
            return dict(json.loads(r.read()))

    def write(self, db: str, lines: list[str]) -> None:
        req = urllib.request.Request(f"{self.url}/write?db={db}&precision=s", data="\n".join(lines).encode(),
                                     method="POST")
        with urllib.request.urlopen(req, timeout=20) as r:
            if r.status != 204:
                raise RuntimeError(f"InfluxDB write failed: {r.status} {r.read()!r}")
