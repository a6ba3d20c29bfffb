"""``AvatarManager``: load avatars by id, with progress, in-flight dedupe and a verified cache.

Its source (``avatar_sources.py``) is a local packages folder, read in place, or an asset
service, whose packages go through the disk cache. From an asset service a load looks in
three places, cheapest first:

1. the memory cache (the very same ``Avatar`` object every time);
2. the disk cache (``avatar_cache.py``), ``<cache_dir>/<id>/`` - used only if every file
   matches its SHA-256;
3. the asset service (``download.py``): manifest, then each file, resuming with ``Range``
   after a dropped connection, retried with exponential backoff; a checksum mismatch is
   retried once from scratch, then fails and nothing is cached.

Only step 3 reports progress: ``downloading`` (monotonic, by bytes) and then exactly one
``completed`` or ``failed``. Concurrent loads of one id (on one event loop) share one
download and get one object; two processes are kept apart by the cache's per-id lock.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from avatarkit.avatar import Avatar, derive, load_model
from avatarkit.avatar_cache import DiskCache, remove_tree
from avatarkit.avatar_sources import AssetService, AvatarSource, PackageFolder, source_for
from avatarkit.callbacks import call_app
from avatarkit.download import Downloader
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.package import ID_RE, Manifest

DEFAULT_BASE_URL = "http://127.0.0.1:8765/v1/avatars"
DEFAULT_MAX_PACKAGE_SIZE = 512 * 1024 * 1024  # bundled avatars are ~2 MB, large real ones ~50 MB


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


class _Load:
    """One in-flight download, shared by every caller that asks for the same id."""

    def __init__(self, avatar_id: str, run: Callable[[_Load], Coroutine[Any, Any, Avatar]]) -> None:
        self.avatar_id = avatar_id
        self.loop = asyncio.get_running_loop()
        self.listeners: list[ProgressCallback] = []
        self.last: LoadProgress | None = None
        self.task = asyncio.create_task(run(self), name=f"avatar-load-{avatar_id}")

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
        self.cache = DiskCache(self.cache_dir)
        self.retries, self.backoff, self.timeout = retries, backoff, timeout
        self.max_package_size = max_package_size
        self.downloader = Downloader(
            self.base_url,
            retries=retries,
            backoff=backoff,
            timeout=timeout,
            max_package_size=max_package_size,
        )
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
        cls, base_url: str | None = None, cache_dir: str | Path | None = None, **kwargs: Any
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
                load = _Load(avatar_id, self._run)
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
        loaded: list[Avatar] = []
        failed: list[BaseException] = []

        def worker() -> None:
            try:
                loaded.append(asyncio.run(go()))
            except BaseException as exc:  # re-raised on the caller's thread
                failed.append(exc)

        thread = threading.Thread(target=worker, name="avatar-load", daemon=True)
        thread.start()
        thread.join()
        if failed:
            raise failed[0]
        return loaded[0]

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
        if load is None or load.task.done():
            return False
        load.loop.call_soon_threadsafe(load.task.cancel)
        return True

    def clear(self, avatar_id: str) -> None:
        """Forget one avatar: memory and disk cache."""
        _check_id(avatar_id)
        with self._lock:
            self._avatars.pop(avatar_id, None)
        self.cache.remove(avatar_id)

    def clear_all(self) -> None:
        """Forget every avatar: memory and the whole disk cache."""
        with self._lock:
            self._avatars.clear()
        self.cache.remove_all()

    def derive(self, path: str | Path) -> Avatar:
        """A local avatar (package folder, folder with one glTF, or a glTF file); no server."""
        return derive(path)

    async def list_remote(self) -> list[dict[str, Any]]:
        """The source's avatar list (``[{id, name, version, size, ...}]``)."""
        return await self.source.list(self.timeout)

    @property
    def files_downloaded(self) -> int:
        """Observability: how many file bodies came over the network."""
        return self.downloader.files_downloaded

    @property
    def local_root(self) -> Path | None:
        """The packages folder when the source is a local one (None for an asset service)."""
        return self.source.root if isinstance(self.source, PackageFolder) else None

    # -- the load ---------------------------------------------------------------------------
    def _joinable(self, avatar_id: str) -> _Load | None:
        with self._lock:
            load = self._loads.get(avatar_id)
        if load is None or load.task.done() or load.loop is not asyncio.get_running_loop():
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
        downloader, cache = self.downloader, self.cache
        async with downloader.session() as session:
            manifest = await downloader.manifest(session, avatar_id)
            async with cache.lock(avatar_id) as locked:
                # Another process (or loop) may have finished this package while we waited.
                cached = await asyncio.to_thread(self._from_disk, avatar_id, manifest)
                if cached is not None:
                    return cached
                staging = await asyncio.to_thread(cache.make_staging, avatar_id, locked)
                try:
                    done = 0
                    total = max(manifest.total_size, 1)
                    for entry in manifest.files:
                        base = done

                        def report(n: int, base: int = base) -> None:
                            load.emit(LoadState.DOWNLOADING, (base + n) / total)

                        await downloader.file(
                            session, manifest, entry, staging / entry.name, report
                        )
                        done += entry.size
                    # Matching checksums only prove the bytes are the ones the manifest
                    # names: parse (and so validate) the model before it may enter the cache.
                    asset = await asyncio.to_thread(load_model, staging / manifest.model, avatar_id)
                    await asyncio.to_thread(cache.commit, staging, manifest)
                finally:
                    await asyncio.to_thread(remove_tree, staging, self.cache_dir)
        return await asyncio.to_thread(Avatar, manifest, self.cache_dir / avatar_id, None, asset)

    def _from_disk(self, avatar_id: str, expected: Manifest | None = None) -> Avatar | None:
        """A verified cached package, or None (none, damaged, or a source that is not cached)."""
        if not self.source.cached:
            return None
        return self.cache.read(avatar_id, expected)


def _progress(load: _Load) -> float:
    return load.last.progress if load.last is not None else 0.0


def _check_id(avatar_id: str) -> None:
    if not isinstance(avatar_id, str) or not ID_RE.match(avatar_id):
        raise AvatarKitError(ErrorCode.AVATAR_NOT_FOUND, f"invalid avatar id {avatar_id!r}")
