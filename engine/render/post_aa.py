"""The post anti-aliasing pass: FXAA (Timothy Lottes' fast approximate AA, the "FXAA 3.11
quality" form) over the finished frame.

It finds pixels with a luma step to a neighbour, decides whether the edge is horizontal
or vertical, walks along it both ways to its ends and shifts the pixel's sample across
the edge by the coverage the edge's position implies (MLAA's idea): long, nearly level
edges get smooth ramps instead of stair steps. Luma is taken from the sRGB-encoded
colour, as FXAA expects (perceptual steps); alpha is filtered with the colour, so a
transparent capture gets the same soft edge.

A software rasteriser runs every instruction of a shader for every pixel (branches are
masks), so FXAA over the whole frame would pay its edge search everywhere: as much as
4x MSAA. So it runs only on the blocks of pixels that hold an edge; the other pixels keep
a copy of the frame. The mask is made per block of 4x4 pixels: one fragment per block
tests its 16 pixels (36 fetches, where a mask pass per pixel made 80 and sixteen times
the fragments), the flags come back to the CPU (a few kB), and the FXAA pass is drawn as
one block-sized point on each flagged block. FXAA leaves a block's pixels that have no
luma step exactly as they were, so the frame is the same as with a mask per pixel, in
about 0.6x its time at 720p (BENCHMARKS.md). A portrait has about 5% edge pixels, in
about 4% of its blocks.
"""

from __future__ import annotations

import moderngl
import numpy as np

EDGE_THRESHOLD = 1 / 8  # a luma step below this share of the local maximum is no edge
EDGE_THRESHOLD_MIN = 1 / 32  # nor one below this (dark areas, the background's dither)
SUBPIXEL = 1.0  # how much single-pixel features (thin lines, specks) are softened
# Step sizes of the search for the edge's two ends (pixels per step; the first two are the
# one-pixel probes every edge pixel makes): ends found within 2 px exactly, then at 6 and
# 18 px. Chosen on the edge benchmark (benchmarks/render_edges.py, 640x360) over FXAA's
# presets: against 4x4 supersampling, error 15.8 on two bundled avatars' frames and 17.1
# on two others' (held out), where the twelve-step search (1, 1, 1, 1, 1, 1.5, 2, 2, 2, 2,
# 4, 8: 25 px) with SUBPIXEL 0.75 had 17.4 / 18.6 and cost 1-3 ms more a 720p frame on
# llvmpipe (every lane of a block loops until the slowest finds its end).
SEARCH_STEPS = (1.0, 1.0, 4.0, 12.0)

# Both passes: the centre's luma and its four neighbours' (plain fetches, clamped).
_NEIGHBOURS = """
#version 330
uniform sampler2D u_source;  // the frame, sRGB-encoded, linear filtering
out vec4 f_color;
float luma(vec4 c) { return dot(c.rgb, vec3(0.299, 0.587, 0.114)); }
float fetch_luma(ivec2 p, ivec2 last) {
    return luma(texelFetch(u_source, clamp(p, ivec2(0), last), 0));
}
void cross_lumas(ivec2 p, ivec2 last, out float m, out float d, out float u, out float l,
                 out float r) {
    m = luma(texelFetch(u_source, p, 0));
    d = fetch_luma(p + ivec2(0, -1), last);
    u = fetch_luma(p + ivec2(0, 1), last);
    l = fetch_luma(p + ivec2(-1, 0), last);
    r = fetch_luma(p + ivec2(1, 0), last);
}
"""


BLOCK = 4  # pixels a side of the mask's unit (4x2 and 8x8 measured slower, 8x4 no faster)


def _edge_test(edge_threshold: float, edge_threshold_min: float) -> str:
    """GLSL ``is_edge``: whether a pixel has a luma step to a neighbour (FXAA's early
    exit), and the step (``range``, which FXAA goes on to use). The mask and the full
    pass share it, so the two agree on every pixel."""
    return f"""
bool is_edge(float m, float d, float u, float l, float r, out float range) {{
    float hi = max(m, max(max(d, u), max(l, r)));
    range = hi - min(m, min(min(d, u), min(l, r)));
    return range >= max({edge_threshold_min}, hi * {edge_threshold});
}}
"""


