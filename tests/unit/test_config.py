"""Settings fail loudly and name the variable."""

from __future__ import annotations

import pytest

from chat.config import Backend, ConfigError, load
from chat.ws import close_codes


def test_env_and_overrides() -> None:
    s = load(
        {
            "CHAT_PORT": "9001",
            "CHAT_ADMINS": "Root, ops",
            "CHAT_LIMIT_MAX_BODY_CHARS": "10",
            "CHAT_ALLOWED_ORIGINS": "https://a.example,https://b.example",
        },
        host="0.0.0.0",
    )
    assert s.port == 9001
    assert s.host == "0.0.0.0"
    assert s.admins == frozenset({"root", "ops"})
    assert s.limits.max_body_chars == 10
    assert s.origins == frozenset({"https://a.example", "https://b.example"})


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"CHAT_PORT": "eighty"}, "CHAT_PORT"),
        ({"CHAT_PORT": "70000"}, "CHAT_PORT"),
        ({"CHAT_BACKEND": "mainframe"}, "CHAT_BACKEND"),
        ({"CHAT_JWT_SECRET": "short"}, "CHAT_JWT_SECRET"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load(env)


def test_cluster_mode_lists_missing_dependencies() -> None:
    with pytest.raises(ConfigError) as info:
        load({"CHAT_BACKEND": "cluster", "REDIS_URL": "redis://x"})
    for name in ("POSTGRES_DSN", "MONGODB_URI", "CHAT_JWT_SECRET"):
        assert name in str(info.value)
    assert load({}).backend is Backend.EMBEDDED


def test_close_code_ranges() -> None:
    assert close_codes.is_reconnectable(1012)
    assert close_codes.is_reconnectable(1006)
    assert close_codes.is_reconnectable(4008)
    for terminal in (4401, 4403, 4408, 4409, 4429):
        assert not close_codes.is_reconnectable(terminal)
    assert all(4000 <= c.code < 5000 for c in close_codes.TABLE if c.code >= 4000)
