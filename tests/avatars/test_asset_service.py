"""The asset service over real HTTP on loopback: list, manifest, files, Range, ETag, traversal."""

from __future__ import annotations

import asyncio
import hashlib
import json

import aiohttp
import pytest

from avatarkit.package import read_manifest
from avatarkit.server.assets import AssetServer, _parse_range

pytestmark = pytest.mark.timeout(30)


def run(coro):
    return asyncio.run(coro)


async def fetch(session, url, **headers):
    async with session.get(url, headers=headers) as resp:
        return resp.status, resp.headers.copy(), await resp.read()  # case-insensitive


def test_list_and_manifest_of_bundled_packages():
    async def scenario():
        async with AssetServer() as server, aiohttp.ClientSession() as s:
            status, _, body = await fetch(s, server.url)
            assert status == 200
            avatars = json.loads(body)["avatars"]
            ids = [a["id"] for a in avatars]
            assert len(ids) >= 3 and ids == sorted(ids)
            status, headers, body = await fetch(s, f"{server.url}/{ids[0]}")
            assert status == 200 and headers["Content-Type"].startswith("application/json")
            manifest = json.loads(body)
            assert manifest["id"] == ids[0] and len(manifest["blendshapes"]["channels"]) == 52

    run(scenario())


def test_file_full_range_etag_and_not_modified(packages, make_server):
    manifest = read_manifest(packages / "kai")
    data = (packages / "kai" / manifest.model).read_bytes()

    async def scenario():
        async with make_server(packages) as server, aiohttp.ClientSession() as s:
            url = f"{server.url}/kai/files/{manifest.model}"
            status, headers, body = await fetch(s, url)
            assert status == 200 and body == data
            assert int(headers["Content-Length"]) == len(data)
            assert headers["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'
            assert headers["Accept-Ranges"] == "bytes"

            status, headers, body = await fetch(s, url, Range="bytes=10-19")
            assert status == 206 and body == data[10:20]
            assert headers["Content-Range"] == f"bytes 10-19/{len(data)}"
            status, _, body = await fetch(s, url, Range="bytes=-7")
            assert status == 206 and body == data[-7:]
            status, _, body = await fetch(s, url, Range=f"bytes={len(data) - 5}-")
            assert status == 206 and body == data[-5:]
            status, headers, _ = await fetch(s, url, Range=f"bytes={len(data)}-")
            assert status == 416 and headers["Content-Range"] == f"bytes */{len(data)}"
            status, _, _ = await fetch(s, url, Range="pages=1-2")
            assert status == 416

            etag = f'"{manifest.files[0].sha256}"'
            status, _, body = await fetch(s, url, **{"If-None-Match": etag})
            assert status == 304 and body == b""
            # If-Range with a stale validator: the whole file, not a range of something else.
            status, _, body = await fetch(s, url, Range="bytes=0-9", **{"If-Range": '"stale"'})
            assert status == 200 and body == data

    run(scenario())


@pytest.mark.parametrize(
    "path",
    [
        "/v1/avatars/nobody",
        "/v1/avatars/kai/files/manifest.json",
        "/v1/avatars/kai/files/..%2Fkai%2Fmanifest.json",
        "/v1/avatars/kai/files/..%2F..%2Fsecret.txt",
        "/v1/avatars/..%2Fpackages/files/secret.txt",
        "/v1/avatars/kai/files/%2Fetc%2Fpasswd",
        "/v1/avatars/KAI",
    ],
)
def test_unknown_ids_and_path_traversal_are_404(packages, make_server, path):
    (packages.parent / "secret.txt").write_text("do not serve")

    async def scenario():
        async with make_server(packages) as server, aiohttp.ClientSession() as s:
            status, _, body = await fetch(s, f"http://127.0.0.1:{server.port}{path}")
            assert status == 404
            assert b"do not serve" not in body
            assert json.loads(body)["error"]["code"] in ("avatarNotFound", "avatarAssetsMissing")

    run(scenario())


def test_parse_range():
    assert _parse_range("bytes=0-0", 10) == (0, 0)
    assert _parse_range("bytes=5-100", 10) == (5, 9)
    assert _parse_range("bytes=-3", 10) == (7, 9)
    assert _parse_range("bytes=-30", 10) == (0, 9)
    for bad in ("bytes=10-", "bytes=5-4", "bytes=-0", "bytes=-", "bytes=1-2,4-5", "items=0-1"):
        assert _parse_range(bad, 10) is None, bad
