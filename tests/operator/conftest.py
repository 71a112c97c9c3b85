"""Fixtures for the operator's pure unit tests: parsed example specs, no cluster needed."""

from __future__ import annotations

import pytest
from chat_operator.builders import Cluster, Rollout

from tests.operator.operator_examples import cluster_from, load_example


@pytest.fixture
def minimal() -> Cluster:
    return cluster_from(load_example("chatcluster-minimal.yaml"))


@pytest.fixture
def full() -> Cluster:
    return cluster_from(load_example("chatcluster-full.yaml"))


@pytest.fixture
def rollout() -> Rollout:
    return Rollout(
        image="ghcr.io/chatcluster/chatcluster:1.0.0",
        secrets_checksum="abc",
        service_monitor_available=True,
    )
