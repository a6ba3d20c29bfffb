"""Kiosk soak test: hours of kiosk life on the virtual clock, memory sampled as it goes.

    python -m scenes._soak [--minutes 10] [--fps 15]

The guide speaks one topic after another without pause (far busier than a real kiosk),
with the Motion Server restarted every few minutes; resident memory is printed per
virtual minute. Bounded memory means the second half grows by (about) nothing.
"""

from __future__ import annotations

import argparse
import sys
import time

from avatarkit.controller import ConversationState
from scenes import kiosk
from scenes._runtime import SceneOptions, Stage
from scenes._widgets import rss_mb

RESTART_EVERY_MIN = 3


def soak(minutes: float, fps: int) -> list[float]:
    options = SceneOptions(headless=True, size=(320, 180), fps=fps)
    samples = []
    with Stage(options) as stage:
        scene = kiosk.Kiosk(stage)
        controller = scene.view.controller
        started = time.perf_counter()
        for minute in range(int(minutes)):
            for _ in range(60 * fps):
                stage.step()
                if controller.conversation_state == ConversationState.IDLE:
                    scene.next_topic()
            if minute and minute % RESTART_EVERY_MIN == 0:
                stage.restart_server()
                scene.hud.server = stage.server
            samples.append(rss_mb())
            print(
                f"minute {minute + 1:3d}: {samples[-1]:7.1f} MB  "
                f"({time.perf_counter() - started:5.0f} s wall)",
                flush=True,
            )
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scenes._soak", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--fps", type=int, default=15)
    args = parser.parse_args(argv)
    samples = soak(args.minutes, args.fps)
    half = len(samples) // 2
    growth = samples[-1] - samples[half] if half else 0.0
    print(
        f"rss first minute {samples[0]:.1f} MB, last {samples[-1]:.1f} MB, second-half growth "
        f"{growth:+.1f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
