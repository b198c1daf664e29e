"""Errors of the marketing package.

    KeliuError (keliu.errors)
    └── MarketingError        the package's base: everything marketing raises of its own derives from it
        ├── FieldInvalid      one named field of an input is wrong (an offer's, a POS row's, a campaign's)
        ├── CampaignRefused   a campaign may not be approved or moved to that status (``problems`` says why)
        └── ChannelFailed     a channel did not take a message; ``permanent``: retrying cannot help
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keliu.errors import KeliuError


class MarketingError(KeliuError):
    """The base of the marketing package's own errors."""


class FieldInvalid(MarketingError):
    """An input that cannot be used: ``field`` names what is wrong, ``reason`` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class CampaignRefused(MarketingError):
    """A campaign action that may not be done: ``key`` (translated by the console), ``status`` (HTTP), and for a
    refused spec its ``problems`` (marketing.core.campaign_spec.Problem: field, key, parameters)."""

    def __init__(self, key: str, status: int = 409, problems: Sequence[Any] = ()) -> None:
        detail = "; ".join(f"{p.field}: {p.key} {dict(p.params) or ''}".rstrip() for p in problems)
        super().__init__(f"{key}: {detail}" if detail else key)
        self.key = key
        self.status = status
        self.problems = list(problems)


class ChannelFailed(MarketingError):
    """A channel did not take a message (``permanent``: the channel refused it, e.g. the member does not follow the
    official account; otherwise it may succeed later, e.g. a timeout or a 5xx)."""

    def __init__(self, channel: str, reason: str, permanent: bool = False) -> None:
        super().__init__(f"{channel}: {reason}")
        self.channel = channel
        self.reason = reason
        self.permanent = permanent