def block_mask_source(
    edge_threshold: float = EDGE_THRESHOLD, edge_threshold_min: float = EDGE_THRESHOLD_MIN
) -> str:
    """First pass, one fragment per block of BLOCK x BLOCK pixels: 1 where any pixel of the
    block is an edge pixel, else 0 (into a texture with a texel per block)."""
    n = BLOCK + 2  # the block and a pixel around it
    return (
        _NEIGHBOURS
        + _edge_test(edge_threshold, edge_threshold_min)
        + f"""
void main() {{
    ivec2 first = ivec2(gl_FragCoord.xy) * {BLOCK} - 1;
    ivec2 last = textureSize(u_source, 0) - 1;
    float lumas[{n * n}];
    for (int j = 0; j < {n}; j++)
        for (int i = 0; i < {n}; i++)
            lumas[j * {n} + i] = fetch_luma(first + ivec2(i, j), last);
    bool edge = false;
    float range;
    for (int j = 1; j <= {BLOCK}; j++)
        for (int i = 1; i <= {BLOCK}; i++) {{
            int c = j * {n} + i;
            edge = edge || is_edge(lumas[c], lumas[c - {n}], lumas[c + {n}], lumas[c - 1],
                                   lumas[c + 1], range);
        }}
    f_color = vec4(edge ? 1.0 : 0.0);
}}
"""
    )


