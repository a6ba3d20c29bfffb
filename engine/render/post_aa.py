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
4x MSAA. It does skip shading blocks of pixels that fail the depth test, so a cheap first
pass (five plain fetches) marks the edge pixels in a depth buffer and the full pass runs
only there; the other pixels keep a copy of the frame. A portrait has about 5% edge
pixels.
"""

from __future__ import annotations

import moderngl

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


def edge_mask_source(
    edge_threshold: float = EDGE_THRESHOLD, edge_threshold_min: float = EDGE_THRESHOLD_MIN
) -> str:
    """First pass: discard every pixel without a luma step to a neighbour. The rest pass
    the depth test and take the triangle's depth (colour writes are off)."""
    return (
        _NEIGHBOURS
        + f"""
void main() {{
    ivec2 p = ivec2(gl_FragCoord.xy);
    ivec2 last = textureSize(u_source, 0) - 1;
    float m, d, u, l, r;
    cross_lumas(p, last, m, d, u, l, r);
    float hi = max(m, max(max(d, u), max(l, r)));
    float lo = min(m, min(min(d, u), min(l, r)));
    if (hi - lo < max({edge_threshold_min}, hi * {edge_threshold})) discard;
    f_color = vec4(0.0);
}}
"""
    )


def fxaa_source(subpixel: float = SUBPIXEL) -> str:
    """Second pass, edge pixels only: the FXAA blend."""
    steps = ", ".join(map(str, SEARCH_STEPS))
    return (
        _NEIGHBOURS
        + f"""
uniform vec2 u_texel;  // 1 / size
const float STEPS[{len(SEARCH_STEPS)}] = float[]({steps});
float luma_at(vec2 uv) {{ return luma(texture(u_source, uv)); }}

void main() {{
    ivec2 p = ivec2(gl_FragCoord.xy);
    ivec2 last = textureSize(u_source, 0) - 1;
    float m, d, u, l, r;
    cross_lumas(p, last, m, d, u, l, r);
    float range = max(m, max(max(d, u), max(l, r))) - min(m, min(min(d, u), min(l, r)));
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


EDGE_MASK_FRAGMENT = edge_mask_source()
FXAA_FRAGMENT = fxaa_source()

FULL_SCREEN_AT_DEPTH = """
#version 330
uniform float u_depth;  // NDC z of the whole triangle
void main() {  // one full-screen triangle, no buffers
    vec2 p = vec2((gl_VertexID << 1) & 2, gl_VertexID & 2);
    gl_Position = vec4(p * 2.0 - 1.0, u_depth, 1.0);
}
"""


class PostAntiAliasing:
    """``apply(source, target)``: FXAA from a colour texture into ``target``, a
    framebuffer that already holds a copy of ``source`` and has a depth buffer of its
    size (the edge mask). Render thread only; ``release()`` frees the programs."""

    def __init__(self, ctx: moderngl.Context) -> None:
        self.ctx = ctx
        self.mask = ctx.program(
            vertex_shader=FULL_SCREEN_AT_DEPTH, fragment_shader=EDGE_MASK_FRAGMENT
        )
        self.program = ctx.program(
            vertex_shader=FULL_SCREEN_AT_DEPTH, fragment_shader=FXAA_FRAGMENT
        )
        self.mask["u_source"].value = self.program["u_source"].value = 0
        self.mask["u_depth"].value = -1.0  # window depth 0 on the edge pixels
        self.program["u_depth"].value = 0.0  # window depth 0.5: passes "greater" only there
        self._mask_vao = ctx.vertex_array(self.mask, [])
        self._vao = ctx.vertex_array(self.program, [])

    def apply(
        self,
        source: moderngl.Texture,
        target: moderngl.Framebuffer,
        scissor: tuple[int, int, int, int] | None = None,
    ) -> None:
        """``scissor``: (x, y, w, h) pixels to filter (None: all); the rest keeps the copy."""
        ctx = self.ctx
        source.filter = (moderngl.LINEAR, moderngl.LINEAR)
        source.repeat_x = source.repeat_y = False  # clamp: edges of the frame do not wrap
        source.use(0)
        w, h = source.size
        self.program["u_texel"].value = (1.0 / w, 1.0 / h)
        ctx.disable(moderngl.BLEND | moderngl.CULL_FACE)
        ctx.enable(moderngl.DEPTH_TEST)
        # moderngl applies a framebuffer's write masks when it is bound: set, then use().
        target.color_mask, target.depth_mask = (False, False, False, False), True
        target.use()
        # The whole depth buffer (colour writes are off): llvmpipe clears whole tiles in
        # place, where a clear limited to the scissor is drawn like a quad (1-2 ms at 720p
        # against 0.3).
        target.clear(depth=1.0)
        # moderngl applies a framebuffer's scissor on use(); its stub omits None (no scissor)
        target.scissor = scissor  # type: ignore[assignment]
        target.use()
        ctx.depth_func = "<"
        self._mask_vao.render(moderngl.TRIANGLES, vertices=3)
        target.color_mask, target.depth_mask = (True, True, True, True), False
        target.use()
        ctx.depth_func = ">"
        self._vao.render(moderngl.TRIANGLES, vertices=3)
        target.depth_mask = True
        target.scissor = None  # type: ignore[assignment]  # see above
        target.use()
        ctx.depth_func = "<"  # moderngl's default, which the scene's passes expect

    def release(self) -> None:
        for obj in (self._vao, self._mask_vao, self.program, self.mask):
            obj.release()
