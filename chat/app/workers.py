"""The `worker` subcommand: Dramatiq worker processes consuming from Redis.

Each process runs the stores on a background event loop (the actors hand their coroutines to
it) and Dramatiq's threads on the main one. Every process also enqueues the periodic sweep
(chat/worker/schedule.py).

Metrics: one listener per pod, on `settings.metrics_port` (the port the pod declares). With
`--processes N > 1` the supervising process owns it and serves the sum of every child's
samples (prometheus_client multiprocess mode: the children write their values to files in a
fresh directory under $TMPDIR, an emptyDir in Kubernetes); the children bind no port.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator

import dramatiq
from prometheus_client import CollectorRegistry, multiprocess, start_http_server

from chat.app.runtime import open_runtime
from chat.config import Settings
from chat.logs import configure as configure_logging
from chat.metrics import add_process_collectors
from chat.worker.runner import BackgroundLoop
from chat.worker.schedule import enqueue_maintenance

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _one_process(
    settings: Settings, threads: int, queues: list[str] | None, serve_metrics: bool
) -> None:
    # A spawned child starts with no logging configured: the same format as its supervisor.
    configure_logging(settings.log_level, settings.log_format)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    background = BackgroundLoop()
    runner = background.start()
    rt = runner.run(lambda: open_runtime(settings))
    rt.metrics.worker_processes.set(1)
    if serve_metrics and settings.metrics_port:
        start_http_server(settings.metrics_port, settings.host, registry=rt.metrics.registry)
    worker = dramatiq.Worker(
        rt.broker,
        queues=set(queues) if queues else None,
        worker_threads=threads,
        # An idle persistence queue is polled every 0.5-1 s, the others less (redis_broker.py).
        worker_timeout=1000,
    )
    worker.start()

    schedule = enqueue_maintenance(rt.actors, settings.sweep_interval_s, at_once=True)
    sweeper = asyncio.run_coroutine_threadsafe(schedule, background.loop)
    log.info("worker ready: %d threads, queues %s", threads, queues or "all")
    stop.wait()
    log.info("worker stopping")
    rt.stop_lingering()
    sweeper.cancel()
    worker.stop(timeout=10_000)
    runner.run(rt.close)
    background.stop()


@contextlib.contextmanager
def _multiprocess_metrics(settings: Settings) -> Iterator[str]:
    """A fresh sample directory the children inherit through the environment (it must be set
    before they import prometheus_client), and the one listener that sums them."""
    path = tempfile.mkdtemp(prefix="chat-metrics-")
    previous = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = path
    server = None
    try:
        if settings.metrics_port:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
            add_process_collectors(registry)  # the supervisor's own; children export none
            server, _ = start_http_server(settings.metrics_port, settings.host, registry=registry)
        yield path
    finally:
        if server is not None:
            server.shutdown()
        if previous is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous
        shutil.rmtree(path, ignore_errors=True)


def run_workers(
    settings: Settings, *, processes: int, threads: int, queues: list[str] | None
) -> int:
    if processes < 1 or threads < 1:
        raise SystemExit("--processes and --threads must be at least 1")
    if processes == 1:
        _one_process(settings, threads, queues, serve_metrics=True)
        return 0
    ctx = multiprocessing.get_context("spawn")
    with _multiprocess_metrics(settings) as path:
        children = [
            ctx.Process(target=_one_process, args=(settings, threads, queues, False))
            for _ in range(processes)
        ]
        for child in children:
            child.start()

        def forward(signum: int, _frame: object) -> None:
            for child in children:
                if child.pid is not None and child.is_alive():
                    child.terminate()

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        for child in children:
            child.join()
            if child.pid is not None:
                # Its live gauges (chat_worker_processes) stop counting.
                multiprocess.mark_process_dead(child.pid, path)  # type: ignore[no-untyped-call]
    return max((child.exitcode or 0) for child in children)
