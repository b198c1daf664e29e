"""Errors of the marketing package.

    KeliuError (keliu.errors)
    └── MarketingError        the package's base: everything marketing raises of its own derives from it
        └── FieldInvalid      one named field of an input is wrong (an offer's, a POS row's)
"""
from __future__ import annotations

from keliu.errors import KeliuError


class MarketingError(KeliuError):
    """The base of the marketing package's own errors."""


class FieldInvalid(MarketingError):
    """An input that cannot be used: ``field`` names what is wrong, ``reason`` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
