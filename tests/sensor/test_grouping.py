"""sensor.grouping: ids assigned to probes under each privacy mode, the portal's registry, and randomized-MAC grouping
(simulated and real phones)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from keliu.testing.simulate import DEMO, Scenario, simulate
from sensor.frames import Parser, Probe, ProbeBatch
from sensor.grouping import Identifier
from sensor.identity import (
    PrivacyPolicy,
    Registry,
    mac_bytes,
    member_device_id,
)
from tests.conftest import require_shared_data

MASTER = bytes(range(32))
DAY = 86400.0
T0 = Scenario().day_start(0) + 11 * 3600  # 11:00 local on a simulated day


def tprobe(ts: float, mac: str, seq: int = 1, rssi: int | None = -50, fp: int = 7) -> Probe:
    return Probe(ts, mac_bytes(mac), seq, rssi, 2437, b"", fp)


def ids(ident: Identifier, probes: list[Probe]) -> list[str | None]:
    return ident.identify_probes(probes)


@pytest.mark.parametrize(("policy", "same_next_day"), [
    (PrivacyPolicy(mode="strict"), False),
    (PrivacyPolicy(mode="linked", link_days=30), True),
])
def test_strict_rotates_daily_linked_keeps_the_block(policy: PrivacyPolicy, same_next_day: bool) -> None:
    # day 20,457 is the first of a 30-day block (20457 = 681 * 30 + 27), so pick a day well inside one
    start = (681 * 30 + 3) * DAY - policy.utc_offset_s + 11 * 3600
    a, b = ids(Identifier(MASTER, policy), [tprobe(start, "00:11:22:33:44:55"),
                                            tprobe(start + DAY, "00:11:22:33:44:55")])
    assert (a == b) is same_next_day
    far = ids(Identifier(MASTER, policy), [tprobe(start + 40 * DAY, "00:11:22:33:44:55")])[0]
    assert far not in (a, b)


def test_members_are_stable_and_opt_outs_dropped() -> None:
    member, gone, other = "02:aa:00:00:00:01", "00:bb:00:00:00:02", "00:cc:00:00:00:03"
    registry = Registry(members=frozenset({member_device_id(MASTER, mac_bytes(member))}),
                        optouts=frozenset({member_device_id(MASTER, mac_bytes(gone))}))
    ident = Identifier(MASTER, registry=registry, ignore=frozenset({mac_bytes("00:dd:00:00:00:04")}))
    out = ids(ident, [tprobe(T0, member), tprobe(T0 + 1, gone), tprobe(T0 + 2, other),
                      tprobe(T0 + 3, "00:dd:00:00:00:04"), tprobe(T0 + DAY, member)])
    assert out[0] == out[4] == member_device_id(MASTER, mac_bytes(member))
    assert out[1] is None and out[3] is None
    assert out[2] is not None and out[2] != member_device_id(MASTER, mac_bytes(other))
    assert (ident.stats.opted_out, ident.stats.ignored) == (0, 0)  # the day rolled over: stats are per period


def test_opt_out_counted() -> None:
    gone = "00:bb:00:00:00:02"
    ident = Identifier(MASTER, registry=Registry(optouts=frozenset({member_device_id(MASTER, mac_bytes(gone))})))
    assert ids(ident, [tprobe(T0, gone), tprobe(T0 + 1, gone)]) == [None, None]
    assert ident.stats.opted_out == 2


def test_rotation_links_by_sequence_and_by_timing() -> None:
    ident = Identifier(MASTER)
    out = ids(ident, [
        tprobe(T0, "02:00:00:00:00:01", seq=100), tprobe(T0 + 1, "02:00:00:00:00:01", seq=101),
        tprobe(T0 + 20, "02:00:00:00:00:02", seq=140),  # counter continues: same phone
        tprobe(T0 + 50, "02:00:00:00:00:03", seq=3000, rssi=-52),  # counter reset, same model, just after
        tprobe(T0 + 50, "02:00:00:00:00:04", seq=9, fp=8),  # another model: another phone
        tprobe(T0 + 2000, "02:00:00:00:00:05", seq=10),  # long after: another phone
    ])
    assert out[0] == out[1] == out[2] == out[3]
    assert len({out[0], out[4], out[5]}) == 3
    assert (ident.stats.linked_seq, ident.stats.linked_timing) == (1, 1)


def test_global_macs_are_never_grouped() -> None:
    out = ids(Identifier(MASTER), [tprobe(T0, "00:00:00:00:00:01", seq=1), tprobe(T0 + 1, "00:00:00:00:00:02", seq=2)])
    assert out[0] != out[1]


def count_devices(frames: list[object]) -> tuple[int, Identifier]:
    ident = Identifier(MASTER)
    probes = [Probe(f.ts, f.mac, f.seq, f.rssi, f.freq, b"", 0) for f in frames]  # type: ignore[attr-defined]
    from sensor.frames import _elements

    probes = [p._replace(fingerprint=_elements(f.ies[2 + f.ies[1]:], 0, len(f.ies) - 2 - f.ies[1]))  # type: ignore
              for p, f in zip(probes, frames)]
    return len(set(ident.identify_probes(probes)) - {None}), ident


def test_simulated_day_estimate_beats_naive_counting() -> None:
    frames, truth = simulate(DEMO, 7)
    estimated, ident = count_devices(frames)
    naive_err = (truth.macs - truth.devices) / truth.devices
    est_err = (estimated - truth.devices) / truth.devices
    print(f"simulated day: {truth.devices} phones (half rotating), naive MAC count {truth.macs} "
          f"({naive_err:+.0%}), estimated {estimated} ({est_err:+.0%})")
    assert naive_err > 1.0  # rotation makes naive counting useless
    assert abs(est_err) < 0.2
    assert abs(est_err) < naive_err / 4
    # memory follows the devices in range, not the frames: once everyone has left, nothing is kept
    assert ident.active_macs < truth.macs
    ident.expire(frames[-1].ts + 2 * ident.policy.mac_ttl_s)  # type: ignore[attr-defined]
    assert ident.active_macs == 0 and ident.active_groups == 0


def test_fixed_macs_only_is_exact() -> None:
    frames, truth = simulate(replace(DEMO, passersby_per_day=200, visitors_per_day=50, randomizing_fraction=0.0), 3)
    assert truth.macs == truth.devices
    assert count_devices(frames)[0] == truth.devices


def real(name: str, fcs: str, group_all: bool) -> tuple[int, int]:
    probes = list(Parser(fcs).parse_capture(require_shared_data(name).read_bytes()))  # type: ignore[arg-type]
    est = set(Identifier(MASTER, PrivacyPolicy(group_all=group_all)).identify_probes(probes))
    return len({p.mac for p in probes}), len(est)


def test_real_android_phone_seen_as_80_macs_is_one_device() -> None:
    naive, est = real("pintor-cagliari__B-ts-2021-Jun-03-h15-m34-s17-modePA-ch-11-th-60.pcap", "verify", False)
    print(f"Pintor Android phone: naive {naive} MACs, estimated {est} device(s)")
    assert naive == 80
    assert est == 1


def test_real_iphone_seen_as_465_macs() -> None:
    name = "baccichet__iPhone11-B_anonymized.pcap"
    naive, est_la = real(name, "flag", False)
    _, est_all = real(name, "flag", True)
    print(f"Baccichet iPhone 11: naive {naive} MACs, estimated {est_all} device(s) grouping every MAC "
          f"(the anonymizer randomized the locally-administered bit), {est_la} trusting that bit")
    assert naive == 465
    assert est_all <= 3
    assert est_la < naive


def test_opt_out_drops_the_rotating_macs_grouped_with_it() -> None:
    gone = "02:bb:00:00:00:02"
    ident = Identifier(MASTER, registry=Registry(optouts=frozenset({member_device_id(MASTER, mac_bytes(gone))})))
    out = ids(ident, [tprobe(T0, "02:00:00:00:00:01", seq=10), tprobe(T0 + 30, gone, seq=20),
                      tprobe(T0 + 60, "02:00:00:00:00:03", seq=30), tprobe(T0 + 60, "02:00:00:00:00:04", fp=9)])
    assert out[0] is not None  # heard before the opted-out MAC: already delivered, not retracted
    assert out[1] is None and out[2] is None  # the opted-out MAC and the next one of the same phone
    assert out[3] is not None  # another model: another phone


def tflood(n: int, start: float, span_s: float, seed: int, randomized: bool = True) -> ProbeBatch:
    """``n`` probes from ``n`` distinct MACs (an attacker's transmitter), each with its own fingerprint, over
    ``span_s`` seconds: what a flood of random source addresses looks like to the identity layer."""
    rng = np.random.default_rng(seed)
    mac = rng.integers(0, 2**48, n, dtype=np.uint64)
    la = np.uint64(0x02 << 40)
    mac = mac | la if randomized else mac & ~la
    z = np.zeros(n, np.int64)
    return ProbeBatch(b"", start + np.sort(rng.random(n)) * span_s, mac, rng.integers(0, 4096, n),
                      np.full(n, -60, np.int64), np.full(n, 2437, np.int64), z, z, z,
                      fps=rng.integers(0, 2**31, n), ssids=(b"",) * n)


def test_a_flood_of_random_macs_is_capped_and_evictions_are_counted() -> None:
    """Attack review #14: 200,000 random MACs within the 15-minute TTL were all kept (~560 bytes each).

    The default cap (50,000) holds after every batch, for randomized and globally unique MACs alike, for the
    groups, and for the scans and new devices the arrival rate counts; what was forgotten is counted. A phone heard throughout keeps its id."""
    ident = Identifier(MASTER, PrivacyPolicy(mode="strict"))
    cap = 50_000  # the default
    phone = Probe(T0, mac_bytes("da:a1:19:00:00:01"), 1, -40, 2437, b"", 99)
    (first,) = ident.identify_probes([phone])
    worst = 0
    for i in range(20):  # 200,000 random MACs and 50,000 spoofed global ones, in 10 minutes
        start = T0 + i * 30
        for batch in (tflood(10_000, start, 30, seed=i), tflood(2_500, start, 30, seed=100 + i, randomized=False)):
            ident.identify_batch(batch)
            worst = max(worst, ident.active_macs, ident.active_groups, len(ident._events))
        assert ident.identify_probes([phone._replace(ts=start + 30, seq=2 + i)]) == [first]
    assert worst <= cap
    assert PrivacyPolicy().max_macs == cap
    assert ident.evicted >= 250_000 - cap
    assert ident.stats.macs >= 250_000  # naive counting still sees every MAC that appeared


def test_eviction_forgets_the_least_recently_heard() -> None:
    ident = Identifier(MASTER, PrivacyPolicy(max_macs=10))
    quiet = tprobe(T0, "02:00:00:00:00:aa", fp=1)
    loud = tprobe(T0, "02:00:00:00:00:bb", fp=2)
    a, b = ids(ident, [quiet, loud])
    for k in range(30):
        ids(ident, [tprobe(T0 + 1 + k, f"02:00:00:00:01:{k:02x}", fp=100 + k), loud._replace(ts=T0 + 1 + k, seq=2 + k)])
        assert ident.active_macs <= 10
    assert ident.evicted > 0
    seen = ident.stats.macs
    assert ids(ident, [loud._replace(ts=T0 + 40, seq=40)]) == [b]
    assert ident.stats.macs == seen  # heard all along: still known
    assert ids(ident, [quiet._replace(ts=T0 + 40, seq=2)]) == [a]  # the same keyed hash of the same MAC ...
    assert ident.stats.macs == seen + 1  # ... but it had been forgotten: a new MAC to the grouping
