"""Two ChatClusters in one namespace never ask for the same child: with the CRD's name rule
(no `-worker`, no `-migrate` in a ChatCluster's name), (cluster, pool) -> child names is
injective per kind."""

from __future__ import annotations

import re
from dataclasses import replace

from chat_operator import patterns
from chat_operator.builders import Cluster, Rollout, children, migration_job
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.operator.operator_examples import cluster_from, load_example

LABEL = re.compile(patterns.DNS_LABEL)
# Short names over a tiny alphabet make collisions likely if the rule allowed any.
names = st.text(alphabet="abw-", min_size=1, max_size=8).filter(
    lambda n: bool(LABEL.match(n)) and "-worker" not in n and "-migrate" not in n
)
pools = st.lists(
    st.text(alphabet="abipsw-", min_size=1, max_size=10).filter(lambda n: bool(LABEL.match(n))),
    min_size=1,
    max_size=3,
    unique=True,
)

ROLLOUT = Rollout("ghcr.io/chatcluster/chatcluster:1.0.0", "x", False)


def owned(name: str, pool_names: list[str]) -> set[tuple[str, str]]:
    base = cluster_from(load_example("chatcluster-full.yaml"))
    template = base.spec.workers[0]
    spec = replace(base.spec, workers=tuple(replace(template, name=p) for p in pool_names))
    cluster = Cluster(name, "ns", f"uid-{name}", spec)
    found = {(m["kind"], m["metadata"]["name"]) for m in children(cluster, ROLLOUT)}
    job = migration_job(cluster, ROLLOUT.image or "", ROLLOUT)
    return found | {(job["kind"], job["metadata"]["name"])}


@settings(max_examples=150, deadline=None)
@given(names, pools, names, pools)
def test_distinct_clusters_never_share_a_child(
    a: str, pa: list[str], b: str, pb: list[str]
) -> None:
    if a == b:
        return
    assert owned(a, pa).isdisjoint(owned(b, pb))


def test_without_the_rule_names_would_collide() -> None:
    """The case the rule exists for: pool `b-api` of `a` vs the api of `a-worker-b`."""
    assert ("Deployment", "a-worker-b-api") in owned("a", ["b-api"]) & owned("a-worker-b", ["x"])
