"""The member card's QR token (pure): signed, short-lived, single-use, one mall's."""
from __future__ import annotations

import pytest

from marketing.core import card

KEY = card.card_key(b"k" * 32)
T = 1_795_000_000
NONCE = bytes(range(12))


def tcode(mall: str = "m1", member: int = 42, at: int = T, nonce: bytes = NONCE, key: bytes = KEY) -> str:
    return card.sign(key, mall, member, at, nonce)


def reason(token: str, mall: str = "m1", now: int = T + 10, used: frozenset[str] = frozenset()) -> str:
    with pytest.raises(card.CardRejected) as exc:
        card.verify(KEY, token, mall, now, used)
    return exc.value.reason


def test_a_fresh_code_names_its_member() -> None:
    claims = card.verify(KEY, tcode(), "m1", T + 10)
    assert (claims.mall_id, claims.member_id, claims.issued_at) == ("m1", 42, T)
    assert claims.expires_at == T + card.TTL_S
    assert card.looks_like_card(tcode()) and not card.looks_like_card("K7Q2-ABCD-EFGH")


@pytest.mark.parametrize("now, ok", [(T, True), (T + card.TTL_S, True), (T + card.TTL_S + 1, False),
                                     (T - card.SKEW_S, True), (T - card.SKEW_S - 1, False)])
def test_validity_window(now: int, ok: bool) -> None:
    if ok:
        assert card.verify(KEY, tcode(), "m1", now).member_id == 42
    else:
        assert reason(tcode(), now=now) in ("expired", "forged")


def test_expired_screenshot() -> None:
    assert reason(tcode(), now=T + 61) == "expired"


def test_forged_codes() -> None:
    good = tcode()
    other_member = good.replace(".42.", ".43.")
    assert reason(other_member) == "forged"
    later = good.replace(f".{T}.", f".{T + 600}.")
    assert reason(later, now=T + 610) == "forged"  # re-dated to stay valid: the MAC no longer matches
    assert reason(tcode(key=card.card_key(b"x" * 32))) == "forged"
    assert reason(good[:-1] + ("A" if good[-1] != "A" else "B")) == "forged"


def test_another_malls_code() -> None:
    assert reason(tcode(mall="m2"), mall="m1") == "other_mall"
    # renaming the mall inside a code breaks its MAC
    assert reason(tcode(mall="m2").replace("KC1.m2.", "KC1.m1."), mall="m1") == "forged"


def test_replayed_nonce() -> None:
    token = tcode()
    nonce = card.verify(KEY, token, "m1", T + 1).nonce
    assert reason(token, used=frozenset({nonce})) == "replayed"
    assert card.verify(KEY, tcode(nonce=b"z" * 12), "m1", T + 1, frozenset({nonce})).member_id == 42


@pytest.mark.parametrize("text", ["", "KC1", "KC1.m1.42.1795000000.AAAA", "KC1.m1.x.1795000000.AAAA.BBBB",
                                  "KC2.m1.42.1795000000.AAAA.BBBB", "KC1.m 1.42.1795000000.AAAA.BBBB",
                                  "KC1.m1.42.1795000000.aaaa.BBBB", "KC1.m1.-42.1795000000.AAAA.BBBB",
                                  "KC1.m1.42.17950000000000000.AAAA.BBBB"])
def test_malformed(text: str) -> None:
    assert reason(text) == "malformed"


def test_sign_refuses_what_it_cannot_encode() -> None:
    with pytest.raises(ValueError):
        card.sign(KEY, "a.b", 1, T, NONCE)
    with pytest.raises(ValueError):
        card.sign(KEY, "m1", 1, T, b"short")


def test_verifier_for_the_pos() -> None:
    from datetime import UTC, datetime

    v = card.CardVerifier(KEY, "m1")
    at = datetime.fromtimestamp(T + 10, UTC)
    assert v.member_of(tcode(), at) == 42
    assert v.member_of(tcode(), at) == 42  # a POS resending the same sale links the same member
    assert v.member_of(tcode(mall="m2"), at) is None
    assert v.member_of(tcode(), datetime.fromtimestamp(T + 61, UTC)) is None
    assert v.member_of("nonsense", at) is None
    assert "KEY" not in repr(v) and repr(KEY) not in repr(v)
