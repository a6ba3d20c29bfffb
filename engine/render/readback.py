"""Frame readback that does not stall the render loop: pixel buffer objects, in turn.

``glReadPixels`` into client memory waits until the GPU has finished the frame and then
copies it while the CPU waits. Read into a pixel buffer object instead, the copy is
queued with the frame, and the CPU maps the buffer a frame or more later, when it is
long done. On a software rasteriser the read is synchronous either way, and the ring
costs nothing.
"""

from __future__ import annotations

from collections import deque

import moderngl
import numpy as np


class FrameReader:
    """``push(framebuffer)`` after each frame: queues its read and returns the pixels of
    the frame ``depth - 1`` frames earlier (HxWx3 or x4 uint8, top row first, read-only),
    or None while the ring fills; ``drain()`` returns the rest, oldest first. Render
    thread only.
    """

    def __init__(
        self, ctx: moderngl.Context, size: tuple[int, int], alpha: bool = False, depth: int = 2
    ) -> None:
        self.ctx = ctx
        self.size = (int(size[0]), int(size[1]))
        self.components = 4 if alpha else 3
        nbytes = self.size[0] * self.size[1] * self.components
        self._free = [ctx.buffer(reserve=nbytes) for _ in range(max(2, depth))]
        self._pending: deque[moderngl.Buffer] = deque()

    def push(self, framebuffer: moderngl.Framebuffer) -> np.ndarray | None:
        buffer = self._free.pop()
        framebuffer.read_into(buffer, components=self.components, alignment=1)
        self._pending.append(buffer)
        return self._take() if not self._free else None

    def drain(self) -> list[np.ndarray]:
        frames = []
        while self._pending:
            frames.append(self._take())
        return frames

    def _take(self) -> np.ndarray:
        buffer = self._pending.popleft()
        data = buffer.read()
        self._free.append(buffer)
        w, h = self.size
        return np.frombuffer(data, np.uint8).reshape(h, w, self.components)[::-1]

    def release(self) -> None:
        for buffer in (*self._free, *self._pending):
            buffer.release()
        self._free, self._pending = [], deque()