def fxaa_source(
    subpixel: float = SUBPIXEL,
    edge_threshold: float = EDGE_THRESHOLD,
    edge_threshold_min: float = EDGE_THRESHOLD_MIN,
) -> str:
    """Second pass, the flagged blocks only: the FXAA blend on their edge pixels; the
    others keep their colour exactly."""
    steps = ", ".join(map(str, SEARCH_STEPS))
    return (
        _NEIGHBOURS
        + _edge_test(edge_threshold, edge_threshold_min)
        + f"""
uniform vec2 u_texel;  // 1 / size
const float STEPS[{len(SEARCH_STEPS)}] = float[]({steps});
float luma_at(vec2 uv) {{ return luma(texture(u_source, uv)); }}

void main() {{
    ivec2 p = ivec2(gl_FragCoord.xy);
    ivec2 last = textureSize(u_source, 0) - 1;
    float m, d, u, l, r;
    cross_lumas(p, last, m, d, u, l, r);
    float range;  // of the five lumas
    if (!is_edge(m, d, u, l, r, range)) {{  // a block's other pixels
        f_color = texelFetch(u_source, p, 0);
        return;
    }}
    vec2 uv = gl_FragCoord.xy * u_texel;
    float dl = fetch_luma(p + ivec2(-1, -1), last);
    float ur = fetch_luma(p + ivec2(1, 1), last);
    float ul = fetch_luma(p + ivec2(-1, 1), last);
    float dr = fetch_luma(p + ivec2(1, -1), last);
    float du = d + u;
    float lr = l + r;
    float left_corners = dl + ul;
    float down_corners = dl + dr;
    float right_corners = dr + ur;
    float up_corners = ur + ul;
    // Is the edge horizontal (luma changes along y) or vertical?
    float horizontal = abs(-2.0 * l + left_corners) + abs(-2.0 * m + du) * 2.0
                     + abs(-2.0 * r + right_corners);
    float vertical = abs(-2.0 * u + up_corners) + abs(-2.0 * m + lr) * 2.0
                   + abs(-2.0 * d + down_corners);
    bool is_horizontal = horizontal >= vertical;
    // Which side of this pixel the edge lies on: the neighbour with the steeper step.
    float luma1 = is_horizontal ? d : l;
    float luma2 = is_horizontal ? u : r;
    float gradient1 = luma1 - m;
    float gradient2 = luma2 - m;
    bool steepest1 = abs(gradient1) >= abs(gradient2);
    float gradient = 0.25 * max(abs(gradient1), abs(gradient2));
    float step_length = is_horizontal ? u_texel.y : u_texel.x;
    float local_average;
    if (steepest1) {{
        step_length = -step_length;
        local_average = 0.5 * (luma1 + m);
    }} else {{
        local_average = 0.5 * (luma2 + m);
    }}
    // Walk along the edge (half a pixel towards it) both ways until its ends.
    vec2 on_edge = uv;
    if (is_horizontal) on_edge.y += step_length * 0.5; else on_edge.x += step_length * 0.5;
    vec2 offset = is_horizontal ? vec2(u_texel.x, 0.0) : vec2(0.0, u_texel.y);
    vec2 uv1 = on_edge - offset;
    vec2 uv2 = on_edge + offset;
    float end1 = luma_at(uv1) - local_average;
    float end2 = luma_at(uv2) - local_average;
    bool reached1 = abs(end1) >= gradient;
    bool reached2 = abs(end2) >= gradient;
    if (!reached1) uv1 -= offset;
    if (!reached2) uv2 += offset;
    for (int i = 2; i < {len(SEARCH_STEPS)} && !(reached1 && reached2); ++i) {{
        if (!reached1) end1 = luma_at(uv1) - local_average;
        if (!reached2) end2 = luma_at(uv2) - local_average;
        reached1 = abs(end1) >= gradient;
        reached2 = abs(end2) >= gradient;
        if (!reached1) uv1 -= offset * STEPS[i];
        if (!reached2) uv2 += offset * STEPS[i];
    }}
    float distance1 = is_horizontal ? uv.x - uv1.x : uv.y - uv1.y;
    float distance2 = is_horizontal ? uv2.x - uv.x : uv2.y - uv.y;
    bool towards1 = distance1 < distance2;
    // Nearer the edge's end, less of the other side shows through (MLAA-style coverage).
    float pixel_offset = 0.5 - min(distance1, distance2) / (distance1 + distance2);
    bool centre_darker = m < local_average;
    bool good_end = ((towards1 ? end1 : end2) < 0.0) != centre_darker;
    float edge_offset = good_end ? pixel_offset : 0.0;
    // Sub-pixel features: blend by how far the centre stands out of its 3x3 average.
    float average = (2.0 * (du + lr) + left_corners + right_corners) / 12.0;
    float sub = clamp(abs(average - m) / range, 0.0, 1.0);
    sub = (-2.0 * sub + 3.0) * sub * sub;
    float final_offset = max(edge_offset, sub * sub * {subpixel});
    vec2 final_uv = uv;
    if (is_horizontal) final_uv.y += final_offset * step_length;
    else final_uv.x += final_offset * step_length;
    f_color = texture(u_source, final_uv);
}}
"""
    )


BLOCK_MASK_FRAGMENT = block_mask_source()
FXAA_FRAGMENT = fxaa_source()

FULL_SCREEN = """
#version 330
void main() {  // one full-screen triangle, no buffers
    vec2 p = vec2((gl_VertexID << 1) & 2, gl_VertexID & 2);
    gl_Position = vec4(p * 2.0 - 1.0, 0.0, 1.0);
}
"""

# A point of BLOCK pixels a side on a block's centre covers exactly the block's pixels
# (one vertex a block: llvmpipe sets up two triangles in twice the time).
BLOCK_POINTS = f"""
#version 330
in vec2 in_block;  // a flagged block (column, row)
uniform vec2 u_size;  // the frame's pixels
void main() {{
    gl_Position = vec4((in_block + 0.5) * {BLOCK}.0 / u_size * 2.0 - 1.0, 0.0, 1.0);
    gl_PointSize = {BLOCK}.0;
}}
"""


