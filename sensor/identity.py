"""Device identity: keyed hashes of MAC addresses and the privacy modes (pure).

A MAC address is personal data; an unkeyed hash of one is trivially reversed (the input space is 2^48, and CNIL
holds that even salted hashes are pseudonymous, not anonymous). keliu keys every device id with HMAC-SHA256 under
a secret that never leaves the appliance (``keliu.keys.secret_bytes(var_dir, "device_hmac")``) and derives from it:

* a **period key** (:func:`period_key`): in ``strict`` mode the period is one local day, so the same phone gets a
  different id every day and a passer-by can never be linked across days; in ``linked`` mode it is a block of
  ``link_days`` days, which allows repeat-visit statistics within the block;
* a **member key** (:func:`member_key`): stable forever, used only for devices whose owners consented on the portal
  (the portal calls :func:`member_device_id` and registers the id); an **opt-out** registered the same way makes
  the sensor drop that device's sightings.

:class:`PrivacyPolicy` holds the keying mode and the grouping's knobs; :mod:`sensor.grouping` assigns ids to probes
and groups randomized MACs into estimated devices.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from typing import Literal

Mode = Literal["strict", "linked"]
log = logging.getLogger(__name__)


def period_key(master: bytes, period: int) -> bytes:
    """The key for one rotation period (a day number in strict mode, a block of days in linked mode)."""
    return hmac.new(master, b"keliu-device-period:" + str(period).encode(), hashlib.sha256).digest()


def member_key(master: bytes) -> bytes:
    """The stable key for consented members' devices (never rotates; never used for anyone who did not consent)."""
    return hmac.new(master, b"keliu-member-device", hashlib.sha256).digest()


def sid_key(master: bytes) -> bytes:
    """The key of sighting idempotency ids: stable, so a sighting re-derived after a restart gets the same sid."""
    return hmac.new(master, b"keliu-sighting-id", hashlib.sha256).digest()[:32]


def mac_bytes(mac: str) -> bytes:
    """``aa:bb:cc:dd:ee:ff`` (any case, ``-`` or ``:``) to 6 bytes."""
    raw = bytes.fromhex(mac.replace(":", "").replace("-", ""))
    if len(raw) != 6:
        raise ValueError(f"not a MAC address: {mac!r}")
    return raw


def device_id(key: bytes, mac: bytes) -> str:
    """The device id of 6-byte ``mac`` under ``key``: 16 hex digits of HMAC-SHA256 (64 bits)."""
    return hmac.digest(key, mac, "sha256")[:8].hex()


def member_device_id(master: bytes, mac: bytes) -> str:
    """The stable device id the portal registers for a consenting member's (or an opting-out shopper's) device.

    ``mac`` is the 6-byte address the portal saw; the id is what the sensor will use (members) or drop (opt-outs)
    whenever that MAC probes."""
    return device_id(member_key(master), mac)


def is_randomized(mac: bytes) -> bool:
    """Locally administered bit set: a randomized (private) MAC."""
    return bool(mac[0] & 0x02)


@dataclass(frozen=True)
class PrivacyPolicy:
    """How device ids are keyed and how randomized MACs are grouped."""

    mode: Mode = "strict"
    link_days: int = 30
    #: seconds east of UTC of the store's local day (strict keys rotate at local midnight)
    utc_offset_s: int = 8 * 3600
    #: group rotating randomized MACs into estimated devices
    group_randomized: bool = True
    #: treat every MAC as possibly randomized (for anonymized captures whose locally-administered bit is random)
    group_all: bool = False
    #: a new MAC may join a group whose last MAC was heard at most this long before
    link_window_s: float = 180.0
    #: how far apart (dB) two MACs' signals may be and still be one phone
    link_rssi_db: float = 10.0
    #: a sequence number at most ``seq_gap + seq_rate * dt`` ahead of a group's last one continues its counter
    #: (the phone keeps counting while it probes on channels the sensor is not listening to)
    seq_gap: int = 64
    seq_rate: float = 16.0
    #: MAC and group state is forgotten after this long unheard
    mac_ttl_s: float = 900.0
    #: at most this many MACs are remembered (about 560 bytes each); past it the least recently heard are evicted
    max_macs: int = 50_000
    #: a phone that has been in range ``long_presence_s`` (staff, long visits) may be linked after a longer
    #: silence, ``long_window_s``, if its signal is within ``long_rssi_db``: passers-by never qualify
    long_presence_s: float = 600.0
    long_window_s: float = 600.0
    long_rssi_db: float = 6.0
    #: below this signal (dBm) on both sides, a MAC links only within ``weak_window_s``
    weak_rssi: float = -72.0
    weak_window_s: float = 40.0
    #: ``evidence`` (the default): the likelihood-ratio linker with one assignment per time step
    #: (docs/METRICS.md, "Linking rotating MACs"); ``first_fit``: the earlier rule (the first group that fits)
    linker: str = "evidence"
    #: the linker's evidence types (remove one for an ablation): ``seq``, ``rssi``, ``timing``, ``rotation``,
    #: ``commonness``, ``ssid``; and, off by default, ``fingerprint`` (a MAC no group of its own element set takes
    #: may be another set of a per-scan phone in range: it joins phones of different models in the simulated crowds,
    #: whose phones send second sets as the real ones do, and in the Pintor scenes, more often than it helps;
    #: docs/METRICS.md)
    evidence: frozenset[str] = frozenset({"seq", "rssi", "timing", "rotation", "commonness", "ssid"})
    #: new MACs first heard within this many seconds of each other are assigned together (one time step)
    link_step_s: float = 2.0
    #: a link is made when its log-likelihood ratio against "a new phone arrived" exceeds this
    link_threshold: float = -1.5
    #: ... and this for fingerprints that randomize at every scan (learnt: their MACs never live 30 s), whose
    #: many short chains make wrong links likelier (both calibrated on keliu.testing.crowd, docs/METRICS.md)
    perscan_threshold: float = -0.5
    #: how long a quiet group stays a candidate for the linker
    link_max_gap_s: float = 900.0
    #: timed rotation (Android, iOS 14-17 associated): a MAC younger than ``rotate_min_s`` rarely rotates; by
    #: ``rotate_max_s`` it has
    rotate_min_s: float = 120.0
    rotate_max_s: float = 900.0

    def period(self, ts: float) -> int:
        day = int((ts + self.utc_offset_s) // 86400)
        return day if self.mode == "strict" else day // self.link_days

    def period_bounds(self, period: int) -> tuple[float, float]:
        days = 1 if self.mode == "strict" else self.link_days
        start = period * days * 86400 - self.utc_offset_s
        return float(start), float(start + days * 86400)


@dataclass(frozen=True)
class Registry:
    """Device ids registered through the portal (member ids, see :func:`member_device_id`)."""

    members: frozenset[str] = frozenset()
    optouts: frozenset[str] = frozenset()
