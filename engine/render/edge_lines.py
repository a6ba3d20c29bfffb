"""Geometric edge anti-aliasing (Persson's GPAA) over the finished frame: the mesh edges
that show (silhouettes and open borders, ``engine.render.edge_capture``) drawn as
one-pixel lines; each pixel a line crosses is blended with the pixel across the line by
the share of it beyond the line (exact for a straight edge).

Why: the post pass's FXAA guesses an edge's place from luma steps. On the bundled
avatars 93-96% of the pixels that alias lie on a material or silhouette boundary
(BENCHMARKS.md), and there the geometry knows the exact place; FXAA keeps the rest
(texture detail, where surfaces cut through each other), and runs first. Edges inside
a smooth surface are not drawn: both sides have one colour.

An edge under a nearer surface (a lid's rim under the lashes) is skipped: it is drawn
only where its own surface is not in front of it on one side of it at least, by the
scene's depth.
"""

from __future__ import annotations

import moderngl
import numpy as np

# A surface stands in front of an edge where it is nearer by this share of the edge's
# distance (tuned on two bundled avatars, ava and kai: 0.0003-0.0006 alike).
IN_FRONT = 0.0005

LINE_VERTEX = """
#version 330
in vec4 in_clip;   // this end, clip space
in vec4 in_other;  // the other end
uniform vec2 u_size;  // the frame's pixels
// The line in window pixels: a point on it, its slope along the major axis, and the
// axis (0: flatter than 45 degrees, so offsets run along y; 1: steeper, along x).
flat out vec4 v_line;
vec2 window(vec4 p) { return (p.xy / p.w * 0.5 + 0.5) * u_size; }
void main() {
    vec2 a = window(in_clip), b = window(in_other);
    vec2 d = b - a;
    bool flat_line = abs(d.x) >= abs(d.y);
    v_line = flat_line ? vec4(a, d.y / d.x, 0.0) : vec4(a.yx, d.x / d.y, 1.0);
    gl_Position = in_clip;
}
"""

LINE_FRAGMENT = f"""
#version 330
uniform sampler2D u_source;  // the frame before this pass
uniform sampler2D u_depth;   // the scene's depth (window, 0-1)
flat in vec4 v_line;
out vec4 f_color;

// Whether the surface at pixel q is no nearer than the line: 1 - depth is proportional
// to 1 / distance under a perspective projection.
bool not_in_front(ivec2 q) {{
    float scene = texelFetch(u_depth, q, 0).r;
    return (1.0 - gl_FragCoord.z) >= {1.0 - IN_FRONT} * (1.0 - scene);
}}

// Integral of clamp(u, 0, 1) from 0 to u.
float ramp_integral(float u) {{ return u <= 0.0 ? 0.0 : (u <= 1.0 ? 0.5 * u * u : u - 0.5); }}

void main() {{
    vec2 p = v_line.w == 0.0 ? gl_FragCoord.xy : gl_FragCoord.yx;  // (major, minor)
    float slope = v_line.z;
    // Where the line crosses this pixel's centre column (row), from its centre.
    float offset = v_line.y + (p.x - v_line.x) * slope - p.y;
    // The share of the pixel beyond the line: across the pixel the line's offset runs
    // offset -/+ slope / 2, and the part beyond it at t is clamp(0.5 - |offset| -
    // slope t, 0, 1), integrated in closed form (exact for a straight edge).
    float a = 0.5 - abs(offset);
    float s = abs(slope);
    float beyond = s < 1e-4 ? clamp(a, 0.0, 1.0)
        : (ramp_integral(a + 0.5 * s) - ramp_integral(a - 0.5 * s)) / s;
    if (beyond <= 0.0) discard;
    // The colour beyond: the nearest pixel whose centre lies across the line.
    float step = (offset >= 0.0 ? 1.0 : -1.0) * (abs(offset) < 1.0 ? 1.0 : 2.0);
    ivec2 here = ivec2(gl_FragCoord.xy);
    ivec2 there = here + (v_line.w == 0.0 ? ivec2(0, int(step)) : ivec2(int(step), 0));
    there = clamp(there, ivec2(0), textureSize(u_source, 0) - 1);
    // The edge shows if its surface does on one side at least: an edge under a nearer
    // surface (a lid's rim under the lashes) leaves both sides to that surface.
    if (!not_in_front(here) && !not_in_front(there)) discard;
    f_color = mix(texelFetch(u_source, here, 0), texelFetch(u_source, there, 0), beyond);
}}
"""


class EdgeLines:
    """``apply(source, depth, target, lines)``: each pixel an edge line crosses blended
    with its neighbour across the line, reading ``source`` (the frame before) and the
    scene's ``depth``, written to ``target`` (which holds the frame). Render thread
    only."""

    def __init__(self, ctx: moderngl.Context) -> None:
        self.ctx = ctx
        self.program = ctx.program(vertex_shader=LINE_VERTEX, fragment_shader=LINE_FRAGMENT)
        self.program["u_source"].value = 0
        self.program["u_depth"].value = 1
        self._buffer = ctx.buffer(reserve=64 * 1024)
        self._vao = ctx.vertex_array(self.program, [(self._buffer, "4f 4f", "in_clip", "in_other")])

    def apply(
        self,
        source: moderngl.Texture,
        depth: moderngl.Texture,
        target: moderngl.Framebuffer,
        lines: np.ndarray,
    ) -> None:
        """``lines``: (n, 2, 4) clip-space ends (``EdgeCapture.lines``)."""
        if not len(lines):
            return
        ends = np.empty((len(lines), 2, 2, 4), np.float32)  # per line, per end: own, other
        ends[:, 0, 0], ends[:, 0, 1] = lines[:, 0], lines[:, 1]
        ends[:, 1, 0], ends[:, 1, 1] = lines[:, 1], lines[:, 0]
        data = ends.tobytes()
        if len(data) > self._buffer.size:
            self._buffer.orphan(2 * len(data))
        self._buffer.write(data)
        w, h = source.size
        self.program["u_size"].value = (float(w), float(h))
        source.use(0)
        depth.use(1)
        target.use()
        self.ctx.disable(moderngl.BLEND | moderngl.CULL_FACE | moderngl.DEPTH_TEST)
        self._vao.render(moderngl.LINES, vertices=2 * len(lines))

    def release(self) -> None:
        for obj in (self._vao, self._buffer, self.program):
            obj.release()
