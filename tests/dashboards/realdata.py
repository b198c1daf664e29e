"""The known scenario through the real analytics pipeline (an edge: writes the app's database).

Sightings are built with analytics' own test builders, stored with ``insert_sightings`` and rolled up by
``analytics.pipeline`` exactly as the Celery tasks do; the dashboards then read them through ``analytics.report``.

On DAY (2026-01-05, a Monday) in mall m1: store s1 has visitors a (10 min), b (40 min), c (25 min) and passers-by
p, q; shopper a walks on to s2 (15 min), where d stays 30 min and p passes. One week earlier s1 had visitor a
(20 min) and passer-by r. Store s3 in mall m2 has never heard anything. On DAY s1's AP lists two stations
(connected shoppers, exact): w1 for 30 min and w2 for 3 min (no visit); w1 walks on to s2 and is on its guest Wi-Fi
for 20 min (the same station id: one device key and one guest SSID in the mall), so the mall has one connected
shopper. s1's AP poller read the station list from 10:00 to 16:00 but not from 12:00 to 13:00 (60 of the 72 opening
slots up to its last read: coverage 5/6); s2's recorded no read (a poller older than the records).
"""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine

from analytics import pipeline
from keliu.config import Config
from sensor import store as sensor_store
from sensor.records import Sighting
from tests.analytics.builders import DAY, DAY_START, tpolls, tsighting, tstation, tvisit

H = 3600
WEEK = 7 * 86400
NOW = DAY_START + 18 * H  #: the app's clock: 18:00 store-local on DAY
PREVIOUS = DAY - timedelta(days=7)


def passer(name: str, t: float, store_id: str) -> list[Sighting]:
    return [tsighting(t, name, -85, store_id), tsighting(t + 20, name, -82, store_id)]


def sightings() -> list[Sighting]:
    batch = tvisit("a", 11 * H, 10) + tvisit("b", 11 * H, 40) + tvisit("c", 15 * H, 25)
    batch += passer("p", 12 * H, "s1") + passer("q", 13 * H, "s1")
    batch += tvisit("a", 12 * H, 15, store="s2") + tvisit("d", 14 * H, 30, store="s2") + passer("p", 12 * H + 300, "s2")
    batch += tvisit("a", 11 * H - WEEK, 20) + passer("r", 16 * H - WEEK, "s1")
    # the AP's stations at s1 (basis "connected"): w1 on the guest Wi-Fi for 30 min, w2 for 3 min (no visit)
    batch += tstation("w1", 11 * H, 30) + tstation("w2", 14 * H, 3) + tstation("w1", 12 * H, 20, store="s2")
    return batch


#: s1's AP poller: a read every 10 s from 10:00 to 16:00, down from 12:00 to 13:00
POLLS = tpolls(10 * H, 12 * H) + tpolls(13 * H, 16 * H)
LAST_POLL = DAY_START + 16 * H - 10


def seed(engine: Engine, cfg: Config) -> None:
    sensor_store.insert_sightings(engine, sightings(), polls=POLLS)
    for day in (PREVIOUS, DAY):
        for sid in ("s1", "s2", "s3"):
            pipeline.rollup_store(engine, cfg, sid, day, NOW)
        for mid in ("m1", "m2"):
            pipeline.rollup_mall(engine, mid, day, NOW)
