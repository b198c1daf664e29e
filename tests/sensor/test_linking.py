"""The evidence linker (sensor.grouping, ``linker = "evidence"``): its rules on small cases, and issue 17's accuracy
targets that hold, on the simulated crowds of keliu.testing.crowd and on real phones (docs/METRICS.md, "Accuracy").
No timings here: bench/accuracy.py and bench/sensor.py measure speed."""
from __future__ import annotations

from functools import cache

import pytest

from keliu.testing.accuracy import measure, scene, staged
from keliu.testing.crowd import PRESETS, evening, simulate
from keliu.testing.scenes import BUILT, POWER_SAVING, baccichet, pintor_scenes
from sensor.frames import Parser, Probe
from sensor.grouping import _SCAN_ARRIVALS, Identifier, _FpStats, _pooled
from sensor.identity import PrivacyPolicy, mac_bytes
from tests.conftest import SHARED_DATA, require_shared_data

MASTER = bytes(range(32))
T0 = 1_767_600_000.0 + 3 * 3600  # 11:00 in UTC+8


def probe(ts: float, mac: str, seq: int, rssi: int = -50, fp: int = 7, ssid: bytes = b"") -> Probe:
    return Probe(ts, mac_bytes(mac), seq, rssi, 2437, ssid, fp)


def ids(probes: list[Probe], policy: PrivacyPolicy | None = None) -> list[str | None]:
    return Identifier(MASTER, policy or PrivacyPolicy()).identify_probes(probes)


def background(n: int = 12, fp: int = 7) -> list[Probe]:
    """A store's afternoon: ``n`` phones of model ``fp`` that came and left (one MAC each for ten minutes: the
    linker learns that the model rotates on a timer, not per scan), and a stream of passers-by of another model,
    one every 5 s (how often phones arrive)."""
    out = []
    for j in range(n):
        start = T0 + 50 * j
        out += [probe(start + 30 * i, f"02:00:00:00:20:{j:02x}", 37 * j + 2 * i, -66 + j % 4, fp=fp)
                for i in range(20)]
    for k in range(800):
        out.append(probe(T0 + 5 * k + 0.3, f"02:00:00:01:{k >> 8:02x}:{k & 255:02x}", (97 * k) % 4096, -82, fp=99))
    return out


def tagged(probes: list[Probe], macs: tuple[str, ...]) -> list[str | None]:
    probes = sorted(probes, key=lambda p: p.ts)
    out = ids(probes)
    want = {mac_bytes(m) for m in macs}
    return [d for d, p in zip(out, probes) if p.mac in want]


def test_a_long_lived_mac_followed_by_a_new_one_is_a_rotation() -> None:
    """After a MAC that lived 12 minutes (timed rotation is due), a new MAC of the same model with the same signal
    continues the phone even with a restarted counter."""
    t = T0 + 1500
    long = [probe(t + 30 * i, "02:00:00:00:00:01", 100 + 4 * i, -58) for i in range(25)]
    long.append(probe(t + 30 * 25, "02:00:00:00:00:02", 3000, -58))
    out = tagged(background() + long, ("02:00:00:00:00:01", "02:00:00:00:00:02"))
    assert out[0] == out[-1]


def test_a_continuing_counter_links_after_a_long_silence() -> None:
    keeps = []
    t = T0
    for k in range(6):  # six rotations, each continuing the counter
        keeps += [probe(t + 30 * i, f"02:00:00:00:01:{k:02x}", 100 + 60 * k + 5 * i, -60) for i in range(12)]
        t += 360
    macs = tuple(f"02:00:00:00:01:{k:02x}" for k in range(6))
    cont = tagged(background() + keeps + [probe(t + 500, "02:00:00:00:02:00", 100 + 60 * 6 + 9, -60)],
                  (*macs, "02:00:00:00:02:00"))
    assert len(set(cont)) == 1


