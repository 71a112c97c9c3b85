"""The chaos checker itself (tests/multiprocess/chaos.py): the delivery bound and `verify`
must fail on the histories they exist to reject."""

from __future__ import annotations

import pytest

from tests.multiprocess.chaos import Member, delivery_deadline, late_deliveries, verify
from tests.support.clients import Account

BOUND = 8.0


def _member(name: str, cid: str = "c") -> Member:
    return Member(name, Account("id", "u", "p", "access", "refresh"), cid)


def test_deadline_is_pushed_by_overlapping_faults_and_chains() -> None:
    assert delivery_deadline(10.0, [], BOUND) == 18.0
    assert delivery_deadline(10.0, [(0.0, 5.0)], BOUND) == 18.0  # ended before the ack
    assert delivery_deadline(10.0, [(12.0, 20.0)], BOUND) == 28.0  # began within the span
    assert delivery_deadline(10.0, [(12.0, 20.0), (27.0, 30.0)], BOUND) == 38.0  # chained
    assert delivery_deadline(10.0, [(40.0, 50.0)], BOUND) == 18.0  # too late to matter


def _delivered(applied_at: float) -> list[Member]:
    a, b = _member("a"), _member("b")
    a.acked["a-0"], a.acked_at["a-0"] = 1, 1.0
    for m in (a, b):
        m.applied.append((1, "a-0"))
        m.applied_at["a-0"] = applied_at if m is b else 1.0
    a.produced = 1
    return [a, b]


def test_a_late_or_missing_delivery_is_reported() -> None:
    assert late_deliveries(_delivered(5.0), [])[0] == []
    late = late_deliveries(_delivered(12.0), [])[0]
    assert [(x.member, x.client_id) for x in late] == [("b", "a-0")]
    assert late_deliveries(_delivered(12.0), [(2.0, 6.0)])[0] == []  # a fault excused it
    members = _delivered(5.0)
    del members[1].applied_at["a-0"]
    assert [x.applied_at for x in late_deliveries(members, [])[0]] == [None]


def test_verify_rejects_a_history_that_lost_an_edit() -> None:
    members = _delivered(2.0)
    history = [{"seq": 1, "client_id": "a-0", "body": "a-0 from a", "deleted": False}]
    verify(members, {"c": history}, [])
    a = members[0]
    a.ops["a-1"] = {"type": "edit", "seq": 1, "body": "edit 0"}
    a.acked["a-1"], a.acked_at["a-1"], a.produced = 2, 2.0, 2
    for m in members:
        m.applied.append((2, "a-1"))
        m.applied_at["a-1"] = 2.5
    with pytest.raises(AssertionError, match="history != the acked stream"):
        verify(members, {"c": history}, [])
    edited = [{**history[0], "body": "edit 0"}]
    verify(members, {"c": edited}, [])
