"""Session fixtures for the real control plane: etcd + kube-apiserver +
kube-controller-manager, the operator chart installed with helm, and the operator running as
a local process under the chart's ServiceAccount token.

Without the binaries (scripts/setup.d/40-k8s.sh not run) these tests skip on a laptop, but
fail under CI=true, where a skip would hide a broken setup.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.k8s.controlplane import ControlPlane
from tests.k8s.fake_kubelet import FakeKubelet
from tests.k8s.k8s_binaries import Binaries, locate
from tests.k8s.operator_process import OperatorProcess
from tests.k8s.support import CHART, OPERATOR_NAMESPACE, RELEASE, SECRETS, SERVICE_ACCOUNT


@pytest.fixture(scope="session")
def binaries() -> Binaries:
    found = locate()
    if missing := found.missing():
        message = f"control-plane binaries missing (run scripts/setup.d/40-k8s.sh): {missing}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="session")
def control_plane(
    binaries: Binaries, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane]:
    plane = ControlPlane(binaries, tmp_path_factory.mktemp("k8s"))
    try:
        plane.start()
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def kubelet(control_plane: ControlPlane) -> Iterator[FakeKubelet]:
    fake = FakeKubelet(control_plane.admin_kubeconfig)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def release(control_plane: ControlPlane) -> str:
    """``helm install`` the chart: CRDs, ServiceAccount, RBAC, operator Deployment."""
    control_plane.helm(
        "install", RELEASE, str(CHART), "--namespace", OPERATOR_NAMESPACE, "--create-namespace"
    )
    control_plane.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd/chatclusters.chatcluster.dev"
    )
    return RELEASE


@pytest.fixture(scope="session")
def operator(
    control_plane: ControlPlane,
    release: str,
    kubelet: FakeKubelet,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    token = control_plane.token_kubeconfig(OPERATOR_NAMESPACE, SERVICE_ACCOUNT)
    proc = OperatorProcess(token, tmp_path_factory.mktemp("operator"))
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def namespace(control_plane: ControlPlane) -> str:
    """A fresh namespace with the Secrets the examples reference. Namespaces are not deleted:
    there is no namespace controller, and the whole control plane is thrown away anyway."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    control_plane.kubectl("create", "namespace", name)
    for secret, data in SECRETS.items():
        literals = [f"--from-literal={k}={v}" for k, v in data.items()]
        control_plane.kubectl("create", "secret", "generic", secret, "-n", name, *literals)
    return name
