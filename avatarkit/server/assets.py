"""The avatar asset service: packages by id over HTTP (aiohttp).

Routes (mounted by ``avatarkit serve`` on its one port, or alone by :class:`AssetServer`):

- ``GET /v1/avatars`` - ``{"avatars": [{id, name, version, size, channels}]}``: the
  packages and ``.glb``/``.vrm`` files of the catalog (:mod:`avatarkit.server.catalog`)
- ``GET /v1/avatars/{id}`` - the manifest JSON
- ``GET /v1/avatars/{id}/files/{name}`` - file bytes with Content-Length, a strong ETag
  (its SHA-256), single ``Range`` requests (206 / 416; a list of ranges or another unit
  is ignored: 200), ``If-None-Match`` (304) and ``If-Range``.

An avatar id from a request is only looked up in the catalog; only names listed in its
manifest are ever opened, and a package file's resolved path must stay inside the package
folder, so no request reads anything the catalog does not serve.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from aiohttp import web

from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.package import ID_RE, FileEntry, Manifest
from avatarkit.server.catalog import AvatarCatalog, Entry, served_file

CATALOG_KEY = web.AppKey("avatarkit_assets_catalog", AvatarCatalog)
CHUNK = 256 * 1024
# ASCII digits only (``\d`` would take Arabic-Indic and other digits, which int() accepts).
_RANGE_RE = re.compile(r"^bytes=([0-9]*)-([0-9]*)$", re.ASCII)
MAX_RANGE_HEADER = 256  # a single range needs ~50 characters; longer ones are refused (400)
_HUGE = 10**18  # beyond any file: a longer number is clamped, never given to int() (whose
# digit limit raises ValueError past 4300 digits)


def add_asset_routes(
    app: web.Application, root: Path | None = None, catalog: AvatarCatalog | None = None
) -> None:
    """Mount the asset routes on ``app``, serving ``catalog`` (default: the packages under
    ``root`` alone, else the bundled ones)."""
    if catalog is None:
        catalog = AvatarCatalog([root], bundled=False) if root is not None else AvatarCatalog()
    app[CATALOG_KEY] = catalog
    app.router.add_get("/v1/avatars", _list)
    app.router.add_get("/v1/avatars/{avatar_id}", _manifest)
    app.router.add_get("/v1/avatars/{avatar_id}/files/{name}", _file)


def _error(status: int, code: ErrorCode | str, message: str) -> web.Response:
    return web.json_response({"error": {"code": str(code), "message": message}}, status=status)


def _package(request: web.Request) -> tuple[Entry, Manifest] | web.Response:
    """The requested avatar's catalog entry and manifest (filesystem work: off the loop)."""
    catalog = request.app[CATALOG_KEY]
    avatar_id = request.match_info["avatar_id"]
    if not ID_RE.match(avatar_id):
        return _error(404, ErrorCode.AVATAR_NOT_FOUND, f"no avatar {avatar_id[:128]!r}")
    index = catalog.index()
    entry = index.entries.get(avatar_id)
    if entry is None:
        return _error(404, ErrorCode.AVATAR_NOT_FOUND, catalog.not_found(avatar_id, index))
    try:
        return entry, catalog.manifest(entry)
    except AvatarKitError as exc:  # a file the engine cannot use: the client cannot either
        status = 404 if exc.code == ErrorCode.AVATAR_NOT_FOUND else 422  # no retry mends it
        return _error(status, exc.code, exc.message)


async def _list(request: web.Request) -> web.Response:
    return web.json_response({"avatars": await asyncio.to_thread(_listing, request)})


def _listing(request: web.Request) -> list[dict]:
    catalog = request.app[CATALOG_KEY]
    avatars = []
    for entry in sorted(catalog.index().entries.values(), key=lambda e: e.id):
        try:
            m = catalog.manifest(entry)
        except AvatarKitError:
            continue  # logged when made; asking for it by id says why
        avatars.append(
            {
                "id": m.id,
                "name": m.name,
                "version": m.version,
                "size": m.total_size,
                "channels": len(m.channels),
            }
        )
    return avatars


async def _manifest(request: web.Request) -> web.Response:
    found = await asyncio.to_thread(_package, request)
    if isinstance(found, web.Response):
        return found
    _, manifest = found
    return web.Response(
        body=manifest.to_bytes(),
        content_type="application/json",
        headers={"Cache-Control": "no-cache"},
    )


