"""``avatarkit keys``: create, list and revoke the API keys of an apps file.

A key is printed once, at creation; the file keeps only its salted hash. Rotation without
downtime: create a second key, move the backends to it, revoke the first (a running
``avatarkit serve --config`` picks up each change at its next request).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

EXAMPLES = """examples:
  avatarkit keys create --config apps.toml --app kiosk --new-app   # a new app and its first key
  avatarkit keys create --config apps.toml --app kiosk --label ci  # a second key (rotation)
  avatarkit keys list --config apps.toml
  avatarkit keys revoke --config apps.toml --app kiosk 3f2a9c01"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "keys",
        help="create, list and revoke the API keys of an apps file (serve --config)",
        description=__doc__.split("\n\n", 1)[1].strip() if __doc__ else None,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="a new key for an app (printed once)")
    create.add_argument("--app", required=True, help="app id")
    create.add_argument(
        "--new-app", action="store_true", help="add the app (and the file) if it does not exist"
    )
    create.add_argument("--label", default="", help="a note shown by `list` (who uses the key)")
    listing = actions.add_parser("list", help="the keys of every app (ids, never the keys)")
    listing.add_argument("--app", default=None, help="only this app")
    revoke = actions.add_parser("revoke", help="remove a key; its tokens stop working")
    revoke.add_argument("--app", required=True, help="app id")
    revoke.add_argument("key_id", help="the key's id (`avatarkit keys list`)")
    for sub in (create, listing, revoke):
        sub.add_argument("--config", required=True, metavar="APPS.TOML", help="the apps file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from avatarkit.errors import AvatarKitError, ErrorCode
    from avatarkit.server.apikeys import hash_key, new_key
    from avatarkit.server.apps import (
        APP_ID_RE,
        MAX_KEYS_PER_APP,
        AppKey,
        AppPolicy,
        load_apps,
        write_apps,
    )

    if args.action == "list":
        apps = load_apps(args.config)
        if args.app is not None and args.app not in apps:
            raise AvatarKitError(ErrorCode.APP_ID_UNRECOGNIZED, f"no app {args.app!r} in the file")
        print(f"{'app':24} {'key id':9} {'created':21} label")
        for listed in apps.values():
            if args.app in (None, listed.app_id):
                for stored in listed.keys:
                    print(
                        f"{listed.app_id:24} {stored.key_id:9} {stored.created:21} {stored.label}"
                    )
        return 0
    with _locked(args.config):
        exists = os.path.exists(args.config)
        apps = load_apps(args.config) if exists or args.action != "create" else {}
        app = apps.get(args.app)
        if args.action == "create":
            if app is None and not args.new_app:
                raise AvatarKitError(
                    ErrorCode.APP_ID_UNRECOGNIZED,
                    f"no app {args.app!r} in {args.config}; add --new-app to create it",
                )
            if app is None:
                if not APP_ID_RE.match(args.app):
                    raise AvatarKitError(
                        ErrorCode.INVALID_REQUEST,
                        f"--app {args.app!r}: 1-64 of A-Z a-z 0-9 . _ -, not first . _ -",
                    )
                app = AppPolicy(args.app)
            if len(app.keys) >= MAX_KEYS_PER_APP:
                raise AvatarKitError(
                    ErrorCode.INVALID_REQUEST,
                    f"{args.app} has {MAX_KEYS_PER_APP} keys already: revoke one first",
                )
            taken = {key.key_id for other in apps.values() for key in other.keys}
            key_id, secret = new_key()
            while key_id in taken:
                key_id, secret = new_key()
            created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            entry = AppKey(key_id, hash_key(secret), created, args.label)
            apps[args.app] = replace(app, keys=(*app.keys, entry))
            write_apps(args.config, apps)
            print(f"app     {args.app}\nkey id  {key_id}\napi key {secret}")
            print("Store the key now: it is not shown again (the file keeps only its hash).")
            return 0
        if app is None:
            raise AvatarKitError(ErrorCode.APP_ID_UNRECOGNIZED, f"no app {args.app!r} in the file")
        if app.key(args.key_id) is None:
            raise AvatarKitError(
                ErrorCode.INVALID_REQUEST, f"{args.app} has no key {args.key_id!r} (keys list)"
            )
        if len(app.keys) == 1:
            raise AvatarKitError(
                ErrorCode.INVALID_REQUEST,
                f"{args.key_id} is the last key of {args.app}: create its successor first "
                "(rotation), or remove the app from the file",
            )
        kept = tuple(key for key in app.keys if key.key_id != args.key_id)
        apps[args.app] = replace(app, keys=kept)
        write_apps(args.config, apps)
        print(f"revoked {args.key_id} of {args.app}; {len(kept)} key(s) left")
        return 0


@contextlib.contextmanager
def _locked(path: str) -> Iterator[None]:
    """One `avatarkit keys` writer at a time (a read-modify-write must not lose a key)."""
    with open(f"{path}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
