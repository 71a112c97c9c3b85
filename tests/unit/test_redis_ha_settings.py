"""The Redis high-availability settings: defaults, parsing, and loud failures."""

from __future__ import annotations

import pytest

from chat.config import ConfigError, load
from chat.stores.cluster.redis_conn import RedisTarget


def test_min_replicas_defaults_to_one_with_sentinel_and_zero_without() -> None:
    assert load({}).redis_replicas_required == 0
    with_sentinel = load({"CHAT_REDIS_SENTINELS": "10.0.0.1:26379, 10.0.0.2:26379"})
    assert with_sentinel.redis_replicas_required == 1
    explicit = load({"CHAT_REDIS_SENTINELS": "a:1", "CHAT_REDIS_MIN_REPLICAS": "0"})
    assert explicit.redis_replicas_required == 0


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"CHAT_REDIS_SENTINELS": "no-port"}, "CHAT_REDIS_SENTINELS"),
        ({"CHAT_REDIS_MIN_REPLICAS": "-1"}, "CHAT_REDIS_MIN_REPLICAS"),
        ({"CHAT_REDIS_MIN_REPLICAS": "one"}, "CHAT_REDIS_MIN_REPLICAS"),
        ({"CHAT_REDIS_WAIT_TIMEOUT_MS": "0"}, "CHAT_REDIS_WAIT_TIMEOUT_MS"),
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load(env)


def test_target_takes_credentials_from_the_url_and_the_primary_from_sentinel() -> None:
    settings = load(
        {
            "REDIS_URL": "rediss://app:secret@ignored:6379/3",
            "CHAT_REDIS_SENTINELS": "10.0.0.1:26379,[::1]:26380",
            "CHAT_REDIS_SENTINEL_MASTER": "chat",
        }
    )
    target = RedisTarget.of(settings)
    assert target.sentinels == (("10.0.0.1", 26379), ("::1", 26380))
    assert target.master == "chat"
    assert "secret" not in str(target)
    kwargs = target._connection_kwargs()
    assert kwargs["password"] == "secret" and kwargs["db"] == 3 and kwargs["ssl"] is True
    assert "host" not in kwargs and "port" not in kwargs
