"""Off-screen render target: colour+depth (multisampled or not), resolved into a plain
texture, optionally through the post anti-aliasing pass.

Both backends render here; the window backend then blits the resolved image to the
screen, the headless one reads it back. One code path, same pixels.
"""

from __future__ import annotations

import moderngl
import numpy as np

from engine.render.edge_lines import EdgeLines
from engine.render.post_aa import PostAntiAliasing


class TargetPasses:
    """The post pass and the edge-line pass made once and shared by every target an App
    builds: a live App that switches quality rebuilds its target, and llvmpipe compiles a
    program's variants on its first draws (the line pass: some 5 ms), which ``warm()``
    does ahead on a scrap target."""

    def __init__(self, ctx: moderngl.Context) -> None:
        self.ctx = ctx
        self.post_aa = PostAntiAliasing(ctx)
        self.edge_lines = EdgeLines(ctx)

    def warm(self) -> None:
        """Both passes once over a 16x16 scrap frame holding an edge."""
        size = (16, 16)
        pixels = np.zeros((16, 16, 4), np.uint8)
        pixels[:, 8:] = 255
        source = self.ctx.texture(size, 4, pixels.tobytes())
        depth = self.ctx.depth_texture(size)
        out = self.ctx.framebuffer([self.ctx.texture(size, 4)])
        scene = self.ctx.framebuffer([source], depth)
        scene.use()
        self.ctx.clear(depth=1.0)
        line = np.array([[[0.1, -0.9, 0.5, 1.0], [0.1, 0.9, 0.5, 1.0]]], np.float32)
        self.post_aa.apply(source, out)
        self.edge_lines.apply(source, depth, out, line)
        for obj in (scene, out, *out.color_attachments, source, depth):
            obj.release()

    def release(self) -> None:
        self.post_aa.release()
        self.edge_lines.release()


class RenderTarget:
    def __init__(
        self,
        ctx: moderngl.Context,
        size: tuple[int, int],
        samples: int = 4,
        post_aa: bool = False,
        edge_lines: bool = False,
        passes: TargetPasses | None = None,
    ) -> None:
        """``passes``: the post and line passes to use (kept by the caller), else its own."""
        self.ctx = ctx
        self._own_passes = passes is None
        self.size = (int(size[0]), int(size[1]))
        self.samples = min(int(samples), ctx.max_samples) if samples > 1 else 0
        # The shown edges' lines after the post pass (engine.render.edge_lines).
        self.edge_lines: EdgeLines | None = None
        self.color = ctx.texture(self.size, 4)  # RGBA8, holds sRGB-encoded output
        # Colour only: blits to a window (which may lack a depth buffer of this format)
        # and readback must not involve depth.
        self.resolved = ctx.framebuffer([self.color])
        self.post_aa = (passes.post_aa if passes else PostAntiAliasing(ctx)) if post_aa else None
        # Where the scene's colour lands before the post pass (the final texture without one).
        self._scene_color = ctx.texture(self.size, 4) if post_aa else self.color
        self._scene = ctx.framebuffer([self._scene_color]) if post_aa else self.resolved
        if self.samples:
            self._ms_color = ctx.renderbuffer(self.size, 4, samples=self.samples)
            self._ms_depth = ctx.depth_renderbuffer(self.size, samples=self.samples)
            self.framebuffer = ctx.framebuffer([self._ms_color], self._ms_depth)
        else:
            lines = post_aa and edge_lines
            # The edge lines read the scene's depth: a texture there.
            self._depth = (
                ctx.depth_texture(self.size) if lines else ctx.depth_renderbuffer(self.size)
            )
            self.framebuffer = ctx.framebuffer([self._scene_color], self._depth)
            if lines:  # drawn over the post pass's result
                self.edge_lines = passes.edge_lines if passes else EdgeLines(ctx)

    def begin(self, clear_color: tuple[float, float, float, float]) -> None:
        self.framebuffer.use()
        self.framebuffer.clear(*clear_color, depth=1.0)

    def resolve(
        self,
        region: tuple[float, float, float, float] | None = (-1, -1, 1, 1),
        lines: np.ndarray | None = None,
    ) -> None:
        """Resolve MSAA, then the post pass over ``region`` (NDC x0, y0, x1, y1: where
        geometry was drawn, ``Renderer.drawn_region``; None: nowhere), then the edge
        ``lines`` (``Renderer.edge_lines``) where the target draws them."""
        if self.samples:
            self.ctx.copy_framebuffer(self._scene, self.framebuffer)
        if self.post_aa is not None:
            # The pass only writes edge pixels: the copy (a memcpy on llvmpipe) is the rest.
            self.ctx.copy_framebuffer(self.resolved, self._scene)
            if region is not None:
                self.post_aa.apply(self._scene_color, self.resolved, self._pixels(region))
            if self.edge_lines is not None and lines is not None:
                assert isinstance(self._depth, moderngl.Texture)
                self.edge_lines.apply(self._scene_color, self._depth, self.resolved, lines)

    def _pixels(self, region: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
        """NDC rectangle -> pixel scissor (x, y, w, h), a few pixels of margin around it
        (FXAA reads neighbours and blends a pixel or so across the edge)."""
        w, h = self.size
        margin = 3
        x0 = max(0, int((region[0] + 1) / 2 * w) - margin)
        y0 = max(0, int((region[1] + 1) / 2 * h) - margin)
        x1 = min(w, int(np.ceil((region[2] + 1) / 2 * w)) + margin)
        y1 = min(h, int(np.ceil((region[3] + 1) / 2 * h)) + margin)
        return x0, y0, max(0, x1 - x0), max(0, y1 - y0)

    def read(self, alpha: bool = False) -> np.ndarray:
        """The resolved image as HxWx3 (or x4) uint8, top row first."""
        components = 4 if alpha else 3
        data = self.resolved.read(components=components, alignment=1)
        w, h = self.size
        return np.frombuffer(data, np.uint8).reshape(h, w, components)[::-1].copy()

    def release(self) -> None:
        if self._own_passes:
            if self.post_aa is not None:
                self.post_aa.release()
            if self.edge_lines is not None:
                self.edge_lines.release()
        seen = set()
        for obj in vars(self).values():
            if (
                isinstance(obj, moderngl.Framebuffer | moderngl.Renderbuffer | moderngl.Texture)
                and id(obj) not in seen
            ):
                seen.add(id(obj))
                obj.release()
