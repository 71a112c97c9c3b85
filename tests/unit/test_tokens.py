"""Access and refresh tokens: algorithm pinned, claims checked, clock driven explicitly."""

from __future__ import annotations

import pytest

from chat.domain.errors import Unauthenticated
from chat.domain.tokens import RefreshToken, TokenIssuer

SECRET = "s" * 40


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def issuer(clock: Clock, **kw: str) -> TokenIssuer:
    return TokenIssuer(
        SECRET,
        issuer=kw.get("iss", "chat"),
        audience=kw.get("aud", "clients"),
        access_ttl_s=60,
        clock=clock,
    )


def test_roundtrip_and_expiry() -> None:
    clock = Clock()
    tokens = issuer(clock)
    token = tokens.issue("u1", "s1")
    claims = tokens.verify(token)
    assert (claims.user_id, claims.session_id) == ("u1", "s1")
    clock.now += 61
    with pytest.raises(Unauthenticated) as info:
        tokens.verify(token)
    assert info.value.code == "token_expired"


@pytest.mark.parametrize("field", ["iss", "aud"])
def test_wrong_issuer_or_audience_rejected(field: str) -> None:
    clock = Clock()
    other = issuer(clock, **{field: "someone-else"})
    with pytest.raises(Unauthenticated) as info:
        issuer(clock).verify(other.issue("u1", "s1"))
    assert info.value.code == "token_invalid"


def test_other_key_rejected() -> None:
    clock = Clock()
    forged = TokenIssuer(
        "x" * 40, issuer="chat", audience="clients", access_ttl_s=60, clock=clock
    ).issue("u1", "s1")
    with pytest.raises(Unauthenticated):
        issuer(clock).verify(forged)


def test_short_secret_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        TokenIssuer("short", issuer="i", audience="a", access_ttl_s=1, clock=Clock())


def test_refresh_token_parse_and_hash() -> None:
    token = RefreshToken.new()
    parsed = RefreshToken.parse(str(token))
    assert parsed == token
    assert parsed.hash != token.secret
    for bad in ("nodot", ".x", "x.", "a." + "b" * 300):
        with pytest.raises(Unauthenticated):
            RefreshToken.parse(bad)
