"""The overlay component: widgets -> one RGBA texture -> screen-space quads.

Two costs are kept small, since a software rasteriser (llvmpipe) pays for every pixel:
the texture is re-drawn only when a widget's data changed since the last frame (text
layout takes milliseconds), and only the widgets' rectangles are blended onto the frame,
one quad each, not the whole screen.
"""

from __future__ import annotations

import copy

import moderngl
import numpy as np

from engine.scene import Component
from engine.ui.widgets import Widget

_VERTEX = """
#version 330
uniform vec2 u_screen;  // pixels
in vec2 in_pos;         // pixels, top-left origin
out vec2 v_uv;
void main() {
    v_uv = in_pos / u_screen;  // texture rows run top-down, like the pixels
    gl_Position = vec4(v_uv.x * 2.0 - 1.0, 1.0 - v_uv.y * 2.0, 0.0, 1.0);
}
"""
_FRAGMENT = """
#version 330
uniform sampler2D u_overlay;
in vec2 v_uv;
out vec4 f_color;
void main() {
    f_color = texture(u_overlay, v_uv);
}
"""
_CORNERS = np.array([(0, 0), (1, 0), (0, 1), (0, 1), (1, 0), (1, 1)], np.float32)  # two triangles


def _pygame():
    """pygame with its font module ready (works without a display)."""
    from engine.quiet_pygame import import_pygame

    pygame = import_pygame()
    if not pygame.font.get_init():
        pygame.font.init()
    return pygame


def _disjoint(rects: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Merge overlapping (x, y, w, h) rectangles into their bounding boxes, so no pixel is
    blended twice (a translucent panel under two quads would come out darker)."""
    boxes = [(x, y, x + w, y + h) for x, y, w, h in rects]
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                    boxes[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return [(x0, y0, x1 - x0, y1 - y0) for x0, y0, x1, y1 in boxes]


class Overlay(Component):
    """Screen-space 2D layer. ``add(widget)`` returns the widget; mutate it freely."""

    def __init__(self, font_path: str | None = None) -> None:
        self.widgets: list[Widget] = []
        self.font_path = font_path  # None: pygame's bundled default font
        self.redraws = 0  # how many times the texture was re-drawn (observable cost)
        self._fonts: dict[int, object] = {}
        self._drawn: list | None = None
        self._rgba: bytes | None = None
        self._size: tuple[int, int] = (0, 0)
        self._quads = 0
        self._gl: tuple | None = None  # (texture, program, vbo, vao)

    def add(self, widget: Widget) -> Widget:
        self.widgets.append(widget)
        return widget

    def remove(self, widget: Widget) -> None:
        self.widgets.remove(widget)

    @property
    def pixels(self) -> np.ndarray | None:
        """The last composed overlay as HxWx4 uint8 (top row first), for tests and tools."""
        if self._rgba is None:
            return None
        w, h = self._size
        return np.frombuffer(self._rgba, np.uint8).reshape(h, w, 4)

    def render(self, frame) -> None:
        snapshot = [copy.copy(w) for w in self.widgets if w.visible]
        if not snapshot:
            return
        ctx = frame.ctx
        texture, program, vbo, vao = self._ensure_gl(ctx, frame.size)
        if snapshot != self._drawn:
            live = [w for w in self.widgets if w.visible]  # drawing tells them their rect
            self._compose(live, frame.size)
            texture.write(self._rgba)
            self._quads = self._write_quads(vbo, live)
            self._drawn = snapshot
        if not self._quads:
            return
        texture.use(0)
        ctx.disable(moderngl.DEPTH_TEST | moderngl.CULL_FACE)  # 3D passes leave these on
        ctx.enable(moderngl.BLEND)
        ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA
        vao.render(moderngl.TRIANGLES, vertices=6 * self._quads)
        ctx.disable(moderngl.BLEND)
        ctx.enable(moderngl.DEPTH_TEST)

    def dispose(self) -> None:
        if self._gl is not None:
            for obj in self._gl:
                obj.release()
            self._gl = None

    # -- internals ----------------------------------------------------------------------

    def _font(self, size: int):
        font = self._fonts.get(size)
        if font is None:
            font = self._fonts[size] = _pygame().font.Font(self.font_path, size)
        return font

    def _compose(self, widgets: list[Widget], size: tuple[int, int]) -> None:
        pygame = _pygame()
        surface = pygame.Surface(size, pygame.SRCALPHA)
        for widget in widgets:
            widget.rect = None
            widget.draw(surface, self._font)
        self._rgba = pygame.image.tobytes(surface, "RGBA")
        self._size = (size[0], size[1])
        self.redraws += 1

    def _write_quads(self, vbo: moderngl.Buffer, widgets: list[Widget]) -> int:
        """One quad per drawn widget rectangle (clipped to the screen); returns the count."""
        w, h = self._size
        rects = []
        for widget in widgets:
            if widget.rect is None:
                continue
            x, y, rw, rh = widget.rect
            x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + rw), min(h, y + rh)
            if x1 > x0 and y1 > y0:
                rects.append((x0, y0, x1 - x0, y1 - y0))
        rects = _disjoint(rects)
        if not rects:
            return 0
        r = np.array(rects, np.float32)
        vertices = r[:, None, :2] + _CORNERS[None] * r[:, None, 2:]
        data = vertices.astype(np.float32).tobytes()
        if len(data) > vbo.size:
            vbo.orphan(len(data) * 2)
        vbo.write(data)
        return len(rects)

    def _ensure_gl(self, ctx: moderngl.Context, size: tuple[int, int]) -> tuple:
        if self._gl is not None and self._gl[0].size == tuple(size):
            return self._gl
        self.dispose()
        texture = ctx.texture(size, 4)
        program = ctx.program(vertex_shader=_VERTEX, fragment_shader=_FRAGMENT)
        program["u_overlay"].value = 0
        program["u_screen"].value = tuple(float(v) for v in size)
        vbo = ctx.buffer(reserve=16 * 6 * 2 * 4, dynamic=True)  # room for 16 quads; grows
        vao = ctx.vertex_array(program, [(vbo, "2f", "in_pos")])
        self._gl = (texture, program, vbo, vao)
        self._drawn = None
        return self._gl
