"""Off-screen render target: multisampled colour+depth, resolved into a plain texture.

Both backends render here; the window backend then blits the resolved image to the
screen, the headless one reads it back. One code path, same pixels.
"""

from __future__ import annotations

import moderngl
import numpy as np


class RenderTarget:
    def __init__(self, ctx: moderngl.Context, size: tuple[int, int], samples: int = 4) -> None:
        self.ctx = ctx
        self.size = (int(size[0]), int(size[1]))
        self.samples = min(int(samples), ctx.max_samples) if samples > 1 else 0
        self.color = ctx.texture(self.size, 4)  # RGBA8, holds sRGB-encoded output
        if self.samples:
            self._ms_color = ctx.renderbuffer(self.size, 4, samples=self.samples)
            self._ms_depth = ctx.depth_renderbuffer(self.size, samples=self.samples)
            self.framebuffer = ctx.framebuffer([self._ms_color], self._ms_depth)
            self.resolved = ctx.framebuffer([self.color])
        else:
            self._depth = ctx.depth_renderbuffer(self.size)
            self.framebuffer = ctx.framebuffer([self.color], self._depth)
            # Same texture, colour only: blits to a window (which may lack a depth
            # buffer of this format) must not involve depth.
            self.resolved = ctx.framebuffer([self.color])

    def begin(self, clear_color: tuple[float, float, float, float]) -> None:
        self.framebuffer.use()
        self.framebuffer.clear(*clear_color, depth=1.0)

    def resolve(self) -> None:
        if self.samples:
            self.ctx.copy_framebuffer(self.resolved, self.framebuffer)

    def read(self, alpha: bool = False) -> np.ndarray:
        """The resolved image as HxWx3 (or x4) uint8, top row first."""
        components = 4 if alpha else 3
        data = self.resolved.read(components=components, alignment=1)
        w, h = self.size
        return np.frombuffer(data, np.uint8).reshape(h, w, components)[::-1].copy()

    def release(self) -> None:
        seen = set()
        for obj in vars(self).values():
            if (
                isinstance(obj, moderngl.Framebuffer | moderngl.Renderbuffer | moderngl.Texture)
                and id(obj) not in seen
            ):
                seen.add(id(obj))
                obj.release()
