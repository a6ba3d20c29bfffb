"""``avatarkit`` command line: one module per subcommand in this package.

Each module defines ``register(subparsers)``, which adds its parser and sets
``func=run`` (``run(args) -> int``). Modules import heavy dependencies inside
``run`` so ``avatarkit --help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from avatarkit import __version__
from avatarkit.errors import AvatarKitError

SUBCOMMANDS = ("serve", "keys", "avatars", "inspect", "motion", "render", "demo")
MOTION_COMMANDS = ("serve", "motion", "render")  # they make motion, so each takes --model

EXAMPLES = """examples (`avatarkit COMMAND --help` explains each command):
  avatarkit demo                     # the kiosk; `avatarkit demo --help` lists the scenes
  avatarkit serve                    # Motion Server + Console API + avatars on 127.0.0.1:8765
  avatarkit keys create --config apps.toml --app kiosk --new-app   # several apps: serve --config
  avatarkit avatars                  # bundled avatar ids
  avatarkit inspect head.glb         # what a glTF/GLB/VRM file offers as an avatar
  avatarkit render --audio speech.wav -o speech.mp4
  avatarkit motion speech.wav -o speech.npz

errors are one line, `avatarkit COMMAND: error [code]: message`, exit status 2."""


def video_size(text: str) -> tuple[int, int]:
    """argparse type for ``WIDTHxHEIGHT``: even (H.264 needs it) and at least 16 pixels."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if w < 16 or h < 16 or w % 2 or h % 2:
        raise argparse.ArgumentTypeError(f"{text}: width and height must be even and at least 16")
    return w, h


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avatarkit",
        description="AvatarKit for Python: real-time talking avatars.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"avatarkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"avatarkit.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"avatarkit.cli.{name}":
                raise
            continue  # subcommand not built yet
        module.register(sub)
    for name in MOTION_COMMANDS:
        if name in sub.choices:
            add_model_option(sub.choices[name])
    return parser


def add_model_option(parser: argparse.ArgumentParser) -> None:
    from avatarkit.motion.stream import DEFAULT_MODEL, MODELS

    parser.add_argument(
        "--model", choices=MODELS, default=DEFAULT_MODEL,
        help="motion model (default: %(default)s, the trained one; envelope: the loudness "
        "baseline, used only when named; missing weights are an error, never this)",
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    from avatarkit.cli.demo import with_default_scene

    argv = with_default_scene(list(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        status = int(args.func(args) or 0)
        sys.stdout.flush()  # inside the try: a closed pipe surfaces here, not at exit
        return status
    except AvatarKitError as exc:
        print(f"avatarkit {args.command}: error [{exc.code}]: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `avatarkit avatars | head`: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141
    except Exception as exc:
        # An engine error (no EGL, no display, ...) is as coded as ours. Looked up, not
        # imported: importing the engine here would cost `avatarkit --help` a third of a second.
        engine_errors = sys.modules.get("engine.errors")
        if engine_errors is None or not isinstance(exc, engine_errors.EngineError):
            raise
        print(f"avatarkit {args.command}: error [{exc.code}]: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
