"""How long a batch job still waits for its linger (chat/worker/actors.py)."""

from __future__ import annotations

from chat.worker.actors import linger_left_ms


def test_a_fresh_job_waits_out_what_is_left_of_its_linger() -> None:
    assert linger_left_ms(sent_at_ms=10_000, linger_ms=1000, now_ms_=10_300) == 700


def test_a_job_past_its_linger_runs_at_once() -> None:
    """A retry, or a job that waited in the queue longer than the linger."""
    assert linger_left_ms(sent_at_ms=10_000, linger_ms=1000, now_ms_=12_000) == 0


def test_a_sender_clock_ahead_never_makes_a_job_wait_longer_than_the_linger() -> None:
    assert linger_left_ms(sent_at_ms=50_000, linger_ms=1000, now_ms_=10_000) == 1000
