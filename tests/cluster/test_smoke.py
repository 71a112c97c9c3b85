from __future__ import annotations

from chat.domain.models import EventDraft, EventKind
from chat.stores.cluster import ClusterPorts


async def test_append_then_read_and_archive(cluster: ClusterPorts) -> None:
    log, archive = cluster.ports.log, cluster.ports.archive
    first = await log.append(EventDraft("c1", EventKind.MESSAGE, "u1", "m1", "hello"))
    again = await log.append(EventDraft("c1", EventKind.MESSAGE, "u1", "m1", "hello"))
    assert first.event.seq == 1
    assert again.duplicate
    assert again.event == first.event
    page = await log.read("c1", 0, 10)
    assert page.complete
    assert page.events == (first.event,)
    await archive.apply(page.events)
    assert await archive.watermark("c1") == 1
    assert [m.body for m in await archive.history("c1", before=None, after=None, limit=5)] == [
        "hello"
    ]
