"""``avatarkit demo [scene] [--out DIR] [scene flags...]``: run one of the bundled scenes.

A scene is a module ``scenes.<name>`` with ``main(argv) -> int``; the demo passes it
``--out DIR``. Scenes choose their own backend: headless ones (``render_test``, ``golden``)
always render off-screen, interactive ones (``kiosk``, ``multi``, ``game``) open a window
only when there is a display, else run headless for a few seconds and write MP4 + PNG.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_SCENE = "kiosk"  # the README's main command: a guide greets you


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="run a bundled scene (default: the kiosk)")
    parser.add_argument("scene", nargs="?", default=DEFAULT_SCENE, help=f"scene name (default: {DEFAULT_SCENE})")
    parser.add_argument("--out", type=Path, default=Path("out"), help="output folder (default: ./out)")
    parser.add_argument("scene_args", nargs=argparse.REMAINDER, help="passed to the scene, e.g. --windowed --seconds 5")
    parser.set_defaults(func=run)


def available_scenes() -> list[str]:
    import scenes

    folder = Path(scenes.__file__).parent
    return sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_"))


def run(args: argparse.Namespace) -> int:
    import importlib

    from avatarkit.errors import AvatarKitError, ErrorCode
    from engine.errors import EngineError

    names = available_scenes()
    if args.scene not in names:
        raise AvatarKitError(ErrorCode.INVALID_REQUEST, f"unknown scene {args.scene!r}; available: {', '.join(names)}")
    module = importlib.import_module(f"scenes.{args.scene}")
    try:
        return int(module.main(["--out", str(args.out), *args.scene_args]) or 0)
    except EngineError as exc:  # engine codes are the same camelCase strings as ErrorCode's
        raise AvatarKitError(exc.code, exc.message) from exc
