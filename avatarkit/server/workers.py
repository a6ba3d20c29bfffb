"""Run the server in the foreground: one process, or N workers sharing the port.

Workers are separate processes binding the same address with SO_REUSEPORT (the kernel
spreads connections among them) and sharing the credentials, so a token issued by any
worker is accepted by all. SIGINT/SIGTERM shut every worker down gracefully.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import socket

from aiohttp import web

from avatarkit.server.app import create_app, graceful_shutdown
from avatarkit.server.config import ServerConfig
from avatarkit.server.guard import GuardedAppRunner, quiet_accept_errors

# A server process runs many small per-session matrix ops on one event loop: extra BLAS
# threads only fight it (and the other workers) for the cores. Set before numpy loads.
SINGLE_THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def serve(config: ServerConfig, workers: int = 1) -> None:
    """Block serving ``config`` until SIGINT/SIGTERM."""
    if workers <= 1:
        asyncio.run(_serve_one(config, reuse_port=False))
        return
    for name, value in SINGLE_THREAD_ENV.items():
        os.environ.setdefault(name, value)  # inherited by the spawned workers
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_worker_main, args=(config,), name=f"avatarkit-worker-{i}")
        for i in range(workers)
    ]
    stopping = False

    def forward(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for process in processes:
            if process.pid is not None and process.is_alive():
                process.terminate()  # SIGTERM: the worker shuts down gracefully

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        for process in processes:
            if not stopping:
                process.start()
        for process in processes:
            while process.pid is not None and process.is_alive():
                try:
                    process.join()
                except KeyboardInterrupt:
                    continue  # the workers got the same SIGINT and are shutting down
    finally:
        signal.signal(signal.SIGTERM, previous)


def pick_free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _worker_main(config: ServerConfig) -> None:
    try:
        asyncio.run(_serve_one(config, reuse_port=True))
    except KeyboardInterrupt:
        pass


async def _serve_one(config: ServerConfig, reuse_port: bool) -> None:
    app = await create_app(config)
    quiet_accept_errors(asyncio.get_running_loop())
    runner = GuardedAppRunner(
        app,
        config,
        handle_signals=False,
        shutdown_timeout=config.shutdown_grace_s + 2.0,
        access_log=None,
    )
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, reuse_port=reuse_port or None)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await graceful_shutdown(runner)