def test_one_group_is_continued_by_one_mac_per_time_step() -> None:
    """Two new MACs of the same model in the same step, one old group: the better one (signal) takes it, the other
    is a new phone — first fit would have given the group to whichever came first."""
    old = [probe(T0 + 30 * i, "02:00:00:00:00:01", 10 + 3 * i, -50) for i in range(20)]
    t = T0 + 30 * 20
    out = tagged(background() + old + [probe(t, "02:00:00:00:00:02", 3000, -75),
                                       probe(t + 0.5, "02:00:00:00:00:03", 1500, -51)],
                 ("02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03"))
    assert out[-1] == out[0]
    assert out[-2] != out[0]


def test_a_rare_fingerprint_links_where_a_common_one_does_not() -> None:
    """The same evidence for a rotation weighs more when few phones in the crowd share the fingerprint."""
    def crowd(fp_of_others: int) -> list[str | None]:
        ps = []
        for j in range(60):  # 60 phones of a model, all in range
            ps += [probe(T0 + 20 * i + j * 0.3, f"02:00:00:00:10:{j:02x}", 10 * j + 3 * i, -70 + j % 15,
                         fp=fp_of_others) for i in range(25)]
        ps += [probe(T0 + 20 * i + 0.1, "02:00:00:00:00:01", 3 * i, -62, fp=7) for i in range(25)]
        ps.append(probe(T0 + 20 * 25 + 200, "02:00:00:00:00:02", 2000, -62, fp=7))
        ps.sort(key=lambda p: p.ts)
        out = ids(ps)
        return [out[i] for i, p in enumerate(ps) if p.mac in (mac_bytes("02:00:00:00:00:01"),
                                                              mac_bytes("02:00:00:00:00:02"))]
    rare = crowd(8)  # the others are another model: ours is rare
    common = crowd(7)  # the others are our model
    assert rare[0] == rare[-1]
    assert common[0] != common[-1]


def per_frame_phone(t0: float, scans: int, rssi: int, tag: int, fp: int = 7, spread: int = 0) -> list[Probe]:
    """A phone that changes its MAC every two frames inside its scans (iOS 16's unassociated probing, as in the
    real Baccichet iPhone 11/12 captures): 6 MACs per scan, 40 ms apart, a scan every 30 s; ``spread`` dB of
    per-MAC signal variation (channels, antennas)."""
    out = []
    for k in range(scans):
        for j in range(6):
            t = t0 + 30 * k + 0.04 * j
            r = rssi + (spread if (k + j) % 3 == 0 else -spread if (k + j) % 3 == 1 else 0)
            mac = f"02:00:{tag:02x}:00:{k:02x}:{j:02x}"
            out += [probe(t, mac, (97 * k + 13 * j) % 4096, r, fp=fp), probe(t + 0.02, mac, (97 * k + 13 * j + 1) % 4096,
                                                                            r, fp=fp)]
    return out


def test_a_phone_changing_its_mac_inside_each_scan_stays_one_device_next_to_another() -> None:
    """Two phones of one model, each sending six MACs per scan, scanning in the same seconds: each is one device.
    One new MAC per group per time step would hand the second MAC of each scan to the other phone's group (the
    real iPhone 11 of the Baccichet scene read as 4 devices that way)."""
    a = per_frame_phone(T0 + 3000, 20, -58, 0xA1, spread=2)
    b = per_frame_phone(T0 + 3000.02, 20, -72, 0xB2, spread=2)
    ps = sorted(background() + a + b, key=lambda p: p.ts)
    out = ids(ps)
    dev_a = {d for d, p in zip(out, ps) if p.mac[2] == 0xA1}
    dev_b = {d for d, p in zip(out, ps) if p.mac[2] == 0xB2}
    assert len(dev_a) == 1 and len(dev_b) == 1
    assert dev_a != dev_b


def test_a_weak_scan_of_a_phone_changing_its_mac_inside_its_scans_is_weighed_against_its_level() -> None:
    """A phone that changes its MAC inside its scans is heard at another level on each channel (the real iPhone 11:
    -78 to -46 dBm). A scan heard only on its weak channel, 16 dB under its level, just after a scan that ended on
    its strong channel, 10 dB over it, continues the phone: its signal is weighed against the phone's level over
    many bursts, not against its last MAC's one burst (26 dB off, a new device before)."""
    phone = per_frame_phone(T0 + 3000, 20, -58, 0xA1, fp=8, spread=10)
    weak = [probe(T0 + 3000 + 30 * 10 + 15 + 0.02 * i, "02:00:a1:01:00:00", 7 + i, -74, fp=8) for i in range(2)]
    ps = sorted(background() + phone + weak, key=lambda p: p.ts)
    assert max((p for p in phone if p.ts < weak[0].ts), key=lambda p: p.ts).rssi == -48  # (its strong channel)
    out = ids(ps)
    assert len({d for d, p in zip(out, ps) if p.mac[2] == 0xA1}) == 1


