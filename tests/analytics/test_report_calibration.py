"""Connected stations calibrate the estimates, through the real storage (SQLite, PostgreSQL): the sensor's pipeline
stores each phone's association with the station id of its address, the AP's poll stores the same phone's station
sightings, the pipeline rolls the day up, and the report's ``connected`` block pairs them (one pair per phone) in its
``calibration``; the figures beside it stay exactly what they were."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from analytics import pipeline, report
from analytics.calibration import MIN_PAIRS
from keliu import config
from sensor.frames import KIND_ASSOC, Parser, Probe, ProbeBatch
from sensor.grouping import Identifier
from sensor.identity import PrivacyPolicy, device_id, mac_bytes, period_key, sid_key
from sensor.pipeline import Pipeline
from sensor.sightings import Batcher
from sensor.sinks import Delivery, SqlSink
from sensor.spool import Spool
from sensor.stations import Station, station_sightings
from tests.analytics.builders import DAY, DAY_START, tenant_db
from tests.sensor.test_pipeline import FakeClock, Healths

MASTER = bytes(range(32))
H = 3600
PHONES = MIN_PAIRS + 1  # the last probes too weakly to be counted: MIN_PAIRS detected
ROTATING = mac_bytes("06:7a:00:00:00:01")  # phone 0's probing address before it probes from its per-network one


def address(i: int) -> bytes:
    return mac_bytes(f"da:00:00:00:00:{i:02x}")  # a per-network address: locally administered


def start(i: int) -> float:
    return DAY_START + 11 * H + i * 600


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def env(request: pytest.FixtureRequest) -> Iterator[tuple[config.Config, sa.Engine]]:
    with tenant_db(request, lambda url: config.load(overrides={
            "database_url": url, "malls": [{"id": "m1", "name": "Mall One"}],
            "stores": [{"id": "s1", "mall": "m1", "name": "Shoes"}]}, env={})) as made:
        yield made


def frames() -> list[Probe]:
    """Each phone associates from its per-network address, then probes from it every minute for 30 minutes; phone
    0 first probed from a rotating address whose counter its per-network address continues (the linker joins them,
    so its association is stored under the rotating address's device), with phone 1's first probe between."""
    out = [Probe(start(0) - 30, ROTATING, 100, -50, 2437, b"", 7), Probe(start(0) - 29, ROTATING, 101, -50, 2437, b"", 7),
           Probe(start(0), address(0), 140, -50, 2437, b"", 7),
           Probe(start(0) + 2, mac_bytes("0a:1b:2c:3d:4e:5f"), 9, -85, 2437, b"", 8)]
    for i in range(PHONES):
        rssi = -85 if i == PHONES - 1 else -50
        out.append(Probe(start(i) + 5, address(i), 141, rssi, 2437, b"", 7 + i, KIND_ASSOC))
        out += [Probe(start(i) + 5 + m * 60, address(i), 142 + m, rssi, 2437, b"", 7 + i) for m in range(1, 31)]
    return sorted(out, key=lambda p: p.ts)


def run_sensor(tmp_path: Path, engine: sa.Engine, *, stations: bool = True) -> Pipeline:
    clock = FakeClock(DAY_START + 23 * H)
    spool = Spool(tmp_path / "spool", 10**7)
    pipe = Pipeline(store="s1", sensor="sensor-1", parser=Parser(), identifier=Identifier(MASTER, PrivacyPolicy()),
                    sid_key=sid_key(MASTER), spool=spool, delivery=Delivery(spool, SqlSink(engine)), health=Healths(),
                    batcher=Batcher(500, 2.0), clock=clock)
    pipe.feed(ProbeBatch.from_probes(frames()))
    if stations:  # the AP's poll every 10 s: each phone associated from start + 5 s for exactly 30 minutes
        for t in range(int(start(0)), int(start(PHONES - 1)) + 31 * 60, 10):
            listed = [Station(address(i).hex(":"), frozenset({"AUTH", "ASSOC"}), -50, 30, 100)
                      for i in range(PHONES) if start(i) + 5 <= t <= start(i) + 5 + 30 * 60]
            pipe.feed_sightings(station_sightings(listed, float(t), "s1", "sensor-1-ap", MASTER, PrivacyPolicy(),
                                                  sid_key(MASTER)))
    pipe.close()
    return pipe


def roll(cfg: config.Config, engine: sa.Engine) -> None:
    pipeline.rollup_store(engine, cfg, "s1", DAY, DAY_START + 23 * H)


def stored_pairs(engine: sa.Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [(r[0], r[1]) for r in conn.execute(sa.text(
            "SELECT device, station FROM sightings WHERE station IS NOT NULL ORDER BY ts"))]


def test_a_phones_association_and_its_station_make_one_pair(env: tuple[config.Config, sa.Engine],
                                                            tmp_path: Path) -> None:
    cfg, engine = env
    run_sensor(tmp_path, engine)
    key = period_key(MASTER, PrivacyPolicy().period(start(0)))
    pairs = stored_pairs(engine)
    # one association per phone, each with its address's station id: the id its station sightings carry
    assert [s for _d, s in pairs] == [device_id(key, address(i)) for i in range(PHONES)]
    with engine.connect() as conn:
        connected = set(conn.execute(sa.text("SELECT DISTINCT device FROM sightings WHERE basis = 'connected'"))
                        .scalars())
    assert connected == {s for _d, s in pairs}
    # phone 0's association is stored under its linked probe device, the others' under their own address
    assert pairs[0][0] == device_id(key, ROTATING) != pairs[0][1]
    assert all(d == s for d, s in pairs[1:])

    assert report.store_day(engine, "s1", DAY, cfg)["connected"]["calibration"] is None  # not rolled up yet
    roll(cfg, engine)
    day = report.store_day(engine, "s1", DAY, cfg)
    cal = day["connected"]["calibration"]
    assert cal is not None
    assert (cal["pairs"], cal["detected"], cal["detection_rate"]) == (PHONES, PHONES - 1, round(10 / 11, 4))
    assert cal["detection_band"][0] < 10 / 11 < cal["detection_band"][1]
    # probes every minute over the 30 connected minutes: the estimate's dwell is the same 30 minutes plus its edge
    # correction (about one scan gap; 1.039 when written); the polls start up to 10 s after the association
    assert cal["dwell_ratio"] is not None and cal["dwell_ratio_band"] is not None
    assert 1.0 < cal["dwell_ratio"] < 1.1
    assert cal["dwell_ratio_band"][0] <= cal["dwell_ratio"] <= cal["dwell_ratio_band"][1]
    rng = report.store_range(engine, "s1", DAY, DAY, cfg)
    assert rng["connected"]["calibration"] == cal


def test_the_figures_beside_the_calibration_are_unchanged(env: tuple[config.Config, sa.Engine],
                                                          tmp_path: Path) -> None:
    cfg, engine = env
    run_sensor(tmp_path / "a", engine, stations=False)
    roll(cfg, engine)
    before = report.store_day(engine, "s1", DAY, cfg)
    run_sensor(tmp_path / "b", engine)  # the same frames again (stored once) and now the stations
    roll(cfg, engine)
    after = report.store_day(engine, "s1", DAY, cfg)
    apart = ("connected", "hourly_connected")  # the stations' own figures; everything else is unchanged
    assert {k: v for k, v in after.items() if k not in apart} == {k: v for k, v in before.items() if k not in apart}
    assert before["hourly_connected"] == [None] * 24 and sum(n or 0 for n in after["hourly_connected"]) >= PHONES
    assert before["connected"]["visitors"] is None and after["connected"]["visitors"] == PHONES
