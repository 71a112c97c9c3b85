"""The multiprocess cluster fixtures, for the test that scrapes a running devcluster, and the
control-plane fixtures, for the one that scrapes the operator."""

from tests.k8s.conftest import binaries, control_plane, kubelet, namespace, operator, release
from tests.multiprocess.conftest import backing, make_cluster

__all__ = [
    "backing",
    "binaries",
    "control_plane",
    "kubelet",
    "make_cluster",
    "namespace",
    "operator",
    "release",
]