def test_another_element_set_of_a_per_scan_phone_links_only_with_the_opt_in_evidence() -> None:
    """A per-scan phone that sends one scan with a second element set (as the real Oppo Find X3 Neo and iPhone XR
    do): with ``fingerprint`` evidence it is the same phone, without it a new device; a phone whose MAC lives for
    minutes never takes another set's MAC this way (it would send that set on its own MAC)."""
    phone = per_frame_phone(T0 + 3000, 10, -52, 0xA1)
    odd = [probe(T0 + 3000 + 30 * 9 + 12, "02:00:00:00:0a:01", 5, -52, fp=77),
           probe(T0 + 3000 + 30 * 9 + 12.02, "02:00:00:00:0a:01", 6, -52, fp=77)]
    ps = sorted(background() + phone + odd, key=lambda p: p.ts)
    with_fp = ids(ps, PrivacyPolicy(evidence=PrivacyPolicy().evidence | {"fingerprint"}))
    without = ids(ps)
    last = len(ps) - 1 - [p.fingerprint for p in reversed(ps)].index(77)
    first = next(i for i, p in enumerate(ps) if p.mac[2] == 0xA1)
    assert with_fp[last] == with_fp[first]
    assert without[last] != without[first]
    timed = [probe(T0 + 3000 + 30 * i, "02:00:00:00:00:01", 10 + 3 * i, -52) for i in range(10)]
    ps = sorted(background() + timed + [probe(T0 + 3000 + 30 * 9 + 12, "02:00:00:00:0a:01", 5, -52, fp=77)],
                key=lambda p: p.ts)
    out = ids(ps, PrivacyPolicy(evidence=PrivacyPolicy().evidence | {"fingerprint"}))
    assert out[-1] != out[[p.mac for p in ps].index(mac_bytes("02:00:00:00:00:01"))]


@pytest.mark.parametrize("weaker_db", [0, 8, 12])
def test_another_set_joined_to_a_phone_does_not_take_over_its_chain(weaker_db: int) -> None:
    """A scan with another element set joined to a per-scan phone (``fingerprint``) is the phone's, but the phone's
    next scan continues from its own last MAC: the other set's scan, weaker by up to 12 dB as the real iPhone 12's
    and XR's are, no longer splits the phone in two after it."""
    phone = per_frame_phone(T0 + 3000, 16, -52, 0xA1)
    odd = [probe(T0 + 3000 + 30 * 9 + 12 + 0.02 * i, "02:00:00:00:0a:01", 5 + i, -52 - weaker_db, fp=77)
           for i in range(2)]
    ps = sorted(background() + phone + odd, key=lambda p: p.ts)
    out = ids(ps, PrivacyPolicy(evidence=PrivacyPolicy().evidence | {"fingerprint"}))
    phone_devices = {d for d, p in zip(out, ps) if p.mac[2] == 0xA1}
    assert len(phone_devices) == 1
    assert {d for d, p in zip(out, ps) if p.fingerprint == 77} == phone_devices


def named_scans(t0: float, times: list[float], tag: int, names: tuple[bytes, ...], fp: int = 7,
                rssi: int = -52, k0: int = 0) -> list[Probe]:
    """Scans of a phone that randomizes at every scan and probes for its preferred networks (the real Oppo Find X3
    Neo of the Baccichet captures): each scan at ``t0 + times[k]`` from a new MAC (numbered from ``k0``), a wildcard
    frame and then one directed frame per name, 20 ms apart."""
    out = []
    for k, t in enumerate(times, k0):
        mac = f"02:{tag:02x}:{fp & 255:02x}:00:{k >> 8:02x}:{k & 255:02x}"
        for j, name in enumerate((b"", *names)):
            out.append(probe(t0 + t + 0.02 * j, mac, (211 * k + j) % 4096, rssi, fp=fp, ssid=name))
    return out


