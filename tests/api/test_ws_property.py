"""Property: any JSON value in any field of any client frame, before and after auth, gets a
valid answer or an error with a documented code (and, before `ready`, a documented close code);
never `internal`, close 1011, or a traceback in the server's log."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.clients import Account, Ws
from tests.support.fixtures import Server, start_server, with_limits

# The `ws` rows of the error table in docs/protocol.md, and its close codes before `ready`.
DOCUMENTED_WS_CODES = {
    "bad_json",
    "unknown_type",
    "invalid_request",
    "unauthenticated",
    "token_invalid",
    "token_expired",
    "session_revoked",
    "user_disabled",
    "too_many_connections",
    "not_member",
    "message_not_found",
    "not_author",
    "invalid_client_id",
    "body_empty",
    "body_too_long",
    "rate_limited",
    "not_recoverable",
    "dependency_unavailable",
}
CLOSE_BEFORE_READY = {4400, 4401, 4403, 4429, 1013}

FIELDS: dict[str, tuple[str, ...]] = {
    "auth": ("token", "resume"),
    "send": ("conversation_id", "client_id", "body"),
    "edit": ("conversation_id", "seq", "client_id", "body"),
    "delete": ("conversation_id", "seq", "client_id"),
    "resume": ("conversations",),
    "typing": ("conversation_id",),
    "presence": ("state",),
    "read": ("conversation_id", "seq"),
    "ping": (),
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=70),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)


@dataclass
class World:
    server: Server
    alice: Account
    bob: Account
    cid: str


class _Problems(logging.Handler):
    """Every record at ERROR or with a traceback, from any logger of the server."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(record)


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    limits = with_limits(send_burst=100_000, send_rate_per_s=100_000, max_connections_per_user=1000)
    server = await start_server(Path(tmp_path_factory.mktemp("prop")), limits)
    alice, bob = await server.api.register(), await server.api.register()
    cid = await server.api.dm(alice, bob)
    await server.api.send(alice, cid, "target")
    await server.api.send(bob, cid, "bob's")
    yield World(server, alice, bob, cid)
    await server.stop()


@pytest.fixture(scope="module")
def problems() -> Iterator[_Problems]:
    handler = _Problems()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


def _valid(kind: str, w: World, n: int) -> dict[str, Any]:
    base: dict[str, Any] = {
        "auth": {"token": w.alice.access},
        "send": {"conversation_id": w.cid, "client_id": f"p{n}", "body": "hi"},
        "edit": {"conversation_id": w.cid, "seq": 1, "client_id": f"pe{n}", "body": "ed"},
        "delete": {"conversation_id": w.cid, "seq": 2, "client_id": f"pd{n}"},
        "resume": {"conversations": {w.cid: 0}},
        "typing": {"conversation_id": w.cid},
        "presence": {"state": "idle"},
        "read": {"conversation_id": w.cid, "seq": 1},
        "ping": {},
    }[kind]
    return {"type": kind, **base}


@st.composite
def fuzzed_frames(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A frame type and, for one to three of its fields, a JSON value to put there (or
    `_DROP` to leave the field out)."""
    kind = draw(st.sampled_from(tuple(FIELDS)))
    fields = (*FIELDS[kind], "type", "ref")
    chosen = draw(st.lists(st.sampled_from(fields), min_size=1, max_size=3, unique=True))
    values = {f: draw(st.one_of(st.just(_DROP), json_values)) for f in chosen}
    return kind, values


_DROP = object()
_counter = iter(range(10**9))


def _build(kind: str, values: dict[str, Any], w: World) -> dict[str, Any]:
    frame = _valid(kind, w, next(_counter))
    for field, value in values.items():
        if value is _DROP:
            frame.pop(field, None)
        else:
            frame[field] = value
    return frame


def _no_new_problems(problems: _Problems, before: int) -> None:
    new = problems.records[before:]
    assert not new, [(r.name, r.getMessage(), r.exc_info) for r in new]


PROPERTY = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@PROPERTY
@given(case=fuzzed_frames())
async def test_any_json_in_any_field_after_auth(
    world: World, problems: _Problems, case: tuple[str, dict[str, Any]]
) -> None:
    kind, values = case
    before = len(problems.records)
    ws = await world.server.ws(world.alice)
    try:
        await ws.send(_build(kind, values, world))
        # Frames are handled in order: once the pong is here, every answer to the fuzzed frame
        # is too.
        await ws.request({"type": "ping"})
        ready_at = next(i for i, f in enumerate(ws.frames) if f.get("type") == "ready")
        answers = ws.frames[ready_at + 1 :]
        for frame in answers:
            if frame.get("type") == "error":
                assert frame["code"] in DOCUMENTED_WS_CODES, frame
        assert not ws.closed.is_set(), ws.close_code
    finally:
        await ws.close()
    _no_new_problems(problems, before)


@PROPERTY
@given(case=fuzzed_frames())
async def test_any_json_in_any_field_before_auth(
    world: World, problems: _Problems, case: tuple[str, dict[str, Any]]
) -> None:
    kind, values = case
    before = len(problems.records)
    ws = await Ws.connect(world.server.ws_url, world.server.origin)
    try:
        await ws.send(_build(kind, values, world))
        first = await ws.wait(lambda f: f.get("type") in ("ready", "error"), timeout=5)
        if first["type"] == "error":
            assert first["code"] in DOCUMENTED_WS_CODES, first
            assert await ws.wait_closed(10) in CLOSE_BEFORE_READY
        else:
            await ws.request({"type": "ping"})
            errors = [f for f in ws.frames if f.get("type") == "error"]
            assert all(f["code"] in DOCUMENTED_WS_CODES for f in errors), errors
    finally:
        await ws.close()
    _no_new_problems(problems, before)


async def test_raw_non_object_frames(world: World, problems: _Problems) -> None:
    """Frames that are JSON but not objects, or not JSON at all, are `bad_json`."""
    before = len(problems.records)
    ws = await world.server.ws(world.alice)
    for raw in ("[]", "null", "1", '"auth"', "{", "", json.dumps([{"type": "ping"}])):
        await ws.conn.send(raw)
    errors = await ws.wait_count(lambda f: f.get("type") == "error", 7)
    assert {e["code"] for e in errors} == {"bad_json"}
    await ws.close()
    _no_new_problems(problems, before)
