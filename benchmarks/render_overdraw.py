"""Overdraw of the live kiosk frame: lit fragments shaded per frame against the pixels
the avatars cover, with 1 and 4 bundled avatars at 1280x720 (the ``--live`` scenes).

Each fragment the lit shader runs for adds one to the red channel (additive blending, the
scene's own depth test and draw order, no background), so the frame's red sum is the
number of fragments shaded and its non-zero pixels the covered ones. A fragment that
fails the depth test early costs a software rasteriser almost nothing; every shaded one
that a later draw covers is wasted (``docs/engine.md``: early depth order).

    .venv/bin/python benchmarks/render.py --overdraw
"""

from __future__ import annotations

import moderngl
import numpy as np

from engine.render import renderer as renderer_module
from engine.render import shaders

_LAST = "    f_color = vec4(linear_to_srgb(tonemap(color * u_exposure)), alpha);\n}"
# One count per shaded fragment; min(.., 0) keeps every uniform of the shader alive.
_COUNT = "    f_color = vec4(1.0 / 255.0, 0.0, 0.0, 1.0) + min(f_color, vec4(0.0)) * 1e-9;\n}"


def fragments(count: int) -> tuple[int, int]:
    """(fragments shaded, pixels covered) of one live frame with ``count`` avatars."""
    from render_live import Live

    live = Live(count, "low")
    live.app.scene.lighting.background = None
    live.app.scene.lighting.clear_color = (0.0, 0.0, 0.0, 1.0)
    for k in range(3):
        live.frame(k)
    red = live.app.read_pixels()[..., 0].astype(np.int64)
    live.app.close()
    return int(red.sum()), int((red > 0).sum())


def main(counts: list[int]) -> None:
    assert _LAST in shaders.LIT_FRAGMENT, "the lit shader's last line changed"
    lit, use_material = shaders.LIT_FRAGMENT, renderer_module.Renderer._use_material

    def counting_material(self, gpu, index, program):
        material = use_material(self, gpu, index, program)
        self.ctx.enable(moderngl.BLEND)
        self.ctx.blend_func = (moderngl.ONE, moderngl.ONE)  # type: ignore[assignment]
        return material

    shaders.LIT_FRAGMENT = lit.replace(_LAST, _LAST[:-1] + _COUNT)
    renderer_module.Renderer._use_material = counting_material  # type: ignore[method-assign]
    try:
        print("\noverdraw of the live frame, 1280x720, bundled avatars speaking")
        print(f"{'avatars':>7} | {'fragments shaded':>16} {'pixels covered':>14} {'ratio':>5}")
        for count in counts:
            shaded, covered = fragments(count)
            print(f"{count:>7} | {shaded:>16,} {covered:>14,} {shaded / covered:>5.2f}")
    finally:
        shaders.LIT_FRAGMENT = lit
        renderer_module.Renderer._use_material = use_material  # type: ignore[method-assign]
