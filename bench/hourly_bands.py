"""Bench: would the day's calibrated band hold for an hour's visitors? (issue 17 item 3, docs/METRICS.md "Error
bands and bases").

``analytics.bands`` is calibrated on whole days (truth / reported of a day's visitors). ``hourly_visitors`` counts
a visitor in the hour its first visit of the day started, and the linker's errors do not fall evenly on the hours:
a phone whose rotating MACs the linker loses becomes several "visitors", the later ones starting later. This runs
the calibration's scenarios (``keliu.testing.crowd`` presets, the sensor's identifier and analytics' own day, as
``keliu.testing.accuracy`` does) and compares, per store-local hour with at least ``--min`` reported or true
arrivals, the true arrivals (each visitor's first visit of at least the minimum dwell, by its start) with the
reported ``1h`` rollup, and whether the day's band of the hour's reported figure (``analytics.bands.band``) covers
the truth. The day's own figures (the calibration's) are printed beside them, as the baseline.

Run: ``PYTHONPATH=. .venv/bin/python bench/hourly_bands.py [--seed 1] [--presets none,half,all_reset,native]``.
The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics.bands import band
from analytics.visits import Rules
from keliu.testing.accuracy import day_of, identify
from keliu.testing.crowd import PRESETS, simulate


def hours_of(preset: str, seed: int, rules: Rules) -> list[dict[str, object]]:
    """Per day of the preset: the day's truth and reported visitors, and per hour both."""
    air, truth = simulate(PRESETS[preset], seed)
    dev, _ident = identify(air)
    out = []
    for day in range(truth.scenario.days):
        lo = truth.scenario.day_start(day)
        hi = lo + 86400
        keep = (air.ts >= lo) & (air.ts < hi) & (dev != 0)
        sd = day_of(air.ts[keep], dev[keep], air.rssi[keep], lo, rules)
        got = [r.visitors for r in sd.rollup("1h")]
        first = [min(s for s, e in p.visits if lo <= s < hi and e - s >= rules.min_dwell_s)
                 for p in truth.people if p.kind != "staff"
                 and any(lo <= s < hi and e - s >= rules.min_dwell_s for s, e in p.visits)]
        true = np.bincount(np.clip(((np.array(first) - lo) // 3600).astype(np.int64), 0, 23), minlength=24)
        out.append({"preset": preset, "day": day + 1, "truth": int(true.sum()), "reported": int(sum(got)),
                    "hours": [(int(t), int(g)) for t, g in zip(true.tolist(), got)]})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--presets", default="none,half,all_reset,native")
    ap.add_argument("--min", type=int, default=10, help="hours with fewer reported and true arrivals are left out")
    args = ap.parse_args()
    rules = Rules()
    days_in, hours_in, hours_n, ratios, day_ratios = 0, 0, 0, [], []
    rows = []
    for preset in args.presets.split(","):
        t0 = time.perf_counter()
        for d in hours_of(preset, args.seed, rules):
            lo, hi = band("visitors", d["reported"])
            days_in += lo <= d["truth"] <= hi
            day_ratios.append(d["truth"] / d["reported"])
            covered, n, worst = 0, 0, []
            for t, g in d["hours"]:  # type: ignore[attr-defined]
                if max(t, g) < args.min or g == 0:
                    continue
                lo, hi = band("visitors", g)
                n += 1
                covered += lo <= t <= hi
                ratios.append(t / g)
                worst.append(t / g)
            hours_in, hours_n = hours_in + covered, hours_n + n
            rows.append({"preset": preset, "day": d["day"], "day_ratio": round(d["truth"] / d["reported"], 3),
                         "hours": n, "hours_covered": covered,
                         "hour_ratio_range": [round(min(worst), 3), round(max(worst), 3)] if worst else None})
            print(f"{preset} seed {args.seed} day {d['day']}: day truth/reported {d['truth']}/{d['reported']} = "
                  f"{d['truth'] / d['reported']:.3f}; {covered} of {n} hours (≥ {args.min} arrivals) inside the "
                  f"day's band, hour truth/reported {rows[-1]['hour_ratio_range']} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    result = {"seed": args.seed, "min_arrivals": args.min, "days_covered": days_in, "days": len(day_ratios),
              "day_ratio_range": [round(min(day_ratios), 3), round(max(day_ratios), 3)],
              "hours_covered": hours_in, "hours": hours_n,
              "hour_ratio_range": [round(min(ratios), 3), round(max(ratios), 3)] if ratios else None, "rows": rows}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
