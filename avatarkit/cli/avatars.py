"""``avatarkit avatars``: list, inspect and download avatar packages.

- ``avatarkit avatars`` - the bundled avatars, one per line: ``<id>\\t<name>``
- ``avatarkit avatars --url URL`` - the same, from an asset service
- ``avatarkit avatars --load ID [--url URL] [--cache-dir DIR]`` - download into the cache
  with a progress bar, then print the cached folder
- ``avatarkit avatars --info ID|PATH`` - which ARKit channels a model drives (a bundled id,
  a package folder or any .glb/.gltf)
- ``avatarkit avatars --clear-cache [ID]`` - delete one cached avatar, or all of them
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("avatars", help="list, inspect and download avatar packages")
    p.add_argument("--url", help="asset service base URL (e.g. http://127.0.0.1:8765/v1/avatars)")
    p.add_argument("--cache-dir", help="avatar cache directory (default: the user cache dir)")
    action = p.add_mutually_exclusive_group()
    action.add_argument("--load", metavar="ID", help="download an avatar into the cache, with progress")
    action.add_argument("--info", metavar="ID_OR_PATH", help="show the blendshape channels a model drives")
    action.add_argument("--clear-cache", nargs="?", const="", metavar="ID", help="delete cached avatars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.load:
        return _load(args)
    if args.info:
        return _info(args.info)
    if args.clear_cache is not None:
        return _clear(args)
    if not args.url:
        from avatarkit.errors import AvatarKitError, ErrorCode
        from avatarkit.paths import AVATARS_DIR

        if not AVATARS_DIR.is_dir():  # an incomplete install: say so, not an empty list
            raise AvatarKitError(ErrorCode.AVATAR_ASSETS_MISSING, f"no avatars folder at {AVATARS_DIR}")
    return _list(args)


def _list(args: argparse.Namespace) -> int:
    if args.url:
        import asyncio

        from avatarkit.manager import AvatarManager

        rows = [(a["id"], a.get("name", "")) for a in asyncio.run(AvatarManager(args.url, args.cache_dir).list_remote())]
    else:
        from avatarkit.package import list_packages
        from avatarkit.paths import AVATARS_DIR

        rows = [(m.id, m.name) for m in list_packages(AVATARS_DIR)]
    for avatar_id, name in rows:
        print(f"{avatar_id}\t{name}")
    return 0


def _load(args: argparse.Namespace) -> int:
    from avatarkit.manager import AvatarManager, LoadState

    manager = AvatarManager(args.url, args.cache_dir)
    bar = ProgressBar(f"{args.load}")

    def on_progress(p) -> None:
        if p.state == LoadState.DOWNLOADING:
            bar.update(p.progress)
        else:
            bar.finish(p.state.value)

    avatar = manager.load_blocking(args.load, on_progress)
    print(avatar.root)
    return 0


def _info(target: str) -> int:
    from pathlib import Path

    from avatarkit.avatar import derive
    from avatarkit.paths import AVATARS_DIR

    path = Path(target)
    if not path.exists() and (AVATARS_DIR / target).is_dir():
        path = AVATARS_DIR / target
    avatar = derive(path)
    print(f"{avatar.id}\t{avatar.name}\t{avatar.model_path}")
    print(avatar.blendshape_map.report())
    return 0


def _clear(args: argparse.Namespace) -> int:
    from avatarkit.manager import AvatarManager

    manager = AvatarManager(args.url, args.cache_dir)
    if args.clear_cache:
        manager.clear(args.clear_cache)
    else:
        manager.clear_all()
    print(f"cleared {args.clear_cache or 'all avatars'} in {manager.cache_dir}")
    return 0


class ProgressBar:
    """A one-line terminal progress bar on stderr (plain lines when not a terminal)."""

    WIDTH = 30

    def __init__(self, label: str, stream=None) -> None:
        self.label, self.stream = label, stream or sys.stderr
        self.tty = self.stream.isatty()
        self._last_decile = -1

    def update(self, fraction: float) -> None:
        if self.tty:
            filled = int(fraction * self.WIDTH)
            self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (self.WIDTH - filled)}] {fraction * 100:5.1f}%")
            self.stream.flush()
        elif int(fraction * 10) > self._last_decile:  # logs get a line per 10%, not per chunk
            self._last_decile = int(fraction * 10)
            print(f"{self.label}: {fraction * 100:.0f}%", file=self.stream)

    def finish(self, state: str) -> None:
        if self.tty:
            self.stream.write("\n")
        print(f"{self.label}: {state}", file=self.stream)
