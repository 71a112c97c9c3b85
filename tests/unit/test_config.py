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


def test_every_setting_declares_one_env_name() -> None:
    from dataclasses import fields

    from chat.config import ENV, KNOWN_ENV, LIMIT_ENV, Settings, env_name

    declared = {f.name for f in fields(Settings)} - {"limits"}
    assert set(ENV) == declared, "a Settings field without env(...) metadata"
    names = [*ENV.values(), *LIMIT_ENV.values()]
    assert len(names) == len(set(names)) == len(KNOWN_ENV)
    assert env_name("access_ttl_s") == "CHAT_ACCESS_TTL_S"
    assert env_name("limits.max_frame_bytes") == "CHAT_LIMIT_MAX_FRAME_BYTES"
    with pytest.raises(KeyError):
        env_name("access_token_ttl_seconds")


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("CHAT_MAX_FRAME_BYTES", "CHAT_LIMIT_MAX_FRAME_BYTES"),
        ("CHAT_ACCESS_TOKEN_TTL_SECONDS", None),
        ("CHAT_WS_DRAIN_SECONDS", None),
        ("CHAT_PROT", "CHAT_PORT"),
    ],
)
def test_unknown_chat_variable_stops_start_up(name: str, hint: str | None) -> None:
    with pytest.raises(ConfigError, match=name) as info:
        load({name: "1"})
    assert "unknown setting" in str(info.value)
    if hint:
        assert f"did you mean {hint}?" in str(info.value)


def test_other_prefixes_are_not_ours() -> None:
    # CHATCLUSTER_CACHE (the test harness) and unrelated variables are not settings.
    assert load({"CHATCLUSTER_CACHE": "/x", "PATH": "/bin", "PROMETHEUS_MULTIPROC_DIR": "/t"})


def test_settings_the_operator_writes_are_read() -> None:
    s = load(
        {
            "CHAT_ACCESS_TTL_S": "600",
            "CHAT_DRAIN_TIMEOUT_S": "45",
            "CHAT_REDIS_KEY_PREFIX": "team-a:",
            "CHAT_LOG_LEVEL": "debug",
            "CHAT_LIMIT_MAX_FRAME_BYTES": "65536",
            "CHAT_METRICS_PORT": "0",
            "CHAT_POD_NAME": "chat-ws-abc",
        }
    )
    assert (s.access_ttl_s, s.drain_timeout_s, s.redis_key_prefix) == (600, 45.0, "team-a:")
    assert (s.log_level, s.limits.max_frame_bytes, s.metrics_port) == ("debug", 65536, 0)
    assert s.pod_name == "chat-ws-abc"
    assert load({}).metrics_port == 9191


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"CHAT_LOG_LEVEL": "loud"}, "CHAT_LOG_LEVEL"),
        ({"CHAT_REDIS_KEY_PREFIX": "a{b}"}, "CHAT_REDIS_KEY_PREFIX"),
        ({"CHAT_METRICS_PORT": "-1"}, "CHAT_METRICS_PORT"),
        ({"CHAT_LIMIT_MAX_FRAME_BYTES": "big"}, "CHAT_LIMIT_MAX_FRAME_BYTES"),
        ({"CHAT_PERSIST_LINGER_MS": "soon"}, "CHAT_PERSIST_LINGER_MS"),
        ({"CHAT_PERSIST_LINGER_MS": "-1"}, "CHAT_PERSIST_LINGER_MS"),
        ({"CHAT_PERSIST_LINGER_MS": "60001"}, "CHAT_PERSIST_LINGER_MS"),
    ],
)
def test_new_settings_fail_loudly(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load(env)


def test_deploy_doc_lists_exactly_the_settings() -> None:
    """The table the start-up error points to is complete and invents nothing."""
    import re
    from pathlib import Path

    from chat.config import ENV, KNOWN_ENV

    doc = (Path(__file__).resolve().parents[2] / "docs" / "deploy.md").read_text()
    table = doc.split("## Settings", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`((?:CHAT|REDIS|POSTGRES|MONGODB)_[A-Z0-9_<>]+)`", table))
    assert set(ENV.values()) <= named
    assert named - set(KNOWN_ENV) <= {"CHAT_LIMIT_<FIELD>"}