HOME = (b"Casa-Rossi-5G", b"TIM-28391", b"FASTWEB-9F3C")


def test_a_per_scan_phones_other_set_probing_its_networks_is_the_same_phone() -> None:
    """Issue 17, the real Oppo's phantoms: a phone sends some scans with another element set, each from a MAC of its
    own, probing for the same preferred networks. By default (the ``ssid`` evidence) those scans are the phone's and
    the chain of the other set continues on the phone's device; a scan of the other set probing for other names,
    or without the evidence, is a new device."""
    t0 = T0 + 3000
    own = named_scans(t0, [30.0 * k for k in range(12)], 0xA1, HOME)
    other = named_scans(t0, [30.0 * 3 + 12, 30.0 * 7 + 12, 30.0 * 7 + 40], 0xA1, HOME, fp=77)
    stranger = named_scans(t0, [30.0 * 9 + 12], 0xB2, (b"Pizzeria-Guest",), fp=78)
    ps = sorted(background() + own + other + stranger, key=lambda p: p.ts)
    ident = Identifier(MASTER)
    out = ident.identify_probes(ps)
    phone = {d for d, p in zip(out, ps) if p.mac[1] == 0xA1}
    assert len(phone) == 1
    assert ident.stats.linked_pnl == 1  # the first scan of the other set; the next ones continue its chain
    assert {d for d, p in zip(out, ps) if p.mac[1] == 0xB2}.isdisjoint(phone)
    ablated = ids(ps, PrivacyPolicy(evidence=PrivacyPolicy().evidence - {"ssid"}))
    assert len({d for d, p in zip(ablated, ps) if p.mac[1] == 0xA1}) > 1


def test_a_chain_of_the_other_set_begun_on_too_few_names_is_taken_back_by_the_names() -> None:
    """The phone's first scan with its other set probes for one of its networks only: too little to join (it makes a
    chain of that set on its own). Its next one probes for both, and joins the phone although that chain of its own
    family is there to continue: the names are weighed against the family's groups too."""
    crowd = []
    for j in range(100):  # the morning: phones of many models, each probing for a home network of its own
        crowd += [probe(T0 + 30 * j + 20 * i, f"02:00:00:03:00:{j:02x}", (997 * j + 3 * i) % 4096, -80, fp=500 + j,
                        ssid=f"home-{j}".encode() if i else b"") for i in range(2)]
    t0 = T0 + 4000
    own = named_scans(t0, [30.0 * k for k in range(12)], 0xA1, HOME)
    first = named_scans(t0, [30.0 * 3 + 12], 0xA1, HOME[:1], fp=77)
    then = named_scans(t0, [30.0 * 7 + 12], 0xA1, HOME, fp=77, k0=1)
    ps = sorted(crowd + own + first + then, key=lambda p: p.ts)
    out = ids(ps)
    dev = {p.ts: d for d, p in zip(out, ps) if p.mac[1] == 0xA1}
    assert dev[t0 + 30.0 * 3 + 12] != dev[t0]  # one name: a chain of its own
    assert dev[t0 + 30.0 * 7 + 12] == dev[t0]  # both: the phone's


def test_the_names_join_a_scan_of_the_other_set_after_its_chain_went_quiet() -> None:
    """The real Oppo staged with ten more phones: its other set's chain (begun by the names) went quiet for longer
    than its timing explains (here ten minutes). The next scan of that set, probing for the phone's networks, is the
    phone's: a chain of the MAC's own family that cannot continue it leaves the decision to the names (before, any
    chain of that family in range kept the names from joining, and the scan was a new device)."""
    t0 = T0 + 3000
    own = named_scans(t0, [30.0 * k for k in range(28)], 0xA1, HOME)
    other = named_scans(t0, [30.0 * 3 + 12, 30.0 * 24 + 12], 0xA1, HOME, fp=77)
    ps = sorted(background() + own + other, key=lambda p: p.ts)
    ident = Identifier(MASTER)
    out = ident.identify_probes(ps)
    assert len({d for d, p in zip(out, ps) if p.mac[1] == 0xA1}) == 1
    assert ident.stats.linked_pnl == 2  # each scan of the other set joined by the names


