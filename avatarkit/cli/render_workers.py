"""Both cores for one render: helper processes draw some of the video's chunks.

On a software rasteriser one process keeps about 1.4 of two cores busy: llvmpipe's
threads rasterise while the render thread waits, and the render thread's Python (posing,
host morphs, draw calls) runs while they idle. Python threads cannot fill those gaps (the
GIL), processes can. A helper opens the same session (``render_session``: every frame is
a function of its index), advances its scene through the frames others draw, draws the
chunks it is granted and sends their pixels back; the parent encodes every frame in order.

Chunks take turns: with N processes, chunk c is meant for process c mod N (0 is the
parent). A free helper claims its next chunk after the one the parent is on; the parent
draws every chunk nobody claimed by the time it gets there, so a helper that starts late
(a Python, the imports, its own Motion Server: about 1.5 s) or dies costs only its share,
and the parent draws whatever a helper did not deliver. On a machine with no GPU device
node (``no_gpu_device``: EGL can only rasterise in software there) the helper starts
before the parent's own session, so the two start-ups, single-threaded Python both, run
side by side on the two cores; elsewhere it starts once the parent's context has shown a
software rasteriser.

Threads: the parent's render thread draws and takes frames (``RenderHelpers.owner``,
``take``); one receiver thread per helper reads its messages and answers its claims.
Wire (a ``multiprocessing`` connection over a socket pair): parent -> helper the
``RenderJob``, then one chunk index per claim (-1: nothing left); helper -> parent
``("claim",)``, ``("frame", index)`` followed by the frame's bytes, or ``("error", text)``.
"""

from __future__ import annotations

import glob
import logging
import math
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

import avatarkit
from avatarkit.cli.render_session import RenderJob, RenderSession, open_session

log = logging.getLogger(__name__)

CHUNK_FRAMES = 15  # frames a helper draws per claim: small enough to balance the load
# A helper's start-up (about 1.2 s of CPU) pays for itself from about 8 s of video on
# when it starts once the parent's context is up (BENCHMARKS.md: 10 s at 640x360 +1-8%,
# at 1280x720 +0-20%; 20 s +6% and +20%), from about 3 s when it starts beside the
# parent's own start-up (``early``; avatarkit render, 640x360: 3 s 2.21-2.45 s against
# 2.50-2.52 in one process, 4 s 2.12-2.22 against 2.40-2.54).
MIN_SECONDS = 8.0
MIN_SECONDS_EARLY = 4.0
TAKE_TIMEOUT_S = 60.0  # a helper silent this long is given up (the parent draws its share)
PARENT = 0


def helpers_for(workers: int | None, software: bool, seconds: float, early: bool = False) -> int:
    """Helper processes for a render: ``workers - 1``; or, with ``workers=None`` (auto),
    one on a software rasteriser with two or more CPUs for a video of ``MIN_SECONDS``
    (``MIN_SECONDS_EARLY`` for a helper started before the parent's session) or more,
    none on a GPU (which rasterises while the render thread works anyway)."""
    if workers is not None:
        return max(0, workers - 1)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    pays = seconds >= (MIN_SECONDS_EARLY if early else MIN_SECONDS)
    return 1 if software and (cpus or 1) >= 2 and pays else 0


def no_gpu_device() -> bool:
    """Whether this machine has no GPU device node at all (no DRM render node, no NVIDIA
    device): then EGL can only give a software rasteriser, known before any context."""
    return not (glob.glob("/dev/dri/renderD*") or os.path.exists("/dev/nvidiactl"))


class RenderHelpers:
    """The parent's side: starts ``count`` helpers for ``job``; render thread only, except
    each helper's receiver thread."""

    def __init__(self, job: RenderJob, frames: int, count: int) -> None:
        self._owners: list[int | None] = [None] * math.ceil(frames / CHUNK_FRAMES)
        self._turns = count + 1  # processes taking turns, the parent's included
        self._current = 0  # the chunk the parent is on
        self._lock = threading.Lock()
        self._shape = (job.size[1], job.size[0], 4 if job.alpha else 3)
        self._helpers: dict[int, _Helper] = {}
        for ident in range(1, count + 1):
            try:
                self._helpers[ident] = _Helper(ident, job, self)
            except OSError as exc:  # no process to be had: its turns are the parent's
                log.warning(
                    "render helper %d did not start (%s); drawing its frames here", ident, exc
                )
        self.count = len(self._helpers)

    def owner(self, index: int) -> int:
        """Who draws frame ``index``: PARENT, or the helper that claimed its chunk. At each
        chunk's first frame, a chunk nobody claimed becomes the parent's."""
        chunk = index // CHUNK_FRAMES
        with self._lock:
            self._current = chunk
            if self._owners[chunk] is None:
                self._owners[chunk] = PARENT
            return self._owners[chunk] or PARENT

    def take(self, helper: int, index: int) -> np.ndarray | None:
        """Frame ``index`` from ``helper`` (HxWxC uint8, top row first), waiting for it;
        None if that helper failed: the caller draws the frame itself."""
        return self._helpers[helper].take(index, self._shape)

    def grant(self, helper: int, after: int) -> int:
        """``helper``'s next unclaimed chunk after the parent's and after ``after``; -1: none
        left."""
        with self._lock:
            for chunk in range(max(self._current, after) + 1, len(self._owners)):
                if chunk % self._turns == helper and self._owners[chunk] is None:
                    self._owners[chunk] = helper
                    return chunk
        return -1

    def close(self, kill: bool = False) -> None:
        """After the last frame (helpers are done and exit), or ``kill`` on an error."""
        for helper in self._helpers.values():
            helper.close(kill)


