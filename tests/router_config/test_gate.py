"""NftGate's reading of libnftables' JSON set elements (pure part of an edge module)."""
from __future__ import annotations

from typing import Any

import pytest

from router_config.gate import _element


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"elem": {"val": {"concat": ["02:00:00:00:00:01", "10.77.0.20"]}, "timeout": 600, "expires": 598,
                   "counter": {"packets": 12, "bytes": 3456}}},
         ("02:00:00:00:00:01", "10.77.0.20", 598.0, 3456)),
        ({"elem": {"val": "10.77.0.20", "timeout": 600, "expires": 12, "counter": {"packets": 1, "bytes": 60}}},
         ("10.77.0.20", "", 12.0, 60)),
        ({"concat": ["02:00:00:00:00:02", "10.77.0.21"]}, ("02:00:00:00:00:02", "10.77.0.21", None, 0)),
        ("02:00:00:00:00:aa", ("02:00:00:00:00:aa", "", None, 0)),
    ],
)
def test_element(raw: Any, expected: tuple[str, str, float | None, int]) -> None:
    assert _element(raw) == expected
