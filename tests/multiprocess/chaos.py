"""The chaos test's clients and checker, in the spirit of Jepsen's total-queue workload.

Each `Member` is one user with one conversation. A producer adds a new message (fresh
`client_id`) to the member's pending set at a steady rate, whether or not it is connected. A
connection loop connects through haproxy, authenticates, resumes from the member's own cursor,
then (re)sends every unacked message with its original `client_id` until acked. Everything it
receives is recorded: acks (client_id → seq, duplicates), and message frames checked against a
per-conversation cursor (exactly the next seq is applied; an older seq is a redelivery, a newer
one is early: both are counted and dropped, since the server must replay the missing range
before live frames).

`check` then compares, per conversation: the acks, the history served by the API, the MongoDB
archive and what every member applied. `late_deliveries` adds liveness: every acked message
reached every member within `DELIVERY_BOUND_S` of its ack, or of the end of a fault that was
under way in that time (the ack and apply instants are recorded per message).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
import websockets
from websockets.asyncio.client import ClientConnection, connect

from tests.support.clients import Account, Api

RETRY_AFTER_S = 2.0
"""An unacked send is sent again (same client_id) after this long on the same connection."""

DELIVERY_BOUND_S = 8.0
"""Liveness bound: an acked message is applied by every member within this long of its ack, or
of the end of a delivery fault (a process killed, Redis down) that overlaps that span. It
covers a reconnect (jittered backoff up to 1.5 s, connect, auth, resume), a gateway's bus
re-subscribing after a Redis restart (its backoff is capped at a few seconds) and a send retry
(`RETRY_AFTER_S`), with margin for a loaded 2-core CI machine. A stall that waits for a later
message in the conversation (issue 12 item 2) exceeds it: it has no bound at all."""


@dataclass
class Member:
    name: str
    account: Account
    cid: str
    cursor: int = 0
    applied: list[tuple[int, str]] = field(default_factory=list)  # (seq, client_id) in order
    pending: dict[str, float] = field(default_factory=dict)  # client_id -> last attempt
    acked: dict[str, int] = field(default_factory=dict)
    ack_times: list[float] = field(default_factory=list)
    acked_at: dict[str, float] = field(default_factory=dict)  # client_id -> first ack
    applied_at: dict[str, float] = field(default_factory=dict)  # client_id -> applied here
    ack_conflicts: list[str] = field(default_factory=list)  # one client_id, two different seqs
    duplicate_acks: int = 0
    produced: int = 0
    early: int = 0
    redelivered: int = 0
    not_recoverable: int = 0
    connections: int = 0
    failed_connects: int = 0
    close_codes: Counter[int | None] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    ops: dict[str, dict[str, Any]] = field(default_factory=dict)
    """client_id -> the edit or delete it is ({"type", "seq", "body"}); other ids are sends."""
    op_every: int = 0
    """With n > 0, every n-th produced frame edits or deletes one of this member's messages."""

    def frame_in(self, frame: dict[str, Any], now: float) -> None:
        kind = frame.get("type")
        if kind == "message" and frame["conversation_id"] == self.cid:
            seq = int(frame["seq"])
            if seq == self.cursor + 1:
                self.cursor = seq
                self.applied.append((seq, str(frame["client_id"])))
                self.applied_at[str(frame["client_id"])] = now
            elif seq <= self.cursor:
                self.redelivered += 1
            else:
                self.early += 1
        elif kind == "ack" and frame.get("client_id") in self.pending:
            client_id, seq = str(frame["client_id"]), int(frame["seq"])
            if self.acked.setdefault(client_id, seq) != seq:
                self.ack_conflicts.append(client_id)
            self.duplicate_acks += bool(frame.get("duplicate"))
            self.ack_times.append(now)
            self.acked_at[client_id] = now
            del self.pending[client_id]
        elif kind == "ack" and frame.get("client_id") in self.acked:
            # A late answer to an earlier attempt: it must name the same seq.
            if self.acked[str(frame["client_id"])] != int(frame["seq"]):
                self.ack_conflicts.append(str(frame["client_id"]))
        elif kind == "error":
            self.errors[str(frame.get("code"))] += 1
            if frame.get("code") == "not_recoverable":
                self.not_recoverable += 1


@dataclass(frozen=True)
class Late:
    """One member that applied one acked message later than the bound allows."""

    member: str
    client_id: str
    acked_at: float
    deadline: float
    applied_at: float | None  # None: never applied


def delivery_deadline(acked_at: float, faults: list[tuple[float, float]], bound_s: float) -> float:
    """`acked_at + bound_s`, pushed to `end + bound_s` by every fault window (start, end) that
    begins before the deadline reached so far and ends after the ack (overlapping faults
    chain)."""
    deadline = acked_at + bound_s
    changed = True
    while changed:
        changed = False
        for start, end in faults:
            if start <= deadline and end >= acked_at and end + bound_s > deadline:
                deadline, changed = end + bound_s, True
    return deadline


