"""``AvatarManager``: load avatars by id, with progress, in-flight dedupe and a verified cache.

Its source (``avatar_sources.py``) is a local packages folder, read in place, or an asset
service, whose packages go through the disk cache. From an asset service a load looks in
three places, cheapest first:

1. the memory cache (the very same ``Avatar`` object every time);
2. the disk cache, ``<cache_dir>/<id>/`` - used only if every file matches its SHA-256;
3. the asset service: manifest, then each file, resuming with ``Range`` after a dropped
   connection, retried with exponential backoff; a checksum mismatch is retried once from
   scratch, then fails and nothing is cached.

Only step 3 reports progress: ``downloading`` (monotonic, by bytes) and then exactly one
``completed`` or ``failed``. Concurrent loads of one id (on one event loop) share one
download and get one object. Files are written to a private staging folder and the whole
package becomes visible with one atomic ``os.replace``, under a per-id lock file, so two
processes loading at once never see (or leave) a half-written package.

Over 400 lines on purpose, for now: the downloader and the disk cache still share this
module's disk-write seam (``_write_chunk``, ``_disk_error``), which the tests replace to
simulate full and spying disks; they move to modules of their own together with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import re
import shutil
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from avatarkit.avatar import Avatar, derive, load_model
from avatarkit.avatar_sources import AssetService, AvatarSource, PackageFolder, source_for
from avatarkit.callbacks import call_app
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.package import (
    ID_RE,
    MANIFEST_NAME,
    MAX_MANIFEST_BYTES,
    FileEntry,
    Manifest,
    parse_manifest,
    read_manifest,
    sha256_file,
    verify_package,
)

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "http://127.0.0.1:8765/v1/avatars"
CHUNK = 64 * 1024
DEFAULT_MAX_PACKAGE_SIZE = 512 * 1024 * 1024  # bundled avatars are ~2 MB, large real ones ~50 MB
_LOCKS_DIR = ".locks"


class LoadState(StrEnum):
    DOWNLOADING = "downloading"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(frozen=True)
class LoadProgress:
    avatar_id: str
    state: LoadState
    progress: float  # 0..1 by bytes
    error: AvatarKitError | None = None

    def __str__(self) -> str:
        # ``load(id, on_progress=print)`` shows one readable line per report
        text = f"{self.avatar_id}: {self.state.value} {self.progress * 100:.0f}%"
        return f"{text} ({self.error})" if self.error is not None else text


ProgressCallback = Callable[[LoadProgress], None]


class _Retryable(Exception):
    """A transient server/network failure worth another attempt."""


class _Load:
    """One in-flight download, shared by every caller that asks for the same id."""

    def __init__(self, avatar_id: str) -> None:
        self.avatar_id = avatar_id
        self.loop = asyncio.get_running_loop()
        self.listeners: list[ProgressCallback] = []
        self.last: LoadProgress | None = None
        self.task: asyncio.Task[Avatar] | None = None

    def emit(self, state: LoadState, progress: float, error: AvatarKitError | None = None) -> None:
        if self.last is not None and state == LoadState.DOWNLOADING:
            if self.last.state != LoadState.DOWNLOADING or progress <= self.last.progress:
                return  # strictly increasing; a retried file re-downloads silently
        self.last = LoadProgress(self.avatar_id, state, min(max(progress, 0.0), 1.0), error)
        for listener in list(self.listeners):
            _notify(listener, self.last)


def _notify(listener: ProgressCallback, progress: LoadProgress) -> None:
    call_app(listener, progress, what="on_progress")  # a broken callback must not break the load


class AvatarManager:
    """Loads avatars by id. ``AvatarManager.shared()`` is the process-wide instance."""

    _shared: AvatarManager | None = None
    _shared_lock = threading.Lock()

    def __init__(
        self,
        base_url: str | None = None,
        cache_dir: str | Path | None = None,
        *,
        retries: int = 3,
        backoff: float = 0.25,
        timeout: float = 30.0,
        max_package_size: int = DEFAULT_MAX_PACKAGE_SIZE,
    ) -> None:
        """``base_url``: the asset service (``.../v1/avatars``) or a local packages folder
        (a path or ``file://`` URL, e.g. the bundled ``assets/avatars``).
        ``cache_dir``: default the platform user cache dir (``AVATARKIT_CACHE_DIR`` overrides).
        ``max_package_size``: a manifest declaring more bytes is refused (``avatarTooLarge``)
        before anything is downloaded; no file is ever written past its declared size."""
        base = base_url or os.environ.get("AVATARKIT_ASSET_URL") or DEFAULT_BASE_URL
        self.base_url = base.rstrip("/")
        self.source: AvatarSource = source_for(self.base_url)
        if cache_dir is None:
            cache_dir = os.environ.get("AVATARKIT_CACHE_DIR")
        if cache_dir is None:
            import platformdirs

            cache_dir = Path(platformdirs.user_cache_dir("avatarkit")) / "avatars"
        self.cache_dir = Path(cache_dir)
        self.retries, self.backoff, self.timeout = retries, backoff, timeout
        self.max_package_size = max_package_size
        self.files_downloaded = 0  # observability: how many file bodies came over the network
        self._avatars: dict[str, Avatar] = {}
        self._loads: dict[str, _Load] = {}
        self._lock = threading.Lock()

    @classmethod
    def shared(cls) -> AvatarManager:
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    @classmethod
    def configure_shared(
        cls, base_url: str | None = None, cache_dir: str | Path | None = None, **kwargs
    ) -> AvatarManager:
        """Replace the shared instance."""
        with cls._shared_lock:
            cls._shared = cls(base_url, cache_dir, **kwargs)
            return cls._shared

    @classmethod
    def use_assets_url(cls, base_url: str) -> AvatarManager:
        """``AvatarSDK.initialize``'s hook: the shared instance loads from ``base_url``
        (``Configuration.assets_url``). One already loading from there is kept, with the
        avatars it holds: initializing again must not reload them."""
        with cls._shared_lock:
            if cls._shared is None or cls._shared.base_url != base_url.rstrip("/"):
                cls._shared = cls(base_url)
            return cls._shared

    # -- public API -----------------------------------------------------------------------
    async def load(self, avatar_id: str, on_progress: ProgressCallback | None = None) -> Avatar:
        """The Avatar for ``avatar_id``, downloading it if no cache has it."""
        _check_id(avatar_id)
        if (avatar := self._avatars.get(avatar_id)) is not None:
            return avatar
        load = self._joinable(avatar_id)
        if load is None:
            cached = await asyncio.to_thread(self._from_disk, avatar_id)
            if cached is not None:
                return self._remember(cached)
            load = self._joinable(avatar_id)
            if load is None:
                load = _Load(avatar_id)
                load.task = asyncio.create_task(self._run(load), name=f"avatar-load-{avatar_id}")
                with self._lock:
                    self._loads[avatar_id] = load
        if on_progress is not None:
            load.listeners.append(on_progress)
            if load.last is not None:
                _notify(on_progress, load.last)  # a late joiner starts where the load is
        try:
            # shield: one caller giving up (timeout, cancel) must not abort the shared download
            return await asyncio.shield(load.task)
        except asyncio.CancelledError:
            if load.task.cancelled():  # cancel_load(), not this caller being cancelled
                raise AvatarKitError(
                    ErrorCode.LOAD_CANCELLED, f"load of {avatar_id!r} cancelled"
                ) from None
            raise
        finally:
            if on_progress is not None and on_progress in load.listeners:
                load.listeners.remove(on_progress)

    def load_blocking(
        self,
        avatar_id: str,
        on_progress: ProgressCallback | None = None,
        timeout: float | None = None,
    ) -> Avatar:
        """``load`` for scripts: runs its own event loop (on a helper thread if one is running
        here)."""

        async def go() -> Avatar:
            return await asyncio.wait_for(self.load(avatar_id, on_progress), timeout)

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(go())
        result: dict[str, object] = {}

        def worker() -> None:
            try:
                result["avatar"] = asyncio.run(go())
            except BaseException as exc:  # re-raised on the caller's thread
                result["error"] = exc

        thread = threading.Thread(target=worker, name="avatar-load", daemon=True)
        thread.start()
        thread.join()
        if "error" in result:
            raise result["error"]  # type: ignore[misc]
        return result["avatar"]  # type: ignore[return-value]

    def retrieve(self, avatar_id: str) -> Avatar | None:
        """The cached Avatar (memory, else a verified disk copy), never downloading."""
        if not ID_RE.match(avatar_id or ""):
            return None
        if (avatar := self._avatars.get(avatar_id)) is not None:
            return avatar
        cached = self._from_disk(avatar_id)
        return self._remember(cached) if cached is not None else None

    def cancel_load(self, avatar_id: str) -> bool:
        """Cancel an in-flight load; its callers get ``AvatarKitError(LOAD_CANCELLED)``."""
        with self._lock:
            load = self._loads.get(avatar_id)
        if load is None or load.task is None or load.task.done():
            return False
        load.loop.call_soon_threadsafe(load.task.cancel)
        return True

    def clear(self, avatar_id: str) -> None:
        """Forget one avatar: memory and disk cache."""
        _check_id(avatar_id)
        with self._lock:
            self._avatars.pop(avatar_id, None)
        _remove_tree(self.cache_dir / avatar_id, self.cache_dir)

    def clear_all(self) -> None:
        """Forget every avatar: memory and the whole disk cache."""
        with self._lock:
            self._avatars.clear()
        if self.cache_dir.is_dir():
            for child in self.cache_dir.iterdir():
                if child.name != _LOCKS_DIR:
                    _remove_tree(child, self.cache_dir)

    def derive(self, path: str | Path) -> Avatar:
        """A local avatar (package folder, folder with one glTF, or a glTF file); no server."""
        return derive(path)

    async def list_remote(self) -> list[dict]:
        """The source's avatar list (``[{id, name, version, size, ...}]``)."""
        return await self.source.list(self.timeout)

    # -- the load ---------------------------------------------------------------------------
    def _joinable(self, avatar_id: str) -> _Load | None:
        with self._lock:
            load = self._loads.get(avatar_id)
        if (
            load is None
            or load.task is None
            or load.task.done()
            or load.loop is not asyncio.get_running_loop()
        ):
            return None  # a load on another loop is not awaitable here; the disk lock serialises us
        return load

    def _remember(self, avatar: Avatar) -> Avatar:
        with self._lock:
            return self._avatars.setdefault(avatar.id, avatar)

    async def _run(self, load: _Load) -> Avatar:
        load.emit(LoadState.DOWNLOADING, 0.0)
        try:
            avatar = await self._fetch(load)
        except asyncio.CancelledError:
            load.emit(
                LoadState.FAILED,
                _progress(load),
                AvatarKitError(ErrorCode.LOAD_CANCELLED, f"load of {load.avatar_id!r} cancelled"),
            )
            raise
        except AvatarKitError as exc:
            load.emit(LoadState.FAILED, _progress(load), exc)
            raise
        except Exception as exc:
            error = AvatarKitError(ErrorCode.UNKNOWN, f"loading {load.avatar_id!r}: {exc!r}")
            load.emit(LoadState.FAILED, _progress(load), error)
            raise error from exc
        finally:
            with self._lock:
                if self._loads.get(load.avatar_id) is load:
                    del self._loads[load.avatar_id]
        avatar = self._remember(avatar)
        load.emit(LoadState.COMPLETED, 1.0)
        return avatar

    async def _fetch(self, load: _Load) -> Avatar:
        avatar_id = load.avatar_id
        if not isinstance(self.source, AssetService):
            return await self.source.load(avatar_id)  # read in place: nothing to cache
        import aiohttp

        async with aiohttp.ClientSession(timeout=self._client_timeout()) as session:
            manifest = await self._fetch_manifest(session, avatar_id)
            if manifest.total_size > self.max_package_size:
                raise AvatarKitError(
                    ErrorCode.AVATAR_TOO_LARGE,
                    f"{avatar_id}: the manifest declares {manifest.total_size} bytes, over "
                    f"max_package_size {self.max_package_size}",
                )
            async with self._disk_lock(avatar_id) as locked:
                # Another process (or loop) may have finished this package while we waited.
                cached = await asyncio.to_thread(self._from_disk, avatar_id, manifest)
                if cached is not None:
                    return cached
                staging = await asyncio.to_thread(self._make_staging, avatar_id, locked)
                try:
                    done = 0
                    total = max(manifest.total_size, 1)
                    for entry in manifest.files:
                        base = done

                        def report(n: int, base: int = base) -> None:
                            load.emit(LoadState.DOWNLOADING, (base + n) / total)

                        await self._fetch_file(
                            session, manifest, entry, staging / entry.name, report
                        )
                        done += entry.size
                    # Matching checksums only prove the bytes are the ones the manifest
                    # names: parse (and so validate) the model before it may enter the cache.
                    asset = await asyncio.to_thread(load_model, staging / manifest.model, avatar_id)
                    await asyncio.to_thread(self._commit, staging, manifest)
                finally:
                    await asyncio.to_thread(_remove_tree, staging, self.cache_dir)
        return await asyncio.to_thread(Avatar, manifest, self.cache_dir / avatar_id, None, asset)

    async def _fetch_manifest(self, session, avatar_id: str) -> Manifest:
        import aiohttp

        url = f"{self.base_url}/{avatar_id}"
        for attempt in range(self.retries + 1):
            try:
                async with session.get(url) as resp:
                    if resp.status == 404:
                        raise AvatarKitError(
                            ErrorCode.AVATAR_NOT_FOUND,
                            f"no avatar {avatar_id!r} at {self.base_url}",
                        )
                    if resp.status >= 500:
                        raise _Retryable(f"HTTP {resp.status}")
                    if resp.status != 200:
                        raise AvatarKitError(
                            ErrorCode.FAILED_TO_FETCH_AVATAR_METADATA, f"{url}: HTTP {resp.status}"
                        )
                    raw = bytearray()
                    async for chunk in resp.content.iter_chunked(CHUNK):
                        raw += chunk
                        if len(raw) > MAX_MANIFEST_BYTES:  # never buffer an endless body
                            raise AvatarKitError(
                                ErrorCode.INVALID_AVATAR_METADATA,
                                f"{url}: larger than {MAX_MANIFEST_BYTES} bytes",
                            )
                manifest = parse_manifest(bytes(raw), url)
                if manifest.id != avatar_id:
                    raise AvatarKitError(
                        ErrorCode.INVALID_AVATAR_METADATA, f"{url}: manifest is for {manifest.id!r}"
                    )
                return manifest
            except (aiohttp.ClientError, TimeoutError, ConnectionError, _Retryable) as exc:
                if attempt >= self.retries:
                    raise AvatarKitError(
                        ErrorCode.FAILED_TO_FETCH_AVATAR_METADATA,
                        f"{url}: {exc or type(exc).__name__} (after {attempt + 1} attempts)",
                    ) from exc
                await self._sleep_backoff(attempt, url, exc)
        raise AssertionError("unreachable")

    async def _fetch_file(
        self,
        session,
        manifest: Manifest,
        entry: FileEntry,
        path: Path,
        report: Callable[[int], None],
    ) -> None:
        """Download one file to ``path``, resuming after drops; verify its size and SHA-256."""
        import aiohttp

        url = f"{self.base_url}/{manifest.id}/files/{entry.name}"
        failures = mismatches = 0
        while True:
            have = path.stat().st_size if path.exists() else 0
            try:
                if have < entry.size or entry.size == 0:
                    await self._stream(session, url, entry, path, have, report)
            except (aiohttp.ClientError, TimeoutError, ConnectionError, _Retryable) as exc:
                failures += 1
                if failures > self.retries:
                    raise AvatarKitError(
                        ErrorCode.FAILED_TO_DOWNLOAD_AVATAR_ASSETS,
                        f"{url}: {exc or type(exc).__name__} (after {failures} attempts)",
                    ) from exc
                await self._sleep_backoff(failures - 1, url, exc)
                continue
            size = path.stat().st_size if path.exists() else 0
            if size == entry.size and await asyncio.to_thread(sha256_file, path) == entry.sha256:
                self.files_downloaded += 1
                return
            path.unlink(missing_ok=True)
            mismatches += 1
            if mismatches > 1:
                raise AvatarKitError(
                    ErrorCode.CHECKSUM_MISMATCH,
                    f"{manifest.id}/{entry.name}: downloaded bytes do not match "
                    "the manifest's SHA-256",
                )
            log.warning("%s/%s: checksum mismatch, downloading it again", manifest.id, entry.name)

    async def _stream(
        self,
        session,
        url: str,
        entry: FileEntry,
        path: Path,
        have: int,
        report: Callable[[int], None],
    ) -> None:
        headers = {"Range": f"bytes={have}-", "If-Range": f'"{entry.sha256}"'} if have else {}
        async with session.get(url, headers=headers) as resp:
            if resp.status == 404:
                raise AvatarKitError(ErrorCode.AVATAR_ASSETS_MISSING, f"{url}: not on the server")
            if resp.status >= 500:
                raise _Retryable(f"HTTP {resp.status}")
            if resp.status == 206 and have:
                mode = "ab"
            elif resp.status == 200:
                mode, have = "wb", 0  # the server sent the whole file
            elif resp.status == 416:
                path.unlink(missing_ok=True)  # our partial file is bogus; start over
                raise _Retryable("range not satisfiable")
            else:
                raise AvatarKitError(
                    ErrorCode.FAILED_TO_DOWNLOAD_AVATAR_ASSETS, f"{url}: HTTP {resp.status}"
                )
            with _open_for_write(path, mode) as fh:
                async for chunk in resp.content.iter_chunked(CHUNK):
                    # Never write past the declared size: a server streaming forever fills
                    # no disk; the checksum decides on what was kept.
                    room = entry.size - have
                    if chunk[:room]:
                        _write_chunk(fh, chunk[:room])
                    have += min(len(chunk), room)
                    report(have)
                    if len(chunk) >= room:
                        break
                await asyncio.to_thread(_flush, fh)  # fsync can block for long: not on the loop
        if have < entry.size:
            raise _Retryable(f"connection closed after {have} of {entry.size} bytes")

    async def _sleep_backoff(self, attempt: int, url: str, exc: BaseException) -> None:
        delay = self.backoff * (2**attempt)
        log.info(
            "avatar download: %s failed (%s); retrying in %.2fs",
            url,
            exc or type(exc).__name__,
            delay,
        )
        await asyncio.sleep(delay)

    @property
    def local_root(self) -> Path | None:
        """The packages folder when the source is a local one (None for an asset service)."""
        return self.source.root if isinstance(self.source, PackageFolder) else None

    def _client_timeout(self):
        import aiohttp

        return aiohttp.ClientTimeout(total=None, sock_connect=self.timeout, sock_read=self.timeout)

    # -- disk cache -------------------------------------------------------------------------
    def _from_disk(self, avatar_id: str, expected: Manifest | None = None) -> Avatar | None:
        """A verified cached package, or None (missing, stale or damaged)."""
        if not self.source.cached:
            return None
        package = self.cache_dir / avatar_id
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
                _remove_tree(package, self.cache_dir)
            return None
        except OSError as exc:  # unreadable, or swapped by another process mid-check
            log.warning("avatar cache: ignoring %s (%s)", package, exc)
            return None

    def _make_staging(self, avatar_id: str, locked: bool = False) -> Path:
        if locked:  # we hold the id's lock: any staging folder of this id is a dead process's
            self._remove_stale_staging(avatar_id)
        staging = self.cache_dir / f".staging-{avatar_id}-{uuid.uuid4().hex[:12]}"
        try:
            staging.mkdir(parents=True)
        except OSError as exc:
            raise _disk_error(exc, self.cache_dir) from exc
        return staging

    def _remove_stale_staging(self, avatar_id: str) -> None:
        """Drop what a download killed mid-way (crash, kill -9, power cut) left behind, so
        the cache does not grow by a partial package per interrupted download."""
        stale = re.compile(rf"^\.staging-{re.escape(avatar_id)}-[0-9a-f]{{12}}$")
        if not self.cache_dir.is_dir():
            return
        for child in self.cache_dir.iterdir():
            if stale.match(child.name):
                log.info("avatar cache: removing %s, left by an interrupted download", child.name)
                shutil.rmtree(child, ignore_errors=True)

    def _commit(self, staging: Path, manifest: Manifest) -> None:
        """Make the staged package visible in one atomic rename (the manifest goes in last)."""
        final = self.cache_dir / manifest.id
        try:
            with _open_for_write(staging / MANIFEST_NAME, "wb") as fh:
                _write_chunk(fh, manifest.to_bytes())
                _flush(fh)
            if final.exists():
                _remove_tree(final, self.cache_dir)
            os.replace(staging, final)
        except OSError as exc:
            raise _disk_error(exc, self.cache_dir) from exc

    @contextlib.asynccontextmanager
    async def _disk_lock(self, avatar_id: str) -> AsyncIterator[bool]:
        """An exclusive per-id lock file (POSIX ``flock``), polled so a cancel stays prompt.
        Yields whether the lock is really held."""
        try:
            import fcntl
        except ImportError:  # no flock (Windows): atomic renames still keep the cache whole
            yield False
            return
        locks = self.cache_dir / _LOCKS_DIR
        try:
            locks.mkdir(parents=True, exist_ok=True)
            fd = os.open(locks / f"{avatar_id}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise _disk_error(exc, self.cache_dir) from exc
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


# -- helpers (module level so tests can simulate a full disk) ----------------------------------
def _open_for_write(path: Path, mode: str):
    try:
        return open(path, mode)
    except OSError as exc:
        raise _disk_error(exc, path.parent) from exc


def _write_chunk(fh, data: bytes) -> None:
    try:
        fh.write(data)
    except OSError as exc:
        raise _disk_error(exc, Path(fh.name).parent) from exc


def _flush(fh) -> None:
    try:
        fh.flush()
        os.fsync(fh.fileno())
    except OSError as exc:
        raise _disk_error(exc, Path(fh.name).parent) from exc


def _disk_error(exc: OSError, where: Path) -> AvatarKitError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return AvatarKitError(ErrorCode.DISK_FULL, f"no space left for the avatar cache in {where}")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return AvatarKitError(
            ErrorCode.CACHE_NOT_WRITABLE,
            f"cannot write the avatar cache in {where} ({exc.strerror})",
        )
    return AvatarKitError(ErrorCode.CACHE_NOT_WRITABLE, f"avatar cache error in {where}: {exc}")


def _remove_tree(path: Path, cache_dir: Path) -> None:
    """Delete a cached package: renamed aside first, so readers never see half of it."""
    if not path.exists():
        return
    trash = cache_dir / f".trash-{uuid.uuid4().hex[:12]}"
    try:
        os.replace(path, trash)
    except OSError:
        trash = path
    shutil.rmtree(trash, ignore_errors=True)


def _progress(load: _Load) -> float:
    return load.last.progress if load.last is not None else 0.0


def _check_id(avatar_id: str) -> None:
    if not isinstance(avatar_id, str) or not ID_RE.match(avatar_id):
        raise AvatarKitError(ErrorCode.AVATAR_NOT_FOUND, f"invalid avatar id {avatar_id!r}")