class _Helper:
    """One helper process and its receiver thread (parent side)."""

    def __init__(self, ident: int, job: RenderJob, board: RenderHelpers) -> None:
        self.ident = ident
        ours, theirs = socket.socketpair()
        # The helper runs this very avatarkit, wherever the parent imported it from.
        here = str(Path(avatarkit.__file__).resolve().parents[1])
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "PYTHONPATH": here + (os.pathsep + path if path else "")}
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "avatarkit.cli.render_workers", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=env,
            )
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        self.conn = Connection(ours.detach())
        try:
            self.conn.send(job)
        except OSError:
            self.process.kill()
            self.process.wait()
            self.conn.close()
            raise
        self.frames: queue.Queue[tuple[int, bytes]] = queue.Queue(maxsize=CHUNK_FRAMES)
        self.error: str | None = None  # why it stopped, if it failed
        self.failed = False
        self._board = board
        self._last = -1  # the last chunk granted to it
        self._receiving = threading.Thread(
            target=self._receive, name=f"render-helper-{ident}", daemon=True
        )
        self._receiving.start()

    def _receive(self) -> None:  # receiver thread
        try:
            while True:
                message = self.conn.recv()
                if message[0] == "claim":
                    chunk = self._board.grant(self.ident, self._last)
                    self._last = max(self._last, chunk)
                    self.conn.send(chunk)
                elif message[0] == "frame":
                    self.frames.put((int(message[1]), self.conn.recv_bytes()))
                else:
                    self.error = str(message[1])
                    return
        except (EOFError, OSError) as exc:
            self.error = self.error or f"its connection closed ({exc.__class__.__name__})"

    def take(self, index: int, shape: tuple[int, int, int]) -> np.ndarray | None:
        deadline = time.monotonic() + TAKE_TIMEOUT_S
        while not self.failed:
            try:
                got, data = self.frames.get(timeout=0.05)
            except queue.Empty:
                if not self._receiving.is_alive() and self.frames.empty():
                    self._fail(self.error or "it stopped")
                elif time.monotonic() > deadline:
                    self._fail(f"no frame for {TAKE_TIMEOUT_S:.0f} s")
                continue
            if got != index or len(data) != math.prod(shape):
                self._fail(f"it sent frame {got} ({len(data)} bytes) for frame {index}")
                continue
            return np.frombuffer(data, np.uint8).reshape(shape)[::-1]  # rows bottom first
        return None

    def _fail(self, why: str) -> None:
        log.warning("render helper %d failed (%s); drawing its frames here", self.ident, why)
        self.failed = True
        self.close(kill=True)

    def close(self, kill: bool = False) -> None:
        """Wait for the process to end (``kill``: end it), then for its receiver."""
        if not kill:
            try:
                self.process.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                kill = True
        if kill:
            self.process.kill()
        self.process.wait()
        while self._receiving.is_alive():  # its socket is at EOF now; unblock a full queue
            self._drop_frames()
            self._receiving.join(timeout=0.05)
        self._drop_frames()
        self.conn.close()

    def _drop_frames(self) -> None:
        while True:
            try:
                self.frames.get_nowait()
            except queue.Empty:
                return


def serve_helper(conn: Connection) -> None:
    """The helper's side: open the job's session, then draw each granted chunk."""
    from engine.render.readback import FrameReader

    job: RenderJob = conn.recv()
    try:
        with open_session(job) as session:
            with session.app.ctx:
                reader = FrameReader(session.app.ctx, job.size, alpha=job.alpha)
            index = 0
            while (chunk := _claim(conn)) >= 0:
                start = chunk * CHUNK_FRAMES
                end = min(session.frames, start + CHUNK_FRAMES)
                while index < start:  # frames others draw: the scene moves on all the same
                    session.tick(index, draw=False)
                    index += 1
                _draw(session, reader, conn, start, end)
                index = end
            with session.app.ctx:
                reader.release()
    except Exception as exc:  # handed to the parent, which draws the frames itself
        conn.send(("error", f"{exc.__class__.__name__}: {exc}"))


def _claim(conn: Connection) -> int:
    conn.send(("claim",))
    return int(conn.recv())


def _draw(session: RenderSession, reader, conn: Connection, start: int, end: int) -> None:
    drawn: deque[int] = deque()

    def send(ready: np.ndarray) -> None:
        conn.send(("frame", drawn.popleft()))
        conn.send_bytes(ready[::-1].data.cast("B"))  # the buffer as read: rows upward

    app = session.app
    for index in range(start, end):
        session.tick(index)
        drawn.append(index)
        with app.ctx:
            ready = reader.push(app.target.resolved)
        if ready is not None:
            send(ready)
    with app.ctx:
        for ready in reader.drain():
            send(ready)


def main() -> None:
    """``python -m avatarkit.cli.render_workers FD``: a helper on the socket ``FD``."""
    logging.disable(logging.WARNING)  # the parent reports; the same warnings twice are noise
    serve_helper(Connection(int(sys.argv[1])))


if __name__ == "__main__":
    main()