def late_deliveries(
    members: list[Member], faults: list[tuple[float, float]], bound_s: float = DELIVERY_BOUND_S
) -> tuple[list[Late], float]:
    """Every (member, acked message of its conversation) applied after its deadline or never,
    and the worst delay seen past the ack for messages whose span met no fault (seconds)."""
    late: list[Late] = []
    worst_quiet = 0.0
    for sender in members:
        for client_id, acked_at in sender.acked_at.items():
            deadline = delivery_deadline(acked_at, faults, bound_s)
            quiet = deadline == acked_at + bound_s
            for m in members:
                if m.cid != sender.cid:
                    continue
                applied_at = m.applied_at.get(client_id)
                if applied_at is None or applied_at > deadline:
                    late.append(Late(m.name, client_id, acked_at, deadline, applied_at))
                elif quiet:
                    worst_quiet = max(worst_quiet, applied_at - acked_at)
    return late, worst_quiet


async def produce(member: Member, rate: float, until: float) -> None:
    """Open loop: frame n is due at start + n/rate, connected or not. With `op_every`, some
    frames edit or delete one of the member's acked messages instead of sending."""
    start = time.monotonic()
    while (due := start + member.produced / rate) < until:
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        client_id = f"{member.name}-{member.produced}"
        if member.op_every and member.produced % member.op_every == member.op_every - 1:
            op = _next_op(member)
            if op is not None:
                member.ops[client_id] = op
        member.pending[client_id] = 0.0
        member.produced += 1
        member.wake.set()


def _next_op(member: Member) -> dict[str, Any] | None:
    """An edit of, or a delete of, one of the member's acked messages. The two never share a
    target (own messages alternate between "may be edited" and "may be deleted once"), so no
    edit can meet its target deleted by a reordered retry (that is `message_not_found`)."""
    sends = sorted(s for c, s in member.acked.items() if c not in member.ops)
    deleted = {op["seq"] for op in member.ops.values() if op["type"] == "delete"}
    editable, deletable = sends[0::2], [s for s in sends[1::2] if s not in deleted]
    n = len(member.ops)
    if n % 3 == 2 and deletable:
        return {"type": "delete", "seq": deletable[0]}
    if editable:
        return {"type": "edit", "seq": editable[n % len(editable)], "body": f"edit {n}"}
    return None


async def produce_at(member: Member, t0: float, offsets: list[float]) -> None:
    """A quiet conversation: one message at each offset after t0, nothing in between (a stall
    that waits for the next message shows here, not in a busy conversation)."""
    for offset in offsets:
        await asyncio.sleep(max(0.0, t0 + offset - time.monotonic()))  # the schedule
        member.pending[f"{member.name}-{member.produced}"] = 0.0
        member.produced += 1
        member.wake.set()


async def keep_connected(
    member: Member, ws_url: str, origin: str, stop: asyncio.Event, **options: Any
) -> None:
    """Connect, resume, send; on any loss reconnect with jittered backoff until `stop`.
    ``options`` go to `websockets.connect` (e.g. ``host``/``port`` to reach an Ingress host
    at the node's address)."""
    backoff = 0.1
    while not stop.is_set():
        try:
            async with connect(
                ws_url,
                origin=origin,
                open_timeout=5,
                close_timeout=2,
                ping_interval=5,  # type: ignore[arg-type]
                **options,
            ) as ws:
                member.connections += 1
                backoff = 0.1
                await _session(member, ws, stop)
                member.close_codes[ws.close_code] += 1
        except (OSError, TimeoutError, websockets.WebSocketException) as exc:
            member.failed_connects += 1
            if isinstance(exc, websockets.ConnectionClosed):
                member.close_codes[exc.rcvd.code if exc.rcvd else None] += 1
        if stop.is_set():
            return
        # Backoff with jitter between attempts (reconnect policy, not synchronisation).
        await asyncio.sleep(backoff * (0.5 + random.random()))
        backoff = min(backoff * 2, 1.0)


