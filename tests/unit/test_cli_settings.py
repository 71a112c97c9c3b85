"""What a subcommand runs with: environment first, command line on top (`settings_for`)."""

from __future__ import annotations

from chat.cli import build_parser, settings_for

CLUSTER = {
    "REDIS_URL": "redis://r:6379/0",
    "POSTGRES_DSN": "postgresql://p/chat",
    "MONGODB_URI": "mongodb://m/chat",
    "CHAT_JWT_SECRET": "x" * 32,
}


def test_log_level_from_env_and_the_flag_wins() -> None:
    env = {**CLUSTER, "CHAT_LOG_LEVEL": "error"}
    assert settings_for(build_parser().parse_args(["api"]), env).log_level == "error"
    flagged = settings_for(build_parser().parse_args(["api", "--log-level", "debug"]), env)
    assert flagged.log_level == "debug"
    assert settings_for(build_parser().parse_args(["migrate"]), CLUSTER).log_level == "INFO"


def test_metrics_port_defaults() -> None:
    parse = build_parser().parse_args
    assert settings_for(parse(["ws"]), CLUSTER).metrics_port == 9191
    assert settings_for(parse(["ws", "--metrics-port", "0"]), CLUSTER).metrics_port == 0
    env = {**CLUSTER, "CHAT_METRICS_PORT": "9300"}
    assert settings_for(parse(["worker"]), env).metrics_port == 9300
    assert settings_for(parse(["worker", "--metrics-port", "9400"]), env).metrics_port == 9400
    # `dev` binds only its one port unless metrics are asked for.
    assert settings_for(parse(["dev"]), {}).metrics_port == 0
    assert settings_for(parse(["dev"]), {"CHAT_METRICS_PORT": "9300"}).metrics_port == 9300
    assert settings_for(parse(["dev", "--metrics-port", "9500"]), {}).metrics_port == 9500


def test_ports_and_backend() -> None:
    parse = build_parser().parse_args
    api = settings_for(parse(["api"]), CLUSTER)
    assert (api.port, api.backend) == (8080, "cluster")
    assert settings_for(parse(["ws", "--port", "9000"]), CLUSTER).port == 9000
    embedded = settings_for(parse(["api"]), {"CHAT_BACKEND": "embedded"})
    assert embedded.backend == "embedded"


def test_worker_queues_are_separate_arguments() -> None:
    args = build_parser().parse_args(["worker", "--queues", "persist", "maintenance"])
    assert args.queues == ["persist", "maintenance"]
