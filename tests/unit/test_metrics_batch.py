"""`observe_many` records what as many `observe` calls would: it reads prometheus_client's
histogram internals, so this is the check that a new version of the library still fits."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram

from chat.metrics import LATENCY_BUCKETS, observe_many


def _pair() -> tuple[CollectorRegistry, Histogram, CollectorRegistry, Histogram]:
    one, many = CollectorRegistry(), CollectorRegistry()
    return (
        one,
        Histogram("h_seconds", "h", buckets=LATENCY_BUCKETS, registry=one),
        many,
        Histogram("h_seconds", "h", buckets=LATENCY_BUCKETS, registry=many),
    )


def _samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    return {
        (s.name, s.labels.get("le", "")): s.value
        for metric in registry.collect()
        for s in metric.samples
        if not s.name.endswith("_created")
    }


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(
                st.sampled_from([0.0, *LATENCY_BUCKETS]),  # exactly on a bound: `le` is <=
                st.floats(min_value=0, max_value=20, allow_nan=False),
            ),
            st.integers(min_value=0, max_value=50),
        ),
        max_size=8,
    )
)
def test_observe_many_matches_repeated_observe(batches: list[tuple[float, int]]) -> None:
    one, single, many, batched = _pair()
    for amount, count in batches:
        for _ in range(count):
            single.observe(amount)
        observe_many(batched, amount, count)
    expected, got = _samples(one), _samples(many)
    assert expected.keys() == got.keys()
    for key, value in expected.items():
        assert math.isclose(got[key], value, rel_tol=1e-9, abs_tol=1e-9), key


def test_a_labelled_histogram_is_observed_per_child() -> None:
    registry = CollectorRegistry()
    h = Histogram("l_seconds", "l", ["route"], buckets=LATENCY_BUCKETS, registry=registry)
    observe_many(h.labels("a"), 0.003, 4)
    assert registry.get_sample_value("l_seconds_count", {"route": "a"}) == 4
    assert registry.get_sample_value("l_seconds_bucket", {"route": "a", "le": "0.0025"}) == 0
    assert registry.get_sample_value("l_seconds_bucket", {"route": "a", "le": "0.005"}) == 4