async def _session(member: Member, ws: ClientConnection, stop: asyncio.Event) -> None:
    await ws.send(
        orjson.dumps({"type": "auth", "ref": "auth", "token": member.account.access}).decode()
    )
    while True:  # until ready; presence frames may come first
        frame = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        if frame.get("type") == "ready":
            break
        if frame.get("type") == "error":
            member.errors[f"auth:{frame.get('code')}"] += 1
            return
    await ws.send(
        orjson.dumps(
            {"type": "resume", "ref": "resume", "conversations": {member.cid: member.cursor}}
        ).decode()  # a text frame: the protocol refuses binary frames (1003)
    )
    for client_id in member.pending:
        member.pending[client_id] = 0.0  # a new connection resends everything unacked
    writer = asyncio.create_task(_write(member, ws))
    closer = asyncio.create_task(_close_on(stop, ws))
    try:
        async for raw in ws:
            member.frame_in(orjson.loads(raw), time.monotonic())
            if member.pending:
                member.wake.set()
    finally:
        for task in (writer, closer):
            task.cancel()
        await asyncio.gather(writer, closer, return_exceptions=True)


async def _write(member: Member, ws: ClientConnection) -> None:
    while True:
        member.wake.clear()
        now = time.monotonic()
        for client_id, last in list(member.pending.items()):
            if now - last >= RETRY_AFTER_S:
                member.pending[client_id] = now
                frame = {
                    "type": "send",
                    "ref": client_id,
                    "conversation_id": member.cid,
                    "client_id": client_id,
                    "body": f"{client_id} from {member.name}",
                    **member.ops.get(client_id, {}),
                }
                await ws.send(orjson.dumps(frame).decode())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(member.wake.wait(), 0.25)


async def _close_on(stop: asyncio.Event, ws: ClientConnection) -> None:
    await stop.wait()
    await ws.close()


async def full_history(api: Api, who: Account, cid: str) -> list[dict[str, Any]]:
    """Every message of a conversation, page by page (ascending seq)."""
    out: list[dict[str, Any]] = []
    while True:
        page = await api.history(who, cid, after=out[-1]["seq"] if out else 0, limit=100)
        out += page
        if len(page) < 100:
            return out


def verify(
    members: list[Member],
    stored: dict[str, list[dict[str, Any]]],
    faults: list[tuple[float, float]],
    allowed_errors: frozenset[str] = frozenset({"dependency_unavailable"}),
) -> None:
    """The checker, per conversation, given the history the API serves: every member applied
    the same event stream, seqs 1..n with no gap, each client_id once, within the delivery
    bound; history holds exactly the acked sends at their acked seqs, and the acked edits and
    deletes at theirs in the stream, with the text the stream's edits and deletes leave; no
    ack conflict, no not_recoverable, no error frame beyond `allowed_errors`; every produced
    frame acked."""
    for cid, history in stored.items():
        group = [m for m in members if m.cid == cid]
        stream = group[0].applied
        for m in group:
            assert m.applied == stream, f"{m.name}: applied stream differs from {group[0].name}"
        assert [s for s, _ in stream] == list(range(1, len(stream) + 1)), f"{cid}: seq gap"
        ops = {c: op for m in group for c, op in m.ops.items()}
        acked = {c: s for m in group for c, s in m.acked.items()}
        assert dict((c, s) for s, c in stream) == acked, f"{cid}: stream != acks"
        assert len({c for _, c in stream}) == len(stream), f"{cid}: a client_id applied twice"
        expected: dict[int, tuple[str, str, bool]] = {}
        for seq, client_id in stream:
            op = ops.get(client_id)
            if op is None:
                sender = next(m for m in group if client_id in m.acked)
                expected[seq] = (client_id, f"{client_id} from {sender.name}", False)
            elif op["type"] == "edit" and not expected[op["seq"]][2]:
                expected[op["seq"]] = (expected[op["seq"]][0], op["body"], False)
            elif op["type"] == "delete":
                expected[op["seq"]] = (expected[op["seq"]][0], "", True)
        served = {
            int(h["seq"]): (str(h["client_id"]), str(h["body"]), bool(h.get("deleted")))
            for h in history
        }
        assert len(served) == len(history), f"{cid}: a seq served twice"
        assert served == expected, f"{cid}: history != the acked stream's messages"
    for m in members:
        assert not m.ack_conflicts, f"{m.name}: one client_id acked with two seqs"
        assert m.not_recoverable == 0, f"{m.name}: not_recoverable"
        assert not m.pending and len(m.acked) == m.produced, f"{m.name}: unacked sends"
        unexpected = set(m.errors) - allowed_errors
        assert not unexpected, f"{m.name}: error frames {unexpected}"
    late, _ = late_deliveries(members, faults)
    assert not late, f"late deliveries (first 5 of {len(late)}): {late[:5]}"


def longest_ack_gap(members: list[Member], start: float, end: float) -> float:
    """The longest time in [start, end] with no send acked to anyone: the unavailability
    window a fault caused, as the clients saw it (seconds)."""
    times = sorted(t for m in members for t in m.ack_times if start <= t <= end)
    edges = [start, *times, end]
    return max(b - a for a, b in itertools.pairwise(edges))
