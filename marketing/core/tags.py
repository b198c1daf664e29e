"""Member tags (pure): what a tag may be. A tag is a short label a store or mall gives members (``vip``,
``student``, ``团购``) for its campaigns' segments (``tag in vip, student``; :mod:`marketing.core.campaign_spec`).

A tag is 1–32 letters (any script), digits, ``_`` or ``-``, compared in lower case after NFKC (``ＶＩＰ`` is
``vip``). Anything else is refused with :class:`marketing.errors.FieldInvalid` naming the text, never stored.
"""
from __future__ import annotations

import re
import unicodedata

from marketing.errors import FieldInvalid

MAX_LEN = 32
_TAG = re.compile(r"[^\W][\w-]{0," + str(MAX_LEN - 1) + "}")


def normalize(text: str) -> str:
    """The tag ``text`` names (NFKC, trimmed, lower case); FieldInvalid when it is not a tag."""
    tag = unicodedata.normalize("NFKC", text).strip().lower()
    if not _TAG.fullmatch(tag):
        raise FieldInvalid("tag", f"expected 1-{MAX_LEN} letters, digits, '_' or '-' (not starting with '-'), "
                                  f"got {text!r}")
    return tag


def split(text: str) -> tuple[str, ...]:
    """A comma-separated list of tags (``vip, student``) → the distinct tags, sorted; FieldInvalid for a bad one
    or an empty list."""
    out = sorted({normalize(part) for part in text.split(",")})
    if not out:
        raise FieldInvalid("tag", "expected at least one tag")
    return tuple(out)