def test_a_common_network_name_joins_no_phones() -> None:
    """A carrier's or a chain's network name is probed for by many phones: a scan of another element set that
    probes only for it stays a new phone (80 phones of the period probed for it); the phone's two home networks'
    names join it. At the start of a period one name alone joins nothing (its rarity is not known yet)."""
    crowd = []
    for j in range(80):  # the morning: phones of many models that probe for the carrier's network
        crowd += [probe(T0 + 40 * j + 30 * i, f"02:00:00:03:00:{j:02x}", (997 * j + 3 * i) % 4096, -80, fp=500 + j,
                        ssid=b"CMCC-WEB" if i % 2 else b"") for i in range(4)]
    t0 = T0 + 4000
    own = named_scans(t0, [30.0 * k for k in range(10)], 0xA1, (b"CMCC-WEB", *HOME[:2]))
    common = named_scans(t0, [30.0 * 4 + 12], 0xA1, (b"CMCC-WEB",), fp=77)
    home = named_scans(t0, [30.0 * 6 + 12], 0xA1, HOME[:2], fp=78)
    ps = sorted(crowd + own + common + home, key=lambda p: p.ts)
    out = ids(ps)
    dev = {p.fingerprint: d for d, p in zip(out, ps) if p.mac[1] == 0xA1}
    assert dev[78] == dev[7]
    assert dev[77] != dev[7]
    alone = sorted(named_scans(T0, [30.0 * k for k in range(10)], 0xA1, (b"Casa-Rossi-5G",))
                   + named_scans(T0, [30.0 * 6 + 12], 0xA1, (b"Casa-Rossi-5G",), fp=78), key=lambda p: p.ts)
    out = ids(alone)
    dev = {p.fingerprint: d for d, p in zip(out, alone)}
    assert dev[78] != dev[7]


def test_the_simulated_second_sets_make_phantoms_that_the_default_linker_keeps() -> None:
    """keliu.testing.crowd's phones with a second element set (measured on the real captures): one simulated iPhone
    12 alone for 30 minutes is read as several devices (its scans with the iPhone 11's set, on MACs of their own),
    an iPhone 11 (no second set) as one; the opt-in ``fingerprint`` evidence joins some of them, never more
    devices (docs/METRICS.md: why it stays off)."""
    from dataclasses import replace

    from keliu.testing.accuracy import identify
    from keliu.testing.crowd import PHONES, PRESETS, Person, heard

    sc = replace(PRESETS["native"], days=1)
    t = sc.day_start(0) + 15 * 3600
    fingerprint = PrivacyPolicy(evidence=PrivacyPolicy().evidence | {"fingerprint"})
    for name, second in (("iPhone 12", True), ("iPhone 11", False)):
        phone = next(p for p in PHONES if p.name == name)
        for seed in (1, 3):
            air, _ = heard(sc, (Person(0, "visitor", phone, -55.0, ((t, t + 1800),), ()),), seed)
            assert bool((air.fp != phone.fingerprint).any()) is second
            plain = len(set(identify(air)[0].tolist()))
            joined = len(set(identify(air, fingerprint)[0].tolist()))
            assert (plain > 1) is second
            assert 1 <= joined <= plain


def test_first_fit_is_still_there_as_the_baseline() -> None:
    policy = PrivacyPolicy(linker="first_fit")
    out = ids([probe(T0, "02:00:00:00:00:01", 100), probe(T0 + 20, "02:00:00:00:00:02", 140)], policy)
    assert out[0] == out[1]


# -- accuracy targets (issue 17) ---------------------------------------------------------------------------------


@cache
def results(preset: str, seed: int = 1) -> list:
    air, truth = simulate(preset, seed)
    return measure(air, truth)


def within(got: float, want: float, rel: float) -> bool:
    return abs(got - want) <= rel * want


