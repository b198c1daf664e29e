"""Real phones staged together, from the labelled captures in ``../shared/data`` (issue 17's real-scene targets).

Scenes of the Pintor phones are built by the dataset folder's own ``build_scenes.py`` (its timestamps shifted with
tshark's editcap, merged with mergecap, frame bytes unchanged) into a cache folder, once; the Baccichet phones are
staged in memory (:func:`keliu.testing.accuracy.staged`), and so are the phones of a folder of the full Pintor dataset
(:func:`pintor_phones`, ``bench/accuracy.py --pintor-raw``). Used by ``bench/accuracy.py`` and the linking tests.
"""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path
from typing import Any

#: the two scenes ``build_scenes.py`` builds when run (screen off, all present; screen on, arriving 2 min apart)
BUILT = ("pintor_scene_modeS_simultaneous", "pintor_scene_modeA_staggered2min")
#: more scenes of the same ten phones, built here with the script's ``build``: power saving on (modes PS and PA, as
#: the dataset's file names read), screen off and on, all present from the same instant (D has no such recording)
POWER_SAVING = {"pintor_scene_power_saving_screen_off": ["PS", "PS_new"],
                "pintor_scene_power_saving_screen_on": ["PA", "PA_new"]}


#: builds one scene with ``build_scenes.py``'s own ``build`` (argv: the script, the cache, the scene, its modes), all
#: phones from the same instant, of the phones recorded in those modes
_BUILD = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("build_scenes", sys.argv[1])
bs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bs)
bs.OUT = sys.argv[2]
sessions = bs.sessions()
bs.DEVICES = [d for d in bs.MODELS if bs.pick(sessions, d, sys.argv[4:])]
bs.build(sys.argv[3], sys.argv[4:], 0)
"""


def read_scene(cache: Path, name: str) -> tuple[list[Any], int]:
    """A scene that ``build_scenes.py`` wrote into ``cache``: its probes (:class:`sensor.frames.Probe`) and the phones
    heard in it."""
    from sensor.frames import Parser

    probes = list(Parser("verify").parse_capture((cache / f"{name}.pcap").read_bytes()))
    with open(cache / f"{name}_devices.csv", newline="") as f:
        phones = sum(int(r["probe_requests"]) > 0 for r in csv.DictReader(f))
    return probes, phones


def pintor_scenes(builder: Path, cache: Path, names: tuple[str, ...] = (*BUILT, *POWER_SAVING)
                  ) -> dict[str, tuple[list[Any], int]]:
    """The scenes ``names`` of the Pintor phones (:data:`BUILT`, :data:`POWER_SAVING`), built into ``cache`` by
    ``builder`` (``build_scenes.py``) where they are not there yet."""
    if any(n in BUILT for n in names) and not all((cache / f"{n}.pcap").exists() for n in BUILT):
        subprocess.run([sys.executable, str(builder), str(cache)], check=True, capture_output=True, timeout=600)
    for name in names:
        if name in POWER_SAVING and not (cache / f"{name}.pcap").exists():
            # in a process of its own: the script reads its tables at import (files it leaves open)
            subprocess.run([sys.executable, "-c", _BUILD, str(builder), str(cache), name, *POWER_SAVING[name]],
                           check=True, capture_output=True, timeout=600)
    return {n: read_scene(cache, n) for n in names}


def baccichet(shared: Path) -> list[list[Any]]:
    """The six Baccichet phones' probes, one list per phone (anonymized MACs: identify them with ``group_all``)."""
    from sensor.frames import Parser

    return [list(Parser("flag").parse_capture(f.read_bytes())) for f in sorted((shared / "baccichet" / "raw").glob("*.pcap"))]


def pintor_phones(raw: Path, modes: list[str]) -> dict[str, list[Any]]:
    """Every phone of a folder of the Pintor dataset's captures (file names ``<letter>-ts-...-mode<M>-ch-<c>-...``;
    the full dataset has 22 phones, ../shared/data/pintor ten of them): per phone letter, the probes of its first
    recording in the first of ``modes`` it has, its three channels' files together (the phones without one are
    left out)."""
    from sensor.frames import Parser

    sessions: dict[str, list[Path]] = {}
    for f in sorted(raw.glob("*.pcap")):
        sessions.setdefault(f.name.split("-ch-")[0], []).append(f)
    out: dict[str, list[Any]] = {}
    for letter in sorted({k.split("-")[0] for k in sessions}):
        for mode in modes:
            keys = sorted(k for k in sessions if k.startswith(letter + "-") and k.endswith("-mode" + mode))
            if keys:
                out[letter] = [p for f in sessions[keys[0]] if f.stat().st_size > 24
                               for p in Parser("verify").parse_capture(f.read_bytes())]
                break
    return {k: v for k, v in out.items() if v}