def _locate(request: web.Request) -> tuple[Path, FileEntry, int] | web.Response:
    """The requested file's path, manifest entry and size (filesystem work: off the loop)."""
    found = _package(request)
    if isinstance(found, web.Response):
        return found
    avatar, manifest = found
    name = request.match_info["name"]
    entry = manifest.file(name)
    # Only a listed name reaches the filesystem (an unlisted one may hold a NUL byte, ...).
    path = served_file(avatar, manifest, name)
    if entry is None or path is None or not path.is_file():
        return _error(
            404, ErrorCode.AVATAR_ASSETS_MISSING, f"avatar {manifest.id!r} has no file {name!r}"
        )
    # Never more than the manifest declares (what the catalog's size limit counted): a
    # file grown past it is cut there, and the client's checksum tells it is not right.
    return path, entry, min(path.stat().st_size, entry.size)


async def _file(request: web.Request) -> web.StreamResponse:
    found = await asyncio.to_thread(_locate, request)
    if isinstance(found, web.Response):
        return found
    path, entry, size = found
    name = entry.name
    etag = f'"{entry.sha256}"'
    # File URLs are not versioned (a new version of an avatar reuses its names), so caches
    # may keep the bytes but must revalidate with the ETag: a CDN then answers 304s, and
    # never serves last version's model against this version's manifest (checksumMismatch).
    headers = {"ETag": etag, "Accept-Ranges": "bytes", "Cache-Control": "public, no-cache"}
    if_none_match = _etags(request.headers.get("If-None-Match", ""))
    if etag in if_none_match or "*" in if_none_match:
        return web.Response(status=304, headers=headers)

    start, end = 0, size - 1
    status = 200
    range_header = request.headers.get("Range")
    if_range = request.headers.get("If-Range")
    if range_header and len(range_header) > MAX_RANGE_HEADER:
        return _error(
            400, ErrorCode.INVALID_REQUEST, f"Range header over {MAX_RANGE_HEADER} characters"
        )
    if (
        range_header
        and _range_applies(range_header)
        and (if_range is None or if_range.strip() == etag)
    ):
        parsed = _parse_range(range_header, size)
        if parsed is None:
            headers["Content-Range"] = f"bytes */{size}"
            return web.Response(status=416, headers=headers)
        start, end = parsed
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"

    response = web.StreamResponse(status=status, headers=headers)
    response.content_type = (
        "model/gltf-binary" if name.endswith((".glb", ".vrm")) else "application/octet-stream"
    )
    response.content_length = end - start + 1 if size else 0
    await response.prepare(request)
    if request.method != "HEAD" and size:
        with await asyncio.to_thread(open, path, "rb") as fh:
            fh.seek(start)
            remaining = end - start + 1
            while remaining > 0:
                chunk = await asyncio.to_thread(fh.read, min(CHUNK, remaining))
                if not chunk:
                    break  # the file shrank under us; the client sees a short body and retries
                await response.write(chunk)
                remaining -= len(chunk)
    await response.write_eof()
    return response


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def _range_applies(header: str) -> bool:
    """Whether to act on a Range header at all. Another unit must be ignored (RFC 9110
    14.2), and a list of ranges is ignored too (we serve single ranges): the answer is
    then the whole file (200), never a 416 for a file that is there."""
    unit, _, spec = header.strip().partition("=")
    return unit.strip().lower() == "bytes" and "," not in spec


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """One ``bytes=a-b`` / ``a-`` / ``-n`` range -> inclusive (start, end), or None (416)."""
    match = _RANGE_RE.match(header.strip())
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":
        length = _number(last)
        if length == 0 or size == 0:
            return None
        return max(size - length, 0), size - 1
    start = _number(first)
    end = min(_number(last), size - 1) if last else size - 1
    if start >= size or end < start:
        return None
    return start, end


def _number(digits: str) -> int:
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) < 18 else _HUGE


class AssetServer:
    """Just the asset service on 127.0.0.1 (tests, scripts):
    ``async with AssetServer(root) as s``."""

    def __init__(
        self,
        root: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        app: web.Application | None = None,
    ) -> None:
        self.app = app or web.Application()
        if app is None:
            add_asset_routes(self.app, root)
        self.host, self.port = host, port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Base URL of the avatar routes, e.g. ``http://127.0.0.1:54321/v1/avatars``."""
        return f"http://{self.host}:{self.port}/v1/avatars"

    async def start(self) -> AssetServer:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]  # the real port when port=0
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> AssetServer:
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()