@pytest.mark.parametrize("day", [0, 1])
def test_no_randomization_unchanged(day: int) -> None:
    r = results("none")[day]
    assert r.got["phones"] == r.truth["phones"]  # nothing to link: every phone exactly once
    assert within(r.got["visitors"], r.truth["visitors"], 0.03)
    assert within(r.got["passersby"], r.truth["passersby"], 0.03)
    assert abs(r.got["capture_rate"] - r.truth["capture_rate"]) <= 0.01
    assert r.got == {**r.oracle, "dwell_s": r.got["dwell_s"]} or r.got["visitors"] == r.oracle["visitors"]
    # median dwell (edge-corrected, docs/METRICS.md "Visit"): within 10 % of the true presence, not within 3 %
    assert within(r.got["median_dwell_s"], r.truth["median_dwell_s"], 0.10)


@pytest.mark.parametrize("day", [0, 1])
def test_half_rotating_counter_continuing(day: int) -> None:
    r = results("half")[day]
    print(f"half day {day + 1}: truth {r.truth}, keliu { {k: v for k, v in r.got.items() if k != 'dwell_s'} }")
    assert within(r.got["visitors"], r.truth["visitors"], 0.10)
    assert within(r.got["passersby"], r.truth["passersby"], 0.10)
    assert abs(r.got["capture_rate"] - r.truth["capture_rate"]) <= 0.02
    assert within(r.got["phones"], r.truth["phones"], 0.10)
    # median dwell (edge-corrected): within 10 % of the truth, and of what perfect linking measures
    assert within(r.got["median_dwell_s"], r.truth["median_dwell_s"], 0.10)
    assert within(r.got["median_dwell_s"], r.oracle["median_dwell_s"], 0.10)


@pytest.mark.parametrize("day", [0, 1])
def test_all_rotating_counter_restarted(day: int) -> None:
    r = results("all_reset")[day]
    print(f"all_reset day {day + 1}: truth {r.truth}, keliu { {k: v for k, v in r.got.items() if k != 'dwell_s'} }")
    assert within(r.got["visitors"], r.truth["visitors"], 0.20)
    assert within(r.got["passersby"], r.truth["passersby"], 0.20)
    assert within(r.got["phones"], r.truth["phones"], 0.20)


def test_the_pooled_decision_weighs_one_of_the_groups_against_a_new_phone() -> None:
    """Ten groups of a per-scan family, each alone below the bar: together, one of them continued (the log of their
    summed ratios beats it); the order among them is kept; a lone group, or a weight of 0 (a timed family), is
    decided alone."""
    groups = [object() for _ in range(10)]
    scored = [(-2.0 - 0.1 * i, g) for i, g in enumerate(groups)]
    out = _pooled(scored, 1.0, -0.5)  # type: ignore[arg-type]
    assert out and out[0][1] is groups[0] and out[0][0] > -2.0 + 1.5
    assert [g for _s, g in out] == groups[:len(out)]
    assert _pooled(scored, 0.0, -0.5) == []  # type: ignore[arg-type]
    assert _pooled(scored[:1], 1.0, -0.5) == []  # type: ignore[arg-type]
    assert _pooled([(0.0, groups[0])], 1.0, -0.5) == [(0.0, groups[0])]  # type: ignore[list-item]


def test_scans_and_new_devices_are_counted_per_family_without_linking() -> None:
    """The per-scan families' arrival rate reads scans, which need no link: a MAC heard again after a silence of
    more than 2 s is the phone's next scan, a new MAC is a scan (a per-scan phone's every scan), and the new devices
    the linker made are counted apart; a family joined to another (one MAC sent both) brings its counts along."""
    timed = [probe(T0 + 30 * i + f, "02:00:00:00:00:01", 10 * i + f, -60) for i in range(20) for f in (0, 0.02)]
    perscan = [probe(T0 + 5 + 20 * k, f"02:00:00:00:01:{k:02x}", (97 * k) % 4096, -60, fp=8) for k in range(30)]
    ident = Identifier(MASTER)
    ident.identify_probes(sorted(timed + perscan, key=lambda p: p.ts))
    new_perscan = ident._window[8][1]
    assert ident._window[7] == [20, 1]  # 20 scans (a burst of two frames each), one phone
    assert ident._window[8][0] == 30 and 1 <= new_perscan <= 30
    ident._same_phone_fps(7, 8)
    assert ident._window == {7: [50, 1 + new_perscan]}
    ident._arrival_rate(T0 + 5 + 20 * 29 + 600.5)  # ten minutes after the last of them
    assert ident._window == {7: [0, 0]}


