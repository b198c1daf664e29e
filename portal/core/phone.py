"""Phone numbers: normalization to E.164 and masking for logs and admin pages (pure).

Mainland China (+86) is the default region: ``13812345678``, ``+86 138 1234 5678`` and ``0086-138-1234-5678`` are
the same member. Only mobile numbers are accepted (an SMS must reach them).
"""
from __future__ import annotations

import phonenumbers
from phonenumbers import PhoneNumberType

from portal.errors import InvalidPhone

MOBILE = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)


def normalize(raw: str, region: str = "CN") -> str:
    """The E.164 form of a mobile number, or :class:`InvalidPhone`."""
    text = (raw or "").strip()
    if not text or len(text) > 32:
        raise InvalidPhone("enter a mobile phone number", "invalid_phone")
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        num = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone("not a phone number", "invalid_phone") from exc
    if not phonenumbers.is_valid_number(num) or phonenumbers.number_type(num) not in MOBILE:
        raise InvalidPhone("not a valid mobile phone number", "invalid_phone")
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)


def mask(e164: str | None) -> str:
    """``+8613812345678`` → ``138****5678`` (national number, middle hidden); other countries keep the prefix."""
    if not e164:
        return "—"
    digits = e164.lstrip("+")
    national = digits.removeprefix("86")
    if len(national) < 7:
        return "*" * len(national)
    return f"{national[:3]}****{national[-4:]}"
