"""Session fixtures for the real node: one node per session (bring-up about a minute), and
on it one ChatCluster deployed as a user would (tests/realnode/deploy.py).

These tests need root, containerd and the binaries of scripts/setup.d/45-k8s-node.sh; without
them they skip on a laptop but fail under CI=true, where a skip would hide a broken setup.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.image.support import unavailable
from tests.realnode.binaries import locate_node
from tests.realnode.deploy import Deployed, deploy
from tests.realnode.node import RealNode


@pytest.fixture(scope="session")
def real_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealNode]:
    if os.geteuid() != 0:
        unavailable("the real node needs root (bridges, iptables, containerd)")
    found = locate_node()
    if missing := found.missing():
        unavailable(f"real-node binaries missing (scripts/setup.d/45-k8s-node.sh): {missing}")
    node = RealNode(found, tmp_path_factory.mktemp("realnode"))
    try:
        node.start()
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def deployed(real_node: RealNode, tmp_path_factory: pytest.TempPathFactory) -> Deployed:
    result = deploy(real_node, tmp_path_factory.mktemp("deploy"))
    print(f"\nreal node bring-up (s): {real_node.timings}\ndeployment (s): {result.timings}")
    return result
