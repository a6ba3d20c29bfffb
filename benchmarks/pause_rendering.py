"""What a paused view costs the render thread: N avatars drawn, N paused, none at all.

Three headless Apps at 1280x720 (same camera, lighting and size) step in turn, one frame
each per round: one with N bundled avatars rendering (idle animation), one with the same
N views after ``controller.pause_rendering()``, one with no views. A paused view still
ticks its controller (audio, motion buffering and playback go on) but composes no face
and draws nothing. Frame times are the whole ``App.step`` (clock, update, render, GPU
wait); the table shows medians and the paused minus empty difference per view.

    .venv/bin/python benchmarks/pause_rendering.py [--views 4] [--frames 60] [--samples 0]
"""

from __future__ import annotations

import argparse
import statistics
import time

from avatarkit import AvatarManager, AvatarSDK, AvatarView, Configuration, DrivingMode
from avatarkit.paths import AVATARS_DIR
from engine import App

SIZE = (1280, 720)


def make_app(samples: int, avatar, views: int, paused: bool) -> App:
    app = App.headless(SIZE, samples=samples)
    for i in range(views):
        entity = app.scene.create_entity(f"ava{i}")
        entity.transform.translation[0] = (i - (views - 1) / 2) * 0.35
        view = entity.add_component(AvatarView(avatar, seed=i))
        if paused:
            view.controller.pause_rendering()
    app.scene.camera.look_at((0.0, 1.55, 0.5 + 0.25 * views), (0.0, 1.55, 0.0))
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--samples", type=int, default=0, help="MSAA samples (0: off)")
    args = parser.parse_args()
    AvatarSDK.initialize(
        "bench", Configuration(driving_mode=DrivingMode.BACKEND, audio_device="virtual")
    )
    avatar = AvatarManager(str(AVATARS_DIR)).load_blocking("ava")
    apps = {
        "rendering": make_app(args.samples, avatar, args.views, paused=False),
        "paused": make_app(args.samples, avatar, args.views, paused=True),
        "no views": make_app(args.samples, avatar, 0, paused=False),
    }
    times: dict[str, list[float]] = {name: [] for name in apps}
    for k in range(args.frames + 3):
        for name, app in apps.items():
            t0 = time.perf_counter()
            app.step()
            if k >= 3:  # the first frames upload and compile
                times[name].append((time.perf_counter() - t0) * 1000)
    renderer = apps["rendering"].ctx.info["GL_RENDERER"]
    print(f"{SIZE[0]}x{SIZE[1]}, MSAA {args.samples}x, {args.views} x ava, {renderer}")
    print(f"median App.step ms over {args.frames} frames, interleaved:")
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, value in medians.items():
        print(f"  {name:10} {value:8.2f} ms")
    per_view = (medians["paused"] - medians["no views"]) / max(args.views, 1)
    drawn = (medians["rendering"] - medians["no views"]) / max(args.views, 1)
    print(f"  paused - no views: {per_view * 1000:+.0f} us per view", end="")
    print(f" (drawn: {drawn:.2f} ms per view)")
    # What remains of a paused view, alone: its update (the controller's tick).
    paused_views = list(apps["paused"].scene.components(AvatarView))
    t0 = time.perf_counter()
    for _ in range(1000):
        for view in paused_views:
            view.update(1 / 30)
    tick_us = (time.perf_counter() - t0) * 1e6 / 1000 / max(len(paused_views), 1)
    print(f"  a paused view's update (controller tick only): {tick_us:.0f} us per frame")
    for app in apps.values():
        app.close()
    AvatarSDK.cleanup()


if __name__ == "__main__":
    main()
