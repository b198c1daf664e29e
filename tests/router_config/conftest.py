"""Fixtures of the router tests: a two-phone netns bench (prefix "klr") with a stand-in portal."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from keliu.testing.netbench import Bench
from tests.router_config.phones import open_bench


@pytest.fixture
def bench() -> Iterator[Bench]:
    b = open_bench("klr")
    try:
        yield b
    finally:
        b.stop()
