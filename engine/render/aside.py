"""Helper threads the render thread hands work to: pure numpy over copies, no GL. One
thread per name, made when first asked for: ``edge-plan`` (a new set of draws' edge plan,
``engine.render.edge_capture``) and ``asset-prep`` (an asset upload's host side,
``engine.render.upload_data``). The render thread submits and polls the futures; a
result is picked up on a later frame, never waited for in one."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

_WORKERS: dict[str, ThreadPoolExecutor] = {}
_LOCK = threading.Lock()


def worker(name: str) -> ThreadPoolExecutor:
    """The one helper thread called ``name`` (made on first use)."""
    with _LOCK:
        pool = _WORKERS.get(name)
        if pool is None:
            pool = _WORKERS[name] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        return pool