def test_a_per_scan_familys_arrivals_are_its_scans_times_the_timed_families_new_devices_per_scan() -> None:
    """Issue 17's crowd: the new devices the linker made of a per-scan family are fed by its own errors (a merge
    lowers the rate of new phones, which makes the next merge likelier). Its scans are not: 300 scans in ten minutes,
    and the timed families made one new device per 10 scans, read as 30 new phones (times the calibration), weighed
    by how many timed scans there were; a timed family, and a store without timed phones, keep the linker's own
    count (``fallback``)."""
    ident = Identifier(MASTER)
    ident._fp_stats[7] = _FpStats(ended=20, long=20)  # a timed family: its MACs lived 30 s and more
    assert ident._fp_stats[7].p_timed == 1.0
    for i in range(100):
        ident._event(T0 + i, 7, 0)
    for i in range(10):
        ident._event(T0 + i, 7, 1)
    for i in range(300):
        ident._event(T0 + i, 99, 0)
    fallback = 2.0 / 600
    w = 100 / (100 + 50)
    scans = 300 * 0.1 * _SCAN_ARRIVALS / 600
    assert ident._family_rate(99, T0 + 300, 0.0, fallback) == pytest.approx((1 - w) * fallback + w * scans)
    # half its MACs rotate on a timer: half the weight
    assert ident._family_rate(99, T0 + 300, 0.5, fallback) == pytest.approx((1 - w / 2) * fallback + w / 2 * scans)
    assert ident._family_rate(7, T0 + 300, 1.0, fallback) == fallback
    alone = Identifier(MASTER)  # a store of per-scan phones only: nothing to measure new devices per scan on
    for i in range(300):
        alone._event(T0 + i, 99, 0)
    alone._fp_stats[99] = _FpStats(ended=300)
    assert alone._family_rate(99, T0 + 300, 0.0, fallback) == fallback


def test_a_mall_evening_of_per_scan_phones_is_not_split() -> None:
    """Issue 17's crowd: two evening hours of the mall preset (the same people per hour, about 1,000 phones in range
    at the peak). Each (new MAC, group) pair decided alone split the per-scan iPhones 5.5 times (29,171 devices for
    5,346 phones, passers-by +614 %); the decision pooled over the family's groups merged instead (3,380 devices,
    passers-by -38 %, visitors -32 %), as the new phones it counted made the rate of new phones it weighed; with the
    per-scan families' rate read from their scans (docs/METRICS.md "Per-scan families in a crowd") 4,815 devices,
    passers-by -6 %, visitors -22 %."""
    air, truth = simulate(evening(PRESETS["crowd"]), 1)
    assert truth.peak_in_range(0) > 900
    (r,) = measure(air, truth)
    print({k: (r.truth[k], r.got[k]) for k in ("visitors", "passersby", "phones")})
    assert 0.8 * r.truth["phones"] <= r.got["phones"] <= 1.2 * r.truth["phones"]
    assert within(r.got["passersby"], r.truth["passersby"], 0.20)
    assert within(r.got["visitors"], r.truth["visitors"], 0.30)


def test_real_single_phones_are_at_most_two_devices() -> None:
    for name, fcs, group_all in (("pintor-cagliari__B-ts-2021-Jun-03-h15-m34-s17-modePA-ch-11-th-60.pcap", "verify",
                                  False), ("baccichet__iPhone11-B_anonymized.pcap", "flag", True)):
        probes = list(Parser(fcs).parse_capture(require_shared_data(name).read_bytes()))  # type: ignore[arg-type]
        r = scene(name, probes, 1, PrivacyPolicy(group_all=group_all))
        print(r)
        assert r.macs in (80, 465)
        assert r.devices <= 2


def pintor(tmp_path_factory: pytest.TempPathFactory, name: str) -> tuple[list[Probe], int]:
    """A scene of the Pintor phones (keliu.testing.scenes), built once per test session."""
    builder = require_shared_data("pintor/build_scenes.py")
    return pintor_scenes(builder, tmp_path_factory.getbasetemp() / "pintor-scenes", (name,))[name]


