"""Where a user-given ``next`` may send a browser: only a path on this site (pure).

Every view that redirects to a target taken from a request (``/admin/login?next=``, the WeChat ``next``) passes it
through :func:`safe_next`. A target is kept only when it is printable ASCII (a browser drops a tab or newline
before it reads a ``Location``, so ``/\\t/evil.example`` would become ``//evil.example``; a CR or LF would make
the server refuse the header), has no backslash (browsers read ``/\\evil.example`` as ``//evil.example``), is a
path without scheme or host, and still is the same path after percent-decoding and normalising (``/%2F/x``,
``/.//x`` and ``/a/../x`` are refused). Anything else gives the caller's default: a malformed ``next`` is never an error and never leaves the
site.
"""
from __future__ import annotations

import posixpath
import re
from urllib.parse import unquote, urlsplit

#: longer targets are not kept (a browser's own limit is far above; nothing of ours is this long)
MAX_LENGTH = 2048
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _local_path(path: str) -> bool:
    return path.startswith("/") and not path.startswith("//") and "\\" not in path


def _clean(text: str, printable_ascii: bool) -> bool:
    for ch in text:
        code = ord(ch)
        if code < 0x20 or code == 0x7F or ch == "\\":
            return False
        if printable_ascii and (code > 0x7E or ch == " "):
            return False
        if not printable_ascii and (0x80 <= code <= 0x9F or ch in "\u2028\u2029\ufeff"):
            return False
    return True


def is_local(target: str) -> bool:
    """Whether ``target`` is a normalised path on this site (see the module docstring)."""
    if not target or len(target) > MAX_LENGTH or not _clean(target, printable_ascii=True):
        return False
    if _BAD_ESCAPE.search(target):
        return False
    parts = urlsplit(target)
    if not _local_path(target) or parts.scheme or parts.netloc or not _local_path(parts.path):
        return False
    decoded = unquote(parts.path, errors="strict")
    if not _clean(decoded, printable_ascii=False) or not _local_path(decoded):
        return False
    # normalised, it must be the same path: no empty segment ("/x//y"), no dot segment ("/.//evil.example" is
    # "//evil.example" once a browser or proxy removes the dot); none of our pages has either
    if "//" in decoded:
        return False
    return decoded == "/" or posixpath.normpath(decoded) == decoded.rstrip("/")


def safe_next(target: object, default: str) -> str:
    """``target`` if it is a local path, else ``default`` (which the caller chose, so is trusted)."""
    if isinstance(target, str):
        try:
            if is_local(target):
                return target
        except UnicodeDecodeError:  # a %-escape that is not UTF-8
            return default
    return default
