"""Rollups as InfluxDB line protocol (``lines``: pure) and the writer (``write``: an edge, via influxdb-client).

The schema is fixed in docs/CONTRACTS.md: measurement ``traffic`` tagged only ``mall``, ``store`` and ``period``,
and ``sensor_health`` tagged ``mall``, ``store`` and ``sensor`` — never a device id (unbounded series cardinality,
and personal data). Timestamps are the period start in epoch seconds (precision ``s``).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from analytics.errors import InfluxError
from analytics.metrics import DWELL_FIELDS
from keliu.redaction import redact_url

INT_FIELDS = ("visitors", "passersby", "new_visitors", "repeat_visitors", "wifi_logins", "new_members",
              *DWELL_FIELDS)
FLOAT_FIELDS = ("capture_rate", "median_dwell_s")


def _tag(value: object) -> str:
    s = str(value)
    if not s:
        return "-"
    return s.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _float(value: object) -> str:
    return repr(float(value))  # type: ignore[arg-type]


def lines(rollups: Iterable[Mapping[str, Any]], heard_until: float | None = None) -> list[str]:
    """One ``traffic`` point per rollup row (as written by the pipeline: mall, store, period, start, fields). An
    hour or 5 minutes starting after ``heard_until`` (the store's newest sighting) has no data yet: no point, so
    that a dashboard draws nothing there rather than 0 (the reports say None)."""
    out = []
    for r in rollups:
        if heard_until is not None and r["period"] != "1d" and r["start"] > heard_until:
            continue
        fields = [f"{k}={int(r[k])}i" for k in INT_FIELDS] + [f"{k}={_float(r[k])}" for k in FLOAT_FIELDS]
        out.append(f"traffic,mall={_tag(r['mall'])},period={_tag(r['period'])},store={_tag(r['store'])} "
                   f"{','.join(fields)} {int(r['start'])}")
    return out


def health_lines(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """One ``sensor_health`` point per record (mall, store, sensor, ts, fps, drops, last_frame_age_s)."""
    return [f"sensor_health,mall={_tag(r['mall'])},sensor={_tag(r['sensor'])},store={_tag(r['store'])} "
            f"fps={_float(r['fps'])},drops={int(r['drops'])}i,last_frame_age_s={_float(r['last_frame_age_s'])} "
            f"{int(r['ts'])}" for r in records]


def write(url: str, token: str | None, org: str, bucket: str, records: list[str]) -> None:
    """POST line protocol through influxdb-client's ``/api/v2/write`` (InfluxDB 1.8+/2.x/3.x, VictoriaMetrics)."""
    if not records:
        return
    from influxdb_client.client.influxdb_client import InfluxDBClient
    from influxdb_client.client.write_api import SYNCHRONOUS
    from influxdb_client.domain.write_precision import WritePrecision
    from influxdb_client.rest import ApiException
    from urllib3.exceptions import HTTPError

    try:
        with InfluxDBClient(url=url, token=token or "", org=org, timeout=10_000) as client:
            client.write_api(write_options=SYNCHRONOUS).write(bucket=bucket, org=org, record=records,
                                                              write_precision=WritePrecision.S)
    except (ApiException, HTTPError, OSError) as exc:
        raise InfluxError(redact_url(f"writing {len(records)} points to {url}: {exc}")) from exc
