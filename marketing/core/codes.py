"""Coupon codes: unguessable, typeable, with a check character (pure).

A code is 15 random symbols of Crockford's base32 (75 bits from the caller's random bytes: guessing one live code
among a million issued takes ~2^55 tries) followed by one check symbol, the Luhn mod-32 of the others, which catches
every single mistyped symbol and every swap of two neighbours before the database is asked. It is shown in groups of
four (``7K2M-Q9XD-4TRB-VWHZ``). Reading it back is forgiving the way Crockford meant: case, spaces and hyphens are
ignored, ``O`` reads as ``0`` and ``I``/``L`` as ``1``; ``U`` is never a symbol.
"""
from __future__ import annotations

from marketing.errors import MarketingError

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1", "-": None, " ": None})
#: random symbols, then one check symbol
BODY = 15
LENGTH = BODY + 1
#: random bytes a code needs (75 bits are taken from them)
RANDOM_BYTES = 10


class InvalidCode(MarketingError):
    """Not a coupon code: wrong length, a letter outside the alphabet, or a check symbol that does not match."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def check_symbol(body: str) -> str:
    """The Luhn mod-32 check symbol of ``body`` (symbols of :data:`ALPHABET`)."""
    total = 0
    factor = 2
    for ch in reversed(body):
        addend = factor * _VALUE[ch]
        factor = 1 if factor == 2 else 2
        total += addend // 32 + addend % 32
    return ALPHABET[(32 - total % 32) % 32]


def from_random(random: bytes) -> str:
    """The code made of the first 75 bits of ``random`` (at least :data:`RANDOM_BYTES` bytes, e.g.
    ``secrets.token_bytes(10)``), in canonical form (no hyphens)."""
    if len(random) < RANDOM_BYTES:
        raise ValueError(f"a code needs {RANDOM_BYTES} random bytes, got {len(random)}")
    n = int.from_bytes(random[:RANDOM_BYTES], "big") >> (RANDOM_BYTES * 8 - BODY * 5)
    body = "".join(ALPHABET[(n >> (5 * (BODY - 1 - i))) & 31] for i in range(BODY))
    return body + check_symbol(body)


def normalize(text: str) -> str:
    """The canonical form of a typed or scanned code, or :class:`InvalidCode`."""
    if not isinstance(text, str) or len(text) > 64:
        raise InvalidCode("not a coupon code")
    code = text.upper().translate(_READ_AS)
    if len(code) != LENGTH:
        raise InvalidCode(f"a coupon code has {LENGTH} characters")
    if any(ch not in _VALUE for ch in code):
        raise InvalidCode("a coupon code has only digits and the letters of Crockford's base32")
    if check_symbol(code[:BODY]) != code[BODY]:
        raise InvalidCode("the check character does not match (a typo?)")
    return code


def display(code: str) -> str:
    """Groups of four for reading aloud and printing: ``7K2M-Q9XD-4TRB-VWHZ``."""
    return "-".join(code[i:i + 4] for i in range(0, len(code), 4))
