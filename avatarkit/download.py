"""Downloads from an asset service: manifests and package files over HTTP.

Runs on the load's event loop (file hashing and fsync on worker threads). A manifest is
read with a size cap and refused (``avatarTooLarge``) when it declares more than the
manager's ``max_package_size``; each file is streamed to disk, resuming with ``Range``
(``If-Range`` on its SHA-256) after a dropped connection, retried with exponential
backoff, never written past its declared size, and checked against its size and SHA-256:
a mismatch is retried once from scratch, then fails. Writes go through the disk cache's
seam (``avatar_cache``), so a full disk reads the same here as in the cache.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from avatarkit import avatar_cache as disk
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.package import MAX_MANIFEST_BYTES, FileEntry, Manifest, parse_manifest, sha256_file

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger(__name__)

CHUNK = 64 * 1024


class _Retryable(Exception):
    """A transient server/network failure worth another attempt."""


class Downloader:
    """Fetches the packages of the asset service at ``base_url``."""

    def __init__(
        self,
        base_url: str,
        *,
        retries: int,
        backoff: float,
        timeout: float,
        max_package_size: int,
    ) -> None:
        self.base_url = base_url
        self.retries, self.backoff, self.timeout = retries, backoff, timeout
        self.max_package_size = max_package_size
        self.files_downloaded = 0  # observability: how many file bodies came over the network

    @asynccontextmanager
    async def session(self) -> AsyncIterator[aiohttp.ClientSession]:
        """One HTTP session for a package's manifest and files."""
        import aiohttp

        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.timeout, sock_read=self.timeout
        )
        async with aiohttp.ClientSession(timeout=timeout) as session:
            yield session

    async def manifest(self, session: aiohttp.ClientSession, avatar_id: str) -> Manifest:
        """The package's manifest, within ``max_package_size``."""
        manifest = await self._fetch_manifest(session, avatar_id)
        if manifest.total_size > self.max_package_size:
            raise AvatarKitError(
                ErrorCode.AVATAR_TOO_LARGE,
                f"{avatar_id}: the manifest declares {manifest.total_size} bytes, over "
                f"max_package_size {self.max_package_size}",
            )
        return manifest

    async def _fetch_manifest(self, session: aiohttp.ClientSession, avatar_id: str) -> Manifest:
        import aiohttp

        url = f"{self.base_url}/{avatar_id}"
        for attempt in range(self.retries + 1):
            try:
                async with session.get(url) as resp:
                    if resp.status == 404:
                        _, why = await _reason(resp)
                        raise AvatarKitError(
                            ErrorCode.AVATAR_NOT_FOUND,
                            f"no avatar {avatar_id!r} at {self.base_url}"
                            + (f" (the service says: {why})" if why else ""),
                        )
                    if resp.status == 422:  # the service cannot use its own file: no retry
                        code, why = await _reason(resp)
                        raise AvatarKitError(
                            code or ErrorCode.INCOMPATIBLE_AVATAR_ASSET, f"{url}: {why or 422}"
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

    async def file(
        self,
        session: aiohttp.ClientSession,
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
        session: aiohttp.ClientSession,
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
            with disk.open_for_write(path, mode) as fh:
                async for chunk in resp.content.iter_chunked(CHUNK):
                    # Never write past the declared size: a server streaming forever fills
                    # no disk; the checksum decides on what was kept.
                    room = entry.size - have
                    if chunk[:room]:
                        disk.write_chunk(fh, chunk[:room])
                    have += min(len(chunk), room)
                    report(have)
                    if len(chunk) >= room:
                        break
                # fsync can block for long: not on the loop
                await asyncio.to_thread(disk.flush, fh)
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


async def _reason(resp: aiohttp.ClientResponse) -> tuple[ErrorCode | None, str]:
    """The asset service's ``{"error": {"code", "message"}}``, bounded; (None, "") if none."""
    import json

    try:
        error = json.loads(await resp.content.read(4096))["error"]
        message = str(error["message"])[:512]
    except (ValueError, KeyError, TypeError, RecursionError):
        return None, ""
    try:
        return ErrorCode(error.get("code")), message
    except ValueError:  # a code this client does not know
        return None, message
