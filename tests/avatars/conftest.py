"""Fixtures for the avatar tests: a packages root and a real asset server with injectable faults."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest
from aiohttp import web

from avatarkit.paths import AVATARS_DIR
from avatarkit.server.assets import AssetServer, add_asset_routes

sys.path.insert(0, str(Path(__file__).parent))  # avatar_files: third-party-shaped files

AVATAR_ID = "kai"  # any bundled avatar works; one is enough for the transport tests


@pytest.fixture
def packages(tmp_path: Path) -> Path:
    """A private copy of one bundled package (tests may tamper with it)."""
    root = tmp_path / "packages"
    shutil.copytree(
        AVATARS_DIR / AVATAR_ID, root / AVATAR_ID, ignore=shutil.ignore_patterns("*.py")
    )
    return root


class Faults:
    """What the next file responses do wrong, and a log of every request the server saw."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.drop = 0  # responses cut off halfway (connection closed)
        self.corrupt = 0  # responses with one byte flipped (-1: every one)
        self.chunk_delay = 0.0  # seconds between 16 KiB chunks (a slow server)
        self.manifest_status: int | None = None  # force an HTTP status for manifest requests

    def file_requests(self) -> list[tuple[str, str | None]]:
        return [r for r in self.requests if "/files/" in r[0]]


def faulty_app(root: Path, faults: Faults) -> web.Application:
    @web.middleware
    async def inject(request: web.Request, handler):
        faults.requests.append((request.path, request.headers.get("Range")))
        is_file = "/files/" in request.path
        if not is_file and faults.manifest_status and request.path.count("/") == 3:
            return web.Response(status=faults.manifest_status)
        if not is_file or not (faults.drop or faults.corrupt or faults.chunk_delay):
            return await handler(request)
        avatar_id, name = request.match_info["avatar_id"], request.match_info["name"]
        data = (root / avatar_id / name).read_bytes()
        start = 0
        status = 200
        if request.headers.get("Range"):  # resumes: "bytes=N-"
            start = int(request.headers["Range"].split("=")[1].split("-")[0])
            status = 206
        body = bytearray(data[start:])
        if faults.corrupt:
            body[len(body) // 2] ^= 0xFF
            faults.corrupt -= faults.corrupt > 0
        headers = (
            {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"} if status == 206 else {}
        )
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = len(body)
        await response.prepare(request)
        cut = len(body) // 2 if faults.drop else len(body)
        for i in range(0, cut, 16384):
            await response.write(bytes(body[i : min(i + 16384, cut)]))
            if faults.chunk_delay:
                await asyncio.sleep(faults.chunk_delay)
        if faults.drop:
            faults.drop -= 1
            request.transport.close()  # mid-file: the client sees a short body
            return response
        await response.write_eof()
        return response

    app = web.Application(middlewares=[inject])
    add_asset_routes(app, root)
    return app


@pytest.fixture
def faults() -> Faults:
    return Faults()


@pytest.fixture
def make_server(faults: Faults):
    """``async with make_server(root) as server``: a real server on 127.0.0.1, port 0."""

    def make(root: Path) -> AssetServer:
        return AssetServer(app=faulty_app(root, faults))

    return make
