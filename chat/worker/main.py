"""The `worker` subcommand: Dramatiq worker processes consuming from Redis.

Each process runs the stores on a background event loop (the actors hand their coroutines to
it) and Dramatiq's threads on the main one. Every process also enqueues the periodic sweep; the
sweep is idempotent, so several running at once only repeat a cheap check.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
import threading

import dramatiq
from prometheus_client import start_http_server

from chat.config import Settings
from chat.runtime import open_runtime
from chat.worker.runner import BackgroundLoop

log = logging.getLogger(__name__)


def _one_process(
    settings: Settings, threads: int, queues: list[str] | None, metrics_port: int
) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    background = BackgroundLoop()
    runner = background.start()
    rt = runner.run(lambda: open_runtime(settings))
    if metrics_port:
        start_http_server(metrics_port, registry=rt.metrics.registry)
    worker = dramatiq.Worker(
        rt.broker,
        queues=set(queues) if queues else None,
        worker_threads=threads,
        worker_timeout=500,
    )
    worker.start()

    async def periodic() -> None:
        while True:
            try:
                await asyncio.to_thread(rt.actors.sweep.send)
                await asyncio.to_thread(rt.actors.retention.send)
            except Exception:
                log.warning("could not enqueue maintenance jobs", exc_info=True)
            await asyncio.sleep(settings.sweep_interval_s)

    sweeper = asyncio.run_coroutine_threadsafe(periodic(), background.loop)
    log.info("worker ready: %d threads, queues %s", threads, queues or "all")
    stop.wait()
    log.info("worker stopping")
    sweeper.cancel()
    worker.stop(timeout=10_000)
    runner.run(rt.close)
    background.stop()


def run_workers(
    settings: Settings, *, processes: int, threads: int, queues: list[str] | None, metrics_port: int
) -> int:
    if processes < 1 or threads < 1:
        raise SystemExit("--processes and --threads must be at least 1")
    if processes == 1:
        _one_process(settings, threads, queues, metrics_port)
        return 0
    ctx = multiprocessing.get_context("spawn")
    children = [
        ctx.Process(
            target=_one_process,
            args=(settings, threads, queues, metrics_port + i if metrics_port else 0),
        )
        for i in range(processes)
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
    return max((child.exitcode or 0) for child in children)
