"""The verified disk cache of downloaded avatar packages, ``<cache_dir>/<id>/``.

A cached package is used only if every file matches its SHA-256. Downloads are written to
a private staging folder and the whole package becomes visible with one atomic
``os.replace``, under a per-id lock file, so two processes loading at once never see (or
leave) a half-written package. Called from the load's event loop (``lock``) and from its
worker threads (everything else, through ``asyncio.to_thread``).

Every write goes through the module-level seam below (``open_for_write``, ``write_chunk``,
``flush``, ``disk_error``), shared with the downloader: one place turns a full or
read-only disk into ``diskFull`` / ``cacheNotWritable``, and the one the tests replace to
simulate full and spying disks.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO

from avatarkit.avatar import Avatar
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.package import MANIFEST_NAME, Manifest, read_manifest, verify_package

log = logging.getLogger(__name__)

LOCKS_DIR = ".locks"


class DiskCache:
    """Packages under ``root``, one folder per avatar id."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def read(self, avatar_id: str, expected: Manifest | None = None) -> Avatar | None:
        """A verified cached package, or None (missing, stale or damaged)."""
        package = self.root / avatar_id
        if not (package / MANIFEST_NAME).is_file():
            return None
        try:
            manifest = read_manifest(package)
            if manifest.id != avatar_id or (
                expected is not None and manifest.files != expected.files
            ):
                return None
            verify_package(package, manifest)
            return Avatar(manifest, package)
        except AvatarKitError as exc:
            log.warning("avatar cache: ignoring %s (%s)", package, exc.message)
            if exc.code is ErrorCode.INCOMPATIBLE_AVATAR_ASSET:
                # Verified bytes of a model we refuse (cached before validation existed, or
                # by an older version): drop it rather than keep a package that never loads.
                remove_tree(package, self.root)
            return None
        except OSError as exc:  # unreadable, or swapped by another process mid-check
            log.warning("avatar cache: ignoring %s (%s)", package, exc)
            return None

    def remove(self, avatar_id: str) -> None:
        remove_tree(self.root / avatar_id, self.root)

    def remove_all(self) -> None:
        if self.root.is_dir():
            for child in self.root.iterdir():
                if child.name != LOCKS_DIR:
                    remove_tree(child, self.root)

    def make_staging(self, avatar_id: str, locked: bool = False) -> Path:
        """A fresh private folder to download ``avatar_id`` into."""
        if locked:  # we hold the id's lock: any staging folder of this id is a dead process's
            self._remove_stale_staging(avatar_id)
        staging = self.root / f".staging-{avatar_id}-{uuid.uuid4().hex[:12]}"
        try:
            staging.mkdir(parents=True)
        except OSError as exc:
            raise disk_error(exc, self.root) from exc
        return staging

    def _remove_stale_staging(self, avatar_id: str) -> None:
        """Drop what a download killed mid-way (crash, kill -9, power cut) left behind, so
        the cache does not grow by a partial package per interrupted download."""
        stale = re.compile(rf"^\.staging-{re.escape(avatar_id)}-[0-9a-f]{{12}}$")
        if not self.root.is_dir():
            return
        for child in self.root.iterdir():
            if stale.match(child.name):
                log.info("avatar cache: removing %s, left by an interrupted download", child.name)
                shutil.rmtree(child, ignore_errors=True)

    def commit(self, staging: Path, manifest: Manifest) -> None:
        """Make the staged package visible in one atomic rename (the manifest goes in last)."""
        final = self.root / manifest.id
        try:
            with open_for_write(staging / MANIFEST_NAME, "wb") as fh:
                write_chunk(fh, manifest.to_bytes())
                flush(fh)
            if final.exists():
                remove_tree(final, self.root)
            os.replace(staging, final)
        except OSError as exc:
            raise disk_error(exc, self.root) from exc

    @contextlib.asynccontextmanager
    async def lock(self, avatar_id: str) -> AsyncIterator[bool]:
        """An exclusive per-id lock file (POSIX ``flock``), polled so a cancel stays prompt.
        Yields whether the lock is really held."""
        try:
            import fcntl
        except ImportError:  # no flock (Windows): atomic renames still keep the cache whole
            yield False
            return
        locks = self.root / LOCKS_DIR
        try:
            locks.mkdir(parents=True, exist_ok=True)
            fd = os.open(locks / f"{avatar_id}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise disk_error(exc, self.root) from exc
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await asyncio.sleep(0.05)
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


# -- the disk-write seam (module level so tests can simulate a full disk) ----------------------
def open_for_write(path: Path, mode: str) -> IO[bytes]:
    try:
        return open(path, mode)  # the caller's ``with`` closes it
    except OSError as exc:
        raise disk_error(exc, path.parent) from exc


def write_chunk(fh: IO[bytes], data: bytes) -> None:
    try:
        fh.write(data)
    except OSError as exc:
        raise disk_error(exc, Path(fh.name).parent) from exc


def flush(fh: IO[bytes]) -> None:
    try:
        fh.flush()
        os.fsync(fh.fileno())
    except OSError as exc:
        raise disk_error(exc, Path(fh.name).parent) from exc


def disk_error(exc: OSError, where: Path) -> AvatarKitError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return AvatarKitError(ErrorCode.DISK_FULL, f"no space left for the avatar cache in {where}")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return AvatarKitError(
            ErrorCode.CACHE_NOT_WRITABLE,
            f"cannot write the avatar cache in {where} ({exc.strerror})",
        )
    return AvatarKitError(ErrorCode.CACHE_NOT_WRITABLE, f"avatar cache error in {where}: {exc}")


def remove_tree(path: Path, cache_dir: Path) -> None:
    """Delete a cached package: renamed aside first, so readers never see half of it."""
    if not path.exists():
        return
    trash = cache_dir / f".trash-{uuid.uuid4().hex[:12]}"
    try:
        os.replace(path, trash)
    except OSError:
        trash = path
    shutil.rmtree(trash, ignore_errors=True)
