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

from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.motion.wav import SpeechAudio, read_wav

__all__ = ["SpeechAudio", "check_output", "closest", "output_with_suffix", "read_wav", "unknown"]


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The choice ``name`` most likely misspells, if any is close."""
    matches = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown(kind: str, name: str, choices: Iterable[str], listing: str, code: ErrorCode = ErrorCode.INVALID_REQUEST) -> AvatarKitError:
    """``unknown avatar 'ava2'; did you mean 'ava'? `avatarkit avatars` lists them``."""
    choices = sorted(choices)
    guess = closest(name, choices)
    hint = f"did you mean {guess!r}? " if guess else ""
    return AvatarKitError(code, f"unknown {kind} {name!r}; {hint}{listing}")


def output_with_suffix(path: Path, suffix: str) -> Path:
    """``-o out`` means ``out<suffix>``; another extension is refused (the format is fixed)."""
    if path.is_dir():
        raise AvatarKitError(ErrorCode.INVALID_REQUEST, f"{path} is a directory; name the {suffix} file to write")
    if not path.suffix:
        return path.with_name(path.name + suffix)
    if path.suffix.lower() != suffix:
        raise AvatarKitError(ErrorCode.INVALID_REQUEST, f"{path}: this command writes {suffix} files; name it ...{suffix}")
    return path


def check_output(path: Path) -> None:
    """Make sure ``path`` can be written (its folder created), before any long work."""
    if path.is_dir():
        raise AvatarKitError(ErrorCode.INVALID_REQUEST, f"{path} is a directory; name the file to write")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise AvatarKitError(ErrorCode.INVALID_REQUEST, f"cannot create the folder {path.parent}: a file is in the way") from exc
    except OSError as exc:
        raise AvatarKitError(ErrorCode.INVALID_REQUEST, f"cannot create the folder {path.parent}: {exc.strerror or exc}") from exc
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
