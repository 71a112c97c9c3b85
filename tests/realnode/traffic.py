"""Chat traffic through the Ingress while an operation runs on the real node, judged by the
chaos test's total-queue checker (tests/multiprocess/chaos.py): every acked message stored
exactly once at its seq, every member applied exactly that stream in order, no silent gap, and
each within the delivery bound of its ack (or of the end of the operation's disruption).

Members connect to ``ws://chat.test/ws`` at the node's address, so every frame passes the
ingress controller, the Service and a gateway pod, as a browser's would.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.multiprocess.chaos import Member, full_history, keep_connected, produce, verify
from tests.realnode import network, services
from tests.realnode.node import INGRESS_PORT, NODE_IP
from tests.support.clients import Account, Api

ORIGIN = f"http://{services.HOST}"
WS_URL = f"ws://{services.HOST}/ws"
DRAIN_TIMEOUT_S = 120.0


def ingress_api() -> Api:
    """The HTTP API through the ingress controller: the node's address, the Ingress host."""
    network.require_bridge()
    api = Api(f"http://{NODE_IP}:{INGRESS_PORT}")
    api.http.headers["Host"] = services.HOST
    return api


@dataclass
class Traffic:
    """Members in groups sending at a steady rate (open loop), added by :meth:`join`, until
    :meth:`finish` (or :meth:`stop`)."""

    api: Api
    members: list[Member]
    stop_clients: asyncio.Event = field(default_factory=asyncio.Event)
    clients: list[asyncio.Task[None]] = field(default_factory=list)
    producers: list[asyncio.Task[None]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    faults: list[tuple[float, float]] = field(default_factory=list)
    """Windows (monotonic) of the operation's disruption: the checker's delivery bound counts
    from their end for messages acked inside them."""

    def fault_since(self, start: float) -> None:
        """The disruption that began at ``start`` is over now."""
        self.faults.append((start, time.monotonic()))

    async def join(self, accounts: list[Account], group: int, rate: float, label: str) -> None:
        """More members, in new groups of ``group``, each connecting and sending from now."""
        for g in range(0, len(accounts), group):
            team = accounts[g : g + group]
            cid = await self.api.group(team[0], *team[1:], title=f"{label} {g // group}")
            for i, account in enumerate(team):
                member = Member(f"{label}-m{g + i}", account, cid)
                self.members.append(member)
                self.clients.append(
                    asyncio.create_task(
                        keep_connected(
                            member,
                            WS_URL,
                            ORIGIN,
                            self.stop_clients,
                            host=NODE_IP,
                            port=INGRESS_PORT,
                        )
                    )
                )
                self.producers.append(asyncio.create_task(produce(member, rate, float("inf"))))

    def acked(self) -> int:
        return sum(len(m.acked) for m in self.members)

    async def wait_acked(self, more_than: int, timeout: float) -> None:
        """Bounded wait until traffic flows: more than ``more_than`` sends acked."""
        deadline = time.monotonic() + timeout
        while self.acked() <= more_than:
            assert time.monotonic() < deadline, f"no traffic acked within {timeout}s"
            await asyncio.sleep(0.2)

    async def stop(self) -> None:
        """Stop producing and disconnect every member, without judging: what a test that failed
        midway leaves behind, so its senders do not run on into the next test (they share its
        accounts and so its per-user send limit). Idempotent."""
        for task in self.producers:
            task.cancel()
        self.stop_clients.set()
        await asyncio.gather(*self.producers, *self.clients, return_exceptions=True)

    async def finish(self) -> dict[str, Any]:
        """Stop producing, let every pending send be acked and every member catch up
        (bounded), stop the clients, then run the checker over the API's history."""
        for task in self.producers:
            task.cancel()
        await asyncio.gather(*self.producers, return_exceptions=True)
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        try:
            await _until(lambda: all(not m.pending for m in self.members), deadline, "acks")
            last = {m.cid: 0 for m in self.members}
            for m in self.members:
                last[m.cid] = max([last[m.cid], *m.acked.values()])
            await _until(
                lambda: all(m.cursor >= last[m.cid] for m in self.members), deadline, "catch-up"
            )
        finally:
            self.stop_clients.set()
            await asyncio.gather(*self.clients, return_exceptions=True)
        stored: dict[str, list[dict[str, Any]]] = {}
        for cid in sorted({m.cid for m in self.members}):
            owner = next(m for m in self.members if m.cid == cid)
            stored[cid] = await full_history(self.api, owner.account, cid)
        report = {
            "seconds": round(time.monotonic() - self.started, 1),
            "produced": sum(m.produced for m in self.members),
            "acked": self.acked(),
            "stored": sum(len(v) for v in stored.values()),
            "applied": sum(len(m.applied) for m in self.members),
            "connections": sum(m.connections for m in self.members),
            "close codes": dict(sum((m.close_codes for m in self.members), start=Counter())),
            "error frames": dict(sum((m.errors for m in self.members), start=Counter())),
        }
        print(f"\ntraffic report: {report}")
        verify(self.members, stored, self.faults)
        assert report["produced"] == report["acked"] == report["stored"], report
        return report


async def _until(cond: Callable[[], bool], deadline: float, what: str) -> None:
    while not cond():
        assert time.monotonic() < deadline, f"{what}: not within {DRAIN_TIMEOUT_S}s"
        await asyncio.sleep(0.2)
