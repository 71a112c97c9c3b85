"""Every log line about a ChatCluster names it: a `[namespace/name]` prefix in text, an
`object` field in JSON (docs/operator.md, "When things go wrong")."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from chat_operator import logs


@pytest.fixture
def root_handlers() -> Iterator[None]:
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    kopf_level = logging.getLogger("kopf.objects").level
    yield
    root.handlers[:] = saved
    root.setLevel(level)
    logging.getLogger("kopf.objects").setLevel(kopf_level)


def test_text_lines_carry_the_cluster(
    root_handlers: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure("text", verbose=False)
    logs.for_cluster("team-a", "chat").warning("Service chat-ws: apply failed")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "[team-a/chat] Service chat-ws: apply failed" in line


def test_json_lines_carry_the_cluster(
    root_handlers: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure("json", verbose=False)
    logs.for_cluster("team-a", "chat", "uid-1").error("cannot read the ChatCluster")
    record = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert record["object"]["namespace"] == "team-a"
    assert record["object"]["name"] == "chat"
    assert record["object"]["kind"] == "ChatCluster"
    assert "cannot read the ChatCluster" in record["message"]
    assert record["severity"] == "error"
