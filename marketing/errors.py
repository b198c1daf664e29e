"""Errors of the marketing package.

    KeliuError (keliu.errors)
    └── MarketingError        the package's base: everything marketing raises of its own derives from it
"""
from __future__ import annotations

from keliu.errors import KeliuError


class MarketingError(KeliuError):
    """The base of the marketing package's own errors."""
