"""What the subcommands share: the WAV reader, output-path checks and "did you mean".

Every failure here is an ``AvatarKitError``: ``avatarkit.cli.main`` turns it into one
coded line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import difflib
import errno
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.motion.wav import SpeechAudio, read_wav

if TYPE_CHECKING:
    from avatarkit.avatar import Avatar

__all__ = [
    "SpeechAudio",
    "check_output",
    "closest",
    "open_avatar",
    "output_with_suffix",
    "read_wav",
    "unknown",
]


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The choice ``name`` most likely misspells, if any is close."""
    matches = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown(
    kind: str,
    name: str,
    choices: Iterable[str],
    listing: str,
    code: ErrorCode = ErrorCode.INVALID_REQUEST,
) -> AvatarKitError:
    """``unknown avatar 'ava2'; did you mean 'ava'? `avatarkit avatars` lists them``."""
    choices = sorted(choices)
    guess = closest(name, choices)
    hint = f"did you mean {guess!r}? " if guess else ""
    return AvatarKitError(code, f"unknown {kind} {name!r}; {hint}{listing}")


def output_with_suffix(path: Path, suffix: str) -> Path:
    """``-o out`` means ``out<suffix>``; another extension is refused (the format is fixed)."""
    if path.is_dir():
        raise AvatarKitError(
            ErrorCode.INVALID_REQUEST, f"{path} is a directory; name the {suffix} file to write"
        )
    if not path.suffix:
        return path.with_name(path.name + suffix)
    if path.suffix.lower() != suffix:
        raise AvatarKitError(
            ErrorCode.INVALID_REQUEST,
            f"{path}: this command writes {suffix} files; name it ...{suffix}",
        )
    return path


def check_output(path: Path) -> None:
    """Make sure ``path`` can be written (its folder created), before any long work."""
    if path.is_dir():
        raise AvatarKitError(
            ErrorCode.INVALID_REQUEST, f"{path} is a directory; name the file to write"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise AvatarKitError(
            ErrorCode.INVALID_REQUEST,
            f"cannot create the folder {path.parent}: a file is in the way",
        ) from exc
    except OSError as exc:
        raise AvatarKitError(
            ErrorCode.INVALID_REQUEST,
            f"cannot create the folder {path.parent}: {exc.strerror or exc}",
        ) from exc
    # os.access says yes to root everywhere (even /proc): only opening the file tells.
    existed = path.exists()
    try:
        with open(path, "ab"):
            pass
    except OSError as exc:
        why = "read-only file system" if exc.errno == errno.EROFS else (exc.strerror or str(exc))
        raise AvatarKitError(ErrorCode.INVALID_REQUEST, f"cannot write {path}: {why}") from exc
    if not existed:
        os.unlink(path)  # a failed run leaves nothing behind


def open_avatar(spec: str) -> Avatar:
    """``--avatar``: a bundled id (``ava``), or a path to a ``.glb``/``.gltf``/``.vrm`` file
    or an avatar folder. A plain id that is bundled wins over a file of that name in the
    working folder; anything not found is ``avatarNotFound`` naming where it looked."""
    from avatarkit.avatar import MODEL_SUFFIXES, derive
    from avatarkit.package import ID_RE, MANIFEST_NAME, list_packages
    from avatarkit.paths import AVATARS_DIR

    path = Path(spec).expanduser()
    path_like = path.suffix.lower() in MODEL_SUFFIXES or not ID_RE.match(spec)
    if not path_like and (AVATARS_DIR / spec / MANIFEST_NAME).is_file():
        from avatarkit.manager import AvatarManager

        return AvatarManager(str(AVATARS_DIR)).load_blocking(spec)
    if path.exists():
        return derive(path)
    where = f"no file or folder {path.absolute()}"
    if path_like:
        raise AvatarKitError(ErrorCode.AVATAR_NOT_FOUND, f"avatar {spec!r} not found: {where}")
    ids = [m.id for m in list_packages(AVATARS_DIR)]
    listing = (
        f"looked for a bundled avatar in {AVATARS_DIR} ({', '.join(sorted(ids)) or 'none'}) "
        f"and found {where}"
    )
    raise unknown("avatar", spec, ids, listing, ErrorCode.AVATAR_NOT_FOUND)
