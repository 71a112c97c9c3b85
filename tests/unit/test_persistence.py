"""`Persister` (chat/domain/persistence.py) on embedded mode's real stores: a job that fails puts
the conversations it took back before it raises (Dramatiq then retries it), and the retry
archives everything once; the job ends the schedule only when nothing is dirty."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from chat.config import Settings
from chat.domain import persistence
from chat.domain.errors import Unavailable
from chat.domain.limits import Limits
from chat.domain.models import Event, EventDraft, EventKind
from chat.domain.persistence import Persister
from chat.domain.ports import MessageArchive
from chat.stores.embedded import EmbeddedPorts, open_embedded_ports


class Queued:
    def __init__(self) -> None:
        self.tokens: list[str] = []

    async def persist_batch(self, token: str) -> None:
        self.tokens.append(token)


class FailingOnce:
    """The real archive, whose next `apply` fails as an outage would."""

    def __init__(self, archive: MessageArchive) -> None:
        self._archive = archive
        self.fail = True

    async def apply(self, events: Sequence[Event]) -> None:
        if self.fail:
            self.fail = False
            raise Unavailable("MongoDB is unavailable", code="dependency_unavailable")
        await self._archive.apply(events)

    def __getattr__(self, name: str) -> object:
        return getattr(self._archive, name)


@pytest.fixture
async def opened(tmp_path: Path) -> AsyncIterator[tuple[EmbeddedPorts, Queued]]:
    queue = Queued()
    ports = await open_embedded_ports(Settings(data_dir=tmp_path), queue)
    yield ports, queue
    await ports.close()


async def test_a_failed_job_puts_its_conversations_back(
    opened: tuple[EmbeddedPorts, Queued],
) -> None:
    ports, queue = opened
    log = ports.ports.log
    archive = FailingOnce(ports.ports.archive)
    persister = Persister(log, archive, queue, Limits())  # type: ignore[arg-type]
    cids = ["c_a", "c_b", "c_c"]
    first = None
    for cid in cids:
        for i in range(3):
            result = await log.append(EventDraft(cid, EventKind.MESSAGE, "u", f"{cid}{i}", "x"))
            first = first or result.persist_job
    assert first is not None
    with pytest.raises(Unavailable):
        await persister.run(first)
    # Back in the set and the schedule still held: the retry of the same job finishes it.
    assert (
        await log.append(EventDraft("c_a", EventKind.MESSAGE, "u", "late", "x"))
    ).persist_job is None
    done = await persister.run(first)
    assert done.conversations == 3 and done.events == 10
    assert await ports.ports.archive.watermarks(cids) == {"c_a": 4, "c_b": 3, "c_c": 3}
    # Nothing dirty at its end: no next job, and the schedule is free again.
    assert queue.tokens == []
    again = await log.append(EventDraft("c_b", EventKind.MESSAGE, "u", "after", "x"))
    assert again.persist_job is not None and again.persist_job != first


async def test_a_helper_that_puts_a_backlog_back_after_the_chain_ended_carries_it_on(
    opened: tuple[EmbeddedPorts, Queued], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Appends into a conversation that is already dirty claim no schedule, so a helper job
    that leaves part of a backlog dirty (a page per take) once the chain's job has ended must
    queue the next job itself, or the rest would wait for the sweep."""
    ports, queue = opened
    log = ports.ports.log
    monkeypatch.setattr(persistence, "PAGE", 2)
    persister = Persister(log, ports.ports.archive, queue, Limits())
    claimed = None
    for i in range(5):
        result = await log.append(EventDraft("c_x", EventKind.MESSAGE, "u", f"m{i}", "x"))
        claimed = claimed or result.persist_job
    assert claimed is not None
    await log.release_persist(claimed)  # the chain's job ended (its last take was empty)
    await persister.run(persistence.HELPER)
    assert len(queue.tokens) == 1, "the rest of the backlog was left for the sweep"
    assert await log.archived(["c_x"]) == [None]  # embedded: the archive's watermark is exact
    assert await ports.ports.archive.watermark("c_x") == 2
    await persister.run(queue.tokens[0])
    await persister.run(queue.tokens[-1])
    assert await ports.ports.archive.watermark("c_x") == 5
