"""The process harness shared by the tests and `python -m tools.devcluster`: the supervisor's
start / ready / stop / kill contract on real child processes, one source for versions and
paths, the haproxy configuration haproxy accepts, and the shipped package never importing it."""

from __future__ import annotations

import ast
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tools.devcluster.haproxy import haproxy_config
from tools.harness import versions
from tools.harness.net import free_port
from tools.harness.supervisor import ChildFailed, Proc, logged, wait_until

ROOT = Path(__file__).resolve().parents[2]


def _python(name: str, code: str, tmp_path: Path, **kwargs: Any) -> Proc:
    return Proc(name, [sys.executable, "-c", code], tmp_path / f"{name}.log", **kwargs)


SERVE = "import time; print('serving', flush=True); time.sleep(120)"
IGNORE_TERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('serving', flush=True); time.sleep(120)"
)


def test_start_waits_until_ready_and_stop_sends_the_stop_signal(tmp_path: Path) -> None:
    proc = _python("child", SERVE, tmp_path, ready=logged(b"serving"))
    proc.start()
    try:
        assert proc.running
        assert "serving" in proc.tail()
    finally:
        code = proc.stop(timeout_s=10)
    assert code == -signal.SIGTERM
    assert not proc.running


def test_stop_escalates_to_sigkill_when_the_child_ignores_its_stop_signal(
    tmp_path: Path,
) -> None:
    proc = _python("stubborn", IGNORE_TERM, tmp_path, ready=logged(b"serving"))
    proc.start()
    assert proc.stop(timeout_s=0.5) == -signal.SIGKILL


def test_a_child_that_exits_while_starting_fails_at_once_with_its_log(tmp_path: Path) -> None:
    proc = _python(
        "crasher", "import sys; print('bad flag'); sys.exit(3)", tmp_path, ready=lambda _: False
    )
    with pytest.raises(ChildFailed, match=r"crasher exited with 3:\nbad flag"):
        proc.start()  # long before the 60 s start timeout


def test_readiness_is_bounded(tmp_path: Path) -> None:
    proc = _python("never", SERVE, tmp_path, ready=lambda _: False)
    proc.start(wait=False)
    try:
        with pytest.raises(TimeoutError, match=r"never not ready after 0\.3s"):
            proc.wait_ready(timeout_s=0.3)
    finally:
        proc.kill()
    assert not proc.running


def test_restart_keeps_the_port_and_appends_to_the_log(tmp_path: Path) -> None:
    port = free_port()
    proc = _python("again", SERVE, tmp_path, port=port, ready=logged(b"serving"))
    proc.start()
    first = proc.pid
    proc.restart(hard=True)
    try:
        assert proc.pid != first and proc.port == port
        assert proc.log_path.read_text().count("serving") == 2
    finally:
        proc.stop(timeout_s=10)


def test_wait_until_names_what_it_waited_for() -> None:
    with pytest.raises(TimeoutError, match=r"the moon not ready after 0\.1s"):
        wait_until(lambda: False, 0.1, "the moon")


def test_the_ferretdb_script_builds_the_version_the_harness_looks_for() -> None:
    """One source: scripts/setup.d/30-ferretdb.sh sources versions.env (no version of its own),
    and a shell reads that file exactly as tools.harness.versions does."""
    script = (ROOT / "scripts/setup.d/30-ferretdb.sh").read_text()
    assert 'source "$(dirname "$0")/../../tools/harness/versions.env"' in script
    assert "FERRETDB_VERSION=" not in script
    out = subprocess.run(
        ["bash", "-c", f'source "{versions.VERSIONS_FILE}"; echo "$FERRETDB_VERSION $PG_BIN"'],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == [versions.FERRETDB_VERSION, str(versions.PG_BIN)]
    assert versions.ferretdb_binary().parent.name == f"ferretdb-{versions.FERRETDB_VERSION}"


def test_a_versions_line_a_shell_would_read_differently_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "versions.env"
    bad.write_text('# fine\nGOOD=v1\nBAD="two words"\n')
    with pytest.raises(ValueError, match=r"versions.env:3: expected KEY=value"):
        versions.read_versions(bad)


def test_haproxy_accepts_the_ingress_configuration(tmp_path: Path) -> None:
    haproxy = shutil.which("haproxy")
    if haproxy is None:
        pytest.skip("haproxy is not installed")
    gateways = [Proc(f"ws{i}", [], tmp_path / "x.log", port=free_port()) for i in range(2)]
    api = [Proc("api0", [], tmp_path / "x.log", port=free_port())]
    text = haproxy_config(free_port(), gateways, api, tmp_path / "haproxy.sock", maxconn=256)
    assert f"server ws1 127.0.0.1:{gateways[1].port} check" in text
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(text)
    check = subprocess.run([haproxy, "-c", "-q", "-f", str(cfg)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_shipped_packages_never_import_the_dev_tooling() -> None:
    """tools/ is not in the wheel or the image: an import of it from chat/ or chat_operator/
    would fail there."""
    offenders = []
    for package in (ROOT / "chat", ROOT / "operator" / "chat_operator"):
        for path in package.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                offenders += [
                    f"{path}: {n}" for n in names if n.split(".")[0] in ("tools", "tests")
                ]
    assert offenders == []


def test_devcluster_refuses_bad_process_counts_before_starting_anything() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tools.devcluster", "--gateways", "0"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert out.returncode == 2
    assert "--gateways and --workers must be 1..16" in out.stderr


def test_free_port_never_hands_out_a_port_twice() -> None:
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)
