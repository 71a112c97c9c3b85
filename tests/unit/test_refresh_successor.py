"""The successor of a refresh token is a keyed hash of it: the same on a retry, unguessable
without both the token and the server's key (what the rotation grace window relies on)."""

from __future__ import annotations

from chat.domain.clock import system_clock
from chat.domain.tokens import RefreshToken, TokenIssuer


def _issuer(secret: str) -> TokenIssuer:
    return TokenIssuer(secret, issuer="i", audience="a", access_ttl_s=60, clock=system_clock)


def test_the_successor_is_deterministic_per_token_and_key() -> None:
    key = _issuer("k" * 32).rotation_key
    token = RefreshToken.new()
    first, again = token.successor(key), token.successor(key)
    assert first == again
    assert first.family_id == token.family_id and first.secret != token.secret
    assert RefreshToken.parse(str(first)) == first
    assert first.successor(key) != first  # the chain moves on
    assert token.successor(_issuer("o" * 32).rotation_key) != first
    assert RefreshToken.new(token.family_id).successor(key) != first


def test_the_rotation_key_is_not_the_signing_secret() -> None:
    secret = "s" * 32
    assert _issuer(secret).rotation_key != secret.encode()
    assert len(_issuer(secret).rotation_key) == 32
