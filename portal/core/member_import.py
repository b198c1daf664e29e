"""One row of a CRM's member file, checked (pure: a dict of cells in, a :class:`Row` or a rejection reason out).

The columns (a header row, any order, case-insensitive; docs/PRIVACY.md):

- ``phone`` (required): a mobile number in any spelling :func:`portal.core.phone.normalize` accepts;
- ``store``: the store the member was first seen in (default: the import's store);
- ``joined``: when they became a member (date or date and time; default: the import's time);
- per purpose in :data:`PURPOSES` (``marketing``, ``analytics``): ``<purpose>_source`` (where the evidence is: "CRM
  form 2024", "paper form"), ``<purpose>_date`` (when they agreed) and ``<purpose>_version`` (the version of the
  text they agreed to). All three, or none: a row without them imports without that consent; a row with some of
  them is rejected (evidence that cannot be shown is no evidence).

Dates without a zone are the store's local time. Nothing else is accepted: an unknown column rejects the file (a
misspelt evidence column must not drop consents silently).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, tzinfo
from typing import Any

from portal.core import phone as phones
from portal.errors import BadRequest, PortalError

PURPOSES = ("marketing", "analytics")
COLUMNS = ("phone", "store", "joined") + tuple(f"{p}_{f}" for p in PURPOSES for f in ("source", "date", "version"))


@dataclass(frozen=True)
class Evidence:
    kind: str
    source: str
    ts: datetime
    version: str


@dataclass(frozen=True)
class Row:
    phone_e164: str
    store_id: str
    joined: datetime | None
    evidence: tuple[Evidence, ...]


def header(cells: list[Any]) -> list[str]:
    """The normalized column names; BadRequest naming an unknown or repeated column, or a missing ``phone``."""
    names = [str(c or "").strip().lower() for c in cells]
    unknown = [n for n in names if n and n not in COLUMNS]
    if unknown:
        raise BadRequest(f"unknown column {unknown[0]!r}; the columns are: {', '.join(COLUMNS)}", "bad_header")
    seen = [n for n in names if n]
    if len(seen) != len(set(seen)):
        raise BadRequest("a column appears twice", "bad_header")
    if "phone" not in names:
        raise BadRequest("the file has no 'phone' column", "bad_header")
    return names


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        v = int(v)  # a spreadsheet's number cell
    return str(v).strip()


def _when(v: Any, zone: tzinfo, now: datetime, what: str) -> datetime:
    if isinstance(v, datetime):
        t = v
    elif isinstance(v, date):
        t = datetime.combine(v, time())
    else:
        try:
            t = datetime.fromisoformat(_text(v))
        except ValueError:
            raise BadRequest(f"{what}: not a date (YYYY-MM-DD or YYYY-MM-DD HH:MM): {_text(v)[:40]!r}") from None
    t = t.replace(tzinfo=zone) if t.tzinfo is None else t
    if t > now:
        raise BadRequest(f"{what}: in the future")
    return t


def parse(cells: Mapping[str, Any], default_store: str, zones: Mapping[str, tzinfo], now: datetime) -> Row:
    """The row, or BadRequest with the reason. ``zones``: the known stores and their time zones."""
    try:
        e164 = phones.normalize(_text(cells.get("phone")))
    except PortalError as exc:
        raise BadRequest(f"phone: {exc.message}") from None
    store = _text(cells.get("store")) or default_store
    if store not in zones:
        raise BadRequest(f"store: no store {store[:64]!r}")
    zone = zones[store]
    joined = _when(cells["joined"], zone, now, "joined") if _text(cells.get("joined")) else None
    evidence = []
    for p in PURPOSES:
        parts = {f: cells.get(f"{p}_{f}") for f in ("source", "date", "version")}
        given = [f for f, v in parts.items() if _text(v)]
        if not given:
            continue
        if len(given) != 3:
            missing = [f"{p}_{f}" for f in parts if f not in given]
            raise BadRequest(f"{', '.join(missing)}: missing (evidence needs source, date and version)")
        source, version = _text(parts["source"]), _text(parts["version"])
        if len(source) > 64 or len(version) > 32:
            raise BadRequest(f"{p}: source at most 64 characters, version at most 32")
        evidence.append(Evidence(p, source, _when(parts["date"], zone, now, f"{p}_date"), version))
    return Row(e164, store, joined, tuple(evidence))
