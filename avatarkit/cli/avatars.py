"""``avatarkit avatars``: list, inspect and download avatar packages."""

from __future__ import annotations

import argparse

DESCRIPTION = """List, inspect and download avatar packages.

With no option: the bundled avatar ids, one per line (--long adds each one's name).
--url lists (and --load downloads from) an asset service instead, e.g. the
/v1/avatars of `avatarkit serve`."""

EXAMPLES = """examples:
  avatarkit avatars                                  # ava, kai, mei, ...
  avatarkit avatars --long                           # id<TAB>name
  avatarkit avatars --info ava                       # which ARKit channels the model drives
  avatarkit avatars --info path/to/model.glb
  avatarkit avatars --url http://127.0.0.1:8765/v1/avatars --load mei
  avatarkit avatars --clear-cache                    # empty the download cache"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "avatars",
        help="list, inspect and download avatar packages",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--url",
        help="asset service base URL (e.g. http://127.0.0.1:8765/v1/avatars) or a packages folder",
    )
    p.add_argument(
        "--cache-dir",
        help="avatar cache directory (default: the user cache dir, or AVATARKIT_CACHE_DIR)",
    )
    p.add_argument("-l", "--long", action="store_true", help="list id and name, tab-separated")
    action = p.add_mutually_exclusive_group()
    action.add_argument(
        "--load",
        metavar="ID",
        help="download an avatar into the cache (with progress), print its folder",
    )
    action.add_argument(
        "--info",
        metavar="ID_OR_PATH",
        help="the blendshape channels a model drives (bundled id, package folder, .glb/.gltf)",
    )
    action.add_argument(
        "--clear-cache",
        nargs="?",
        const="",
        metavar="ID",
        help="delete one cached avatar, or all of them",
    )
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
            raise AvatarKitError(
                ErrorCode.AVATAR_ASSETS_MISSING, f"no avatars folder at {AVATARS_DIR}"
            )
    return _list(args)


def _list(args: argparse.Namespace) -> int:
    if args.url:
        import asyncio

        from avatarkit.errors import AvatarKitError, ErrorCode
        from avatarkit.manager import AvatarManager

        manager = AvatarManager(args.url, args.cache_dir)
        if (
            manager.local_root is not None and not manager.local_root.is_dir()
        ):  # a typo'd URL is no empty list
            raise AvatarKitError(
                ErrorCode.INVALID_REQUEST,
                f"--url {args.url}: neither an http(s) URL nor a folder of avatar packages",
            )
        rows = [(a["id"], a.get("name", "")) for a in asyncio.run(manager.list_remote())]
    else:
        rows = [(m.id, m.name) for m in _bundled()]
    for avatar_id, name in rows:
        print(f"{avatar_id}\t{name}" if args.long else avatar_id)
    return 0


def _bundled() -> list:
    from avatarkit.package import list_packages
    from avatarkit.paths import AVATARS_DIR

    return list_packages(AVATARS_DIR)


def _load(args: argparse.Namespace) -> int:
    import asyncio

    from avatarkit.cli.common import unknown
    from avatarkit.cli.progress import Progress
    from avatarkit.errors import AvatarKitError, ErrorCode
    from avatarkit.manager import AvatarManager, LoadState

    manager = AvatarManager(args.url, args.cache_dir)
    bar = Progress(args.load)

    def on_progress(p) -> None:
        if p.state == LoadState.DOWNLOADING:
            bar.update(p.progress)
        else:
            bar.finish(p.state.value)

    try:
        avatar = manager.load_blocking(args.load, on_progress)
    except AvatarKitError as exc:
        if exc.code == ErrorCode.AVATAR_NOT_FOUND:
            try:
                ids = [a["id"] for a in asyncio.run(manager.list_remote())]
            except AvatarKitError:
                raise exc from None
            raise unknown(
                "avatar",
                args.load,
                ids,
                f"`avatarkit avatars --url {manager.base_url}` lists them",
                ErrorCode.AVATAR_NOT_FOUND,
            ) from None
        if exc.code == ErrorCode.FAILED_TO_FETCH_AVATAR_METADATA and not args.url:
            raise AvatarKitError(
                exc.code, f"{exc.message}; is `avatarkit serve` running? (or pass --url)"
            ) from None
        raise
    print(avatar.root)
    return 0


def _info(target: str) -> int:
    from pathlib import Path

    from avatarkit.avatar import derive
    from avatarkit.cli.common import unknown
    from avatarkit.errors import ErrorCode
    from avatarkit.paths import AVATARS_DIR

    path = Path(target)
    if not path.exists():
        if not (AVATARS_DIR / target).is_dir():
            # neither a file nor a bundled id: say which ids exist, not "no such file"
            ids = [m.id for m in _bundled()]
            raise unknown(
                "avatar",
                target,
                ids,
                "`avatarkit avatars` lists them; or give a .glb/.gltf path",
                ErrorCode.AVATAR_NOT_FOUND,
            )
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