class PostAntiAliasing:
    """``apply(source, target)``: FXAA from a colour texture into ``target``, a
    framebuffer of its size that already holds a copy of ``source``. Render thread only;
    ``release()`` frees the GL objects."""

    def __init__(self, ctx: moderngl.Context) -> None:
        self.ctx = ctx
        self.mask = ctx.program(vertex_shader=FULL_SCREEN, fragment_shader=BLOCK_MASK_FRAGMENT)
        self.program = ctx.program(vertex_shader=BLOCK_POINTS, fragment_shader=FXAA_FRAGMENT)
        self.mask["u_source"].value = self.program["u_source"].value = 0
        self._mask_vao = ctx.vertex_array(self.mask, [])
        self._size = (0, 0)  # the frame size the block buffers below are for
        self._flags: moderngl.Framebuffer | None = None  # one texel per block
        self._blocks: moderngl.Buffer | None = None  # the flagged blocks' (column, row)
        self._vao: moderngl.VertexArray | None = None  # FXAA, a point per flagged block

    def apply(
        self,
        source: moderngl.Texture,
        target: moderngl.Framebuffer,
        scissor: tuple[int, int, int, int] | None = None,
    ) -> None:
        """``scissor``: (x, y, w, h) pixels to filter (None: all); the rest keeps the copy."""
        ctx = self.ctx
        w, h = source.size
        x, y, sw, sh = scissor if scissor is not None else (0, 0, w, h)
        if sw <= 0 or sh <= 0:
            return
        source.filter = (moderngl.LINEAR, moderngl.LINEAR)
        source.repeat_x = source.repeat_y = False  # clamp: edges of the frame do not wrap
        source.use(0)
        ctx.disable(moderngl.BLEND | moderngl.CULL_FACE | moderngl.DEPTH_TEST)
        blocks = self._edge_blocks((w, h), (x, y, sw, sh))
        if not len(blocks):
            return
        assert self._blocks is not None and self._vao is not None
        self._blocks.write(blocks)
        self.program["u_texel"].value = (1.0 / w, 1.0 / h)
        self.program["u_size"].value = (float(w), float(h))
        # A block on the region's border may hang over it: the scissor keeps the rest.
        target.scissor = (x, y, sw, sh)  # moderngl applies a framebuffer's scissor on use()
        target.use()
        ctx.enable(moderngl.PROGRAM_POINT_SIZE)
        self._vao.render(moderngl.POINTS, vertices=len(blocks))
        ctx.disable(moderngl.PROGRAM_POINT_SIZE)
        target.scissor = None  # type: ignore[assignment]  # its stub omits None (no scissor)
        target.use()

    def _edge_blocks(self, size: tuple[int, int], scissor: tuple[int, int, int, int]) -> np.ndarray:
        """(n, 2) float32 (column, row) of the blocks under ``scissor`` holding an edge
        pixel of the bound source: the mask pass, then its flags read back."""
        if size != self._size:
            self._allocate(size)
        assert self._flags is not None
        x, y, sw, sh = scissor
        bx, by = x // BLOCK, y // BLOCK
        bw, bh = -(-(x + sw) // BLOCK) - bx, -(-(y + sh) // BLOCK) - by
        self._flags.scissor = (bx, by, bw, bh)
        self._flags.use()
        self._mask_vao.render(moderngl.TRIANGLES, vertices=3)
        flags = self._flags.read(viewport=(bx, by, bw, bh), components=1, alignment=1)
        rows, columns = np.nonzero(np.frombuffer(flags, np.uint8).reshape(bh, bw))
        return np.stack([columns + bx, rows + by], axis=1).astype(np.float32)

    def _allocate(self, size: tuple[int, int]) -> None:
        self._release_blocks()
        columns, rows = -(-size[0] // BLOCK), -(-size[1] // BLOCK)
        self._flags = self.ctx.framebuffer([self.ctx.texture((columns, rows), 4)])
        self._blocks = self.ctx.buffer(reserve=columns * rows * 8)
        self._vao = self.ctx.vertex_array(self.program, [(self._blocks, "2f", "in_block")])
        self._size = size

    def _release_blocks(self) -> None:
        if self._flags is not None:
            for texture in self._flags.color_attachments:
                texture.release()
            self._flags.release()
        for obj in (self._vao, self._blocks):
            if obj is not None:
                obj.release()
        self._flags = self._blocks = self._vao = None
        self._size = (0, 0)

    def release(self) -> None:
        self._release_blocks()
        for obj in (self._mask_vao, self.program, self.mask):
            obj.release()
