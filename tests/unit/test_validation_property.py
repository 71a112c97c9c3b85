"""Property: the identifier rules accept exactly the documented alphabets and lengths; no
string outside them (a trailing newline, a non-ASCII letter that lower-cases to ASCII) gets in."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat.domain import validation
from chat.domain.errors import InvalidRequest

USERNAME_FIRST = set(string.ascii_letters + string.digits)
USERNAME_REST = USERNAME_FIRST | set("_.-")
CLIENT_ID_CHARS = set(string.ascii_letters + string.digits + "_.:-")

# Mostly near-valid strings (the alphabet plus a few troublemakers), some arbitrary text.
near = st.text(
    alphabet=st.sampled_from([*sorted(USERNAME_REST | CLIENT_ID_CHARS), "\n", "\r", " ", "\u212a"]),
    max_size=70,
)
texts = near | st.text(max_size=70)


def _is_username(value: str) -> bool:
    return (
        3 <= len(value) <= 32
        and value[0] in USERNAME_FIRST
        and all(c in USERNAME_REST for c in value)
    )


@settings(max_examples=400, deadline=None)
@given(value=texts)
def test_username_accepts_exactly_the_documented_rule(value: str) -> None:
    if _is_username(value):
        assert validation.username(value) == value.lower()
    else:
        with pytest.raises(InvalidRequest) as info:
            validation.username(value)
        assert info.value.code == "invalid_username"


@settings(max_examples=400, deadline=None)
@given(value=texts)
def test_client_id_accepts_exactly_the_documented_rule(value: str) -> None:
    if 1 <= len(value) <= 64 and all(c in CLIENT_ID_CHARS for c in value):
        assert validation.client_id(value) == value
    else:
        with pytest.raises(InvalidRequest) as info:
            validation.client_id(value)
        assert info.value.code == "invalid_client_id"


@pytest.mark.parametrize("value", ["abc\n", "a" * 64 + "\n", "x\n"])
def test_a_final_newline_is_not_a_client_id(value: str) -> None:
    with pytest.raises(InvalidRequest):
        validation.client_id(value)


@pytest.mark.parametrize("value", ["alice\n", "\u212aelvin", "bob\r"])
def test_a_final_newline_or_a_look_alike_is_not_a_username(value: str) -> None:
    with pytest.raises(InvalidRequest):
        validation.username(value)
