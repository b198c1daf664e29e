"""keliu.testing.scenes: real phones of a folder of the Pintor dataset's captures, one recording per phone."""
from __future__ import annotations

import csv
from pathlib import Path

from keliu.testing.scenes import pintor_phones
from tests.conftest import require_shared_data


def test_each_phone_is_its_first_recording_in_the_first_mode_it_has(tmp_path: Path) -> None:
    """A folder holding A's screen-off and screen-on recordings and C's screen-off one (three channel files each):
    asked for screen on first, A is its screen-on recording, all three channels, and C, which has none, its
    screen-off one; asked for a mode nobody has, there are no phones."""
    raw = require_shared_data("pintor/raw")
    with open(raw.parent / "manifest.csv", newline="") as f:
        probes = {r["file"]: int(r["probe_req"]) for r in csv.DictReader(f)}
    chosen = [n for n in probes if n.startswith(("A-ts-2021-May-21-h11-m57-s24-modeS-", "A-ts-2021-May-21-h12-m22-s15-modeA-",
                                                 "C-ts-2021-Jun-11-h15-m30-s01-modeS-"))]
    assert len(chosen) == 9
    for name in chosen:
        (tmp_path / name).symlink_to(raw / name)
    phones = pintor_phones(tmp_path, ["A", "S"])
    assert sorted(phones) == ["A", "C"]
    assert len(phones["A"]) == sum(n for k, n in probes.items() if k in chosen and "-modeA-" in k and k[0] == "A")
    assert len(phones["C"]) == sum(n for k, n in probes.items() if k in chosen and k[0] == "C")
    assert {p.freq for p in phones["A"]} == {2412, 2437, 2462}
    assert pintor_phones(tmp_path, ["PS"]) == {}