@pytest.mark.parametrize("name", [*BUILT, *POWER_SAVING])
def test_real_phones_staged_together(name: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The Pintor phones (screen off, all present; screen on, arriving 2 min apart; power saving on, screen off and
    on): issue 17's targets for real phones staged together hold."""
    probes, phones = pintor(tmp_path_factory, name)
    r = scene(name, probes, phones)
    print(r)
    assert r.macs > 2 * phones  # the scene is what SOURCES.md says: rotating MACs
    assert within(r.visitors, phones, 0.20)
    assert r.passersby <= 0.20 * phones
    assert r.devices <= 1.5 * phones


@pytest.mark.parametrize(("name", "devices", "passersby"), [(BUILT[0], 19, 4), (BUILT[1], 23, 6)])
def test_sixteen_phones_of_two_datasets_staged_together_measured(
        name: str, devices: int, passersby: int, tmp_path_factory: pytest.TempPathFactory) -> None:
    """A Pintor scene and the six Baccichet phones from its first instant: sixteen phones, ten of one lab and six of
    another. Visitors and devices hold; phantom passers-by do NOT (4 and 6 of 16: the Baccichet phones' second
    element sets, as in the test below, and on the screen-on scene two Pintor phones' own). Pinned as measured
    (docs/METRICS.md) so that a change shows."""
    require_shared_data("baccichet/raw")
    probes, phones = pintor(tmp_path_factory, name)
    caps = baccichet(SHARED_DATA)
    n = phones + len(caps)
    r = scene(name, probes + staged(caps, min(p.ts for p in probes)), n, PrivacyPolicy(group_all=True))
    print(r)
    assert n == 16
    assert within(r.visitors, n, 0.20)
    assert r.devices <= min(devices, 1.5 * n)
    assert r.passersby <= passersby  # target 20 % of the phones (3.2): not met


def test_baccichet_phones_staged_together_measured() -> None:
    """Six more real phones (two iPhones share an element set), all arriving at once. Visitors hold (within 20 %);
    devices and phantom passers-by do NOT (docs/METRICS.md: the phones' second element sets, sent on MACs of their
    own, become devices of their own, bar the Oppo's, which probe for its preferred networks). This test pins what
    keliu reports so that a change shows: 10 devices and 3 passers-by (16 and 9 before the signal spread of phones
    that change their MAC inside a scan was learnt, 11 and 4 before they were weighed against their level over many
    bursts: the iPhone 11's weak channels, and the iPhone 12's weak scans with the iPhone 11's set, join the iPhone
    11). With the opt-in ``fingerprint`` evidence every target holds (7 devices, 1 passer-by; it is off by default: it
    joins different phones of the simulated crowds and of the Pintor scenes)."""
    require_shared_data("baccichet/groundtruth_files.csv")
    caps = baccichet(SHARED_DATA)
    probes = staged(caps, 1_780_000_000.0)
    r = scene("baccichet", probes, len(caps), PrivacyPolicy(group_all=True))
    print(r)
    assert r.macs > 800
    assert within(r.visitors, len(caps), 0.20)  # each phone one visitor (the iPhone 11: not split any more)
    assert r.devices <= 10  # 10 read; target 9 (1.5 x the phones): not met
    assert r.passersby <= 3  # 3 read; target 1 (20 % of the phones): not met
    # the Oppo's other element set probes for its networks: without the directed SSIDs its scans are 3 more
    # phantoms (13 devices and 6 passers-by, as before that evidence crossed element sets)
    bare = scene("baccichet", probes, len(caps),
                 PrivacyPolicy(group_all=True, evidence=PrivacyPolicy().evidence - {"ssid"}))
    print(bare)
    assert (bare.devices, bare.passersby) == (r.devices + 3, r.passersby + 3)
    alt = scene("baccichet", probes, len(caps),
                PrivacyPolicy(group_all=True, evidence=PrivacyPolicy().evidence | {"fingerprint"}))
    print(alt)
    assert alt.devices <= 1.5 * len(caps)
    assert within(alt.visitors, len(caps), 0.20)
    assert alt.passersby <= 0.2 * len(caps)  # 1 read: met
