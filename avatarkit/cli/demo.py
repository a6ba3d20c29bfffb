"""``avatarkit demo [scene] [--out DIR] [scene flags...]``: run one of the bundled scenes.

A scene is a module ``scenes.<name>`` with ``main(argv) -> int``; the demo passes it
``--out DIR``. Scenes choose their own backend: headless ones (``render_test``, ``golden``)
always render off-screen, interactive ones (``kiosk``, ``multi``, ``game``) open a window
only when there is a display, else run headless for a few seconds and write MP4 + PNG.
"""

from __future__ import annotations

import argparse
import ast
import sys
import textwrap
from pathlib import Path

DEFAULT_SCENE = "kiosk"  # the README's main command: a guide greets you
WINDOW_FLAGS = ("--windowed", "--fullscreen")

EXAMPLES = """examples:
  avatarkit demo                          # the kiosk: full screen, or headless without a display
  avatarkit demo multi --seconds 5        # four avatars
  avatarkit demo game --windowed          # the quiz in a window (keys 1-3 or the mouse)
  avatarkit demo golden                   # golden-image render test, exit 1 on a mismatch
  avatarkit demo kiosk --headless --out out/kiosk
  avatarkit demo game -- --help           # the scene's own flags"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run a bundled scene (default: the kiosk)",
        description="Run a bundled scene. Interactive scenes open a window when there is a "
        "display, else run headless for a few seconds and write an MP4 and a PNG.\n\nscenes:\n"
        + _scene_table(),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "scene",
        nargs="?",
        default=DEFAULT_SCENE,
        help=f"scene name, listed above (default: {DEFAULT_SCENE})",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("out"), help="output folder for MP4/PNG (default: ./out)"
    )
    parser.add_argument(
        "scene_args",
        nargs=argparse.REMAINDER,
        help="passed to the scene: --windowed | --fullscreen | --headless, --seconds S, "
        "--size WxH, --avatar ID|PATH (kiosk, game: a bundled id or your .glb/.vrm)",
    )
    parser.set_defaults(func=run)


def with_default_scene(argv: list[str]) -> list[str]:
    """``avatarkit demo --seconds 5`` means the kiosk with ``--seconds 5``: argparse alone
    cannot tell a scene flag from a missing scene name, so the name is put in first."""
    try:
        i = argv.index("demo") + 1
    except ValueError:
        return argv
    if any(not a.startswith("-") for a in argv[: i - 1] if a not in ("-v", "--verbose")):
        return argv  # "demo" is an argument of another command, not the command
    while i < len(argv) and (argv[i] == "--out" or argv[i].startswith("--out=")):
        i += 2 if argv[i] == "--out" else 1
    if i < len(argv) and argv[i].startswith("-") and argv[i] not in ("-h", "--help", "--"):
        return [*argv[:i], DEFAULT_SCENE, *argv[i:]]
    return argv


def available_scenes() -> list[str]:
    return sorted(_scene_files())


def _scene_files() -> dict[str, Path]:
    # found by file, not imported: `avatarkit demo --help` stays instant
    import importlib.util

    spec = importlib.util.find_spec("scenes")
    folder = Path(spec.origin).parent if spec and spec.origin else Path()
    return {p.stem: p for p in folder.glob("*.py") if not p.stem.startswith("_")}


def _scene_table() -> str:
    rows = []
    for name, path in sorted(_scene_files().items()):
        try:
            doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        except (OSError, SyntaxError, ValueError):
            doc = ""
        summary = doc.split("\n\n")[0].replace("\n", " ").split(": ``python")[0].rstrip(".:,")
        rows.append(f"  {name:<12} {textwrap.shorten(summary, 72, placeholder=' ...')}")
    return "\n".join(rows)


def run(args: argparse.Namespace) -> int:
    import importlib

    from avatarkit.cli.common import unknown
    from avatarkit.errors import AvatarKitError
    from engine.backends.window import display_available
    from engine.errors import EngineError

    names = available_scenes()
    if args.scene not in names:
        raise unknown("scene", args.scene, names, f"available: {', '.join(names)}")
    scene_args = list(args.scene_args)
    if scene_args[:1] == ["--"]:
        scene_args = scene_args[1:]
    if any(flag in scene_args for flag in WINDOW_FLAGS) and not display_available():
        # A window nobody can see would run forever: say so once and record instead.
        scene_args = ["--headless" if a in WINDOW_FLAGS else a for a in scene_args]
        print(
            f"avatarkit demo: no display (DISPLAY is not set): running {args.scene} headless "
            "instead (xvfb-run gives a virtual display)",
            file=sys.stderr,
        )
    module = importlib.import_module(f"scenes.{args.scene}")
    try:
        return int(module.main(["--out", str(args.out), *scene_args]) or 0)
    except EngineError as exc:  # engine codes are the same camelCase strings as ErrorCode's
        raise AvatarKitError(exc.code, exc.message) from exc
