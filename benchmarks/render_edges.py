"""Edge quality per render quality: how far each frame's edge pixels are from a 4x4
supersampled render of the same frame (the picture half of issue 15, item 1).

Each avatar of ``--avatars`` (default the bundled ``ava``) in its head shot,
mid-sentence (lip-sync weights of bundled speech), at the given size; the truth is the
same frame rendered at 4x the width and height with no anti-aliasing and averaged down.
Edge pixels: where the aliased (low) frame is more than 24 levels from the truth.
Printed: the mean absolute error there, per quality (lower is cleaner; the bar is
quality auto no worse than 4x MSAA).

    .venv/bin/python benchmarks/render.py --edges [--sizes 640x360] [--avatars ava,kai]
"""

from __future__ import annotations

import numpy as np
from render_live import speech_weights

FRAME = 25  # a frame of the bundled speech with the mouth open


def render(avatar, weights: np.ndarray, size: tuple[int, int], quality: str) -> np.ndarray:
    from engine import App, ModelRenderer

    with App.headless(size, quality=quality) as app:
        model = app.scene.create_entity("a").add_component(ModelRenderer(avatar.asset))
        model.set_weights(avatar.target_weights(weights, model.target_names))
        head = np.array(avatar.framing.head_center, np.float32)
        app.scene.camera.look_at(head + [0.0, 0.0, avatar.framing.camera_distance], head)
        app.step()
        return app.read_pixels().astype(float)


def main(sizes: list[tuple[int, int]], qualities: list[str], avatars: list[str]) -> None:
    """``avatars``: bundled ids or avatar files (a third-party head, say), each in turn."""
    from avatarkit.cli.common import open_avatar

    weights = speech_weights(FRAME + 1)[FRAME]
    print("\nedge error against a 4x4 supersampled frame (mean |difference| on edge pixels)")
    for name in avatars:
        avatar = open_avatar(name)
        for w, h in sizes:
            truth = render(avatar, weights, (4 * w, 4 * h), "low")
            truth = truth.reshape(h, 4, w, 4, 3).mean((1, 3))
            frames = {q: render(avatar, weights, (w, h), q) for q in qualities}
            low = frames["low"] if "low" in frames else render(avatar, weights, (w, h), "low")
            edge = np.abs(low - truth).max(axis=2) > 24
            errors = ", ".join(
                f"{q} {np.abs(f - truth)[edge].mean():.1f}" for q, f in frames.items()
            )
            print(f"{name} {w}x{h}: {int(edge.sum())} edge pixels; {errors}", flush=True)
