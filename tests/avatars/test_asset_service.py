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
            status, _, body = await fetch(
                s, url, Range="pages=1-2"
            )  # unknown unit: ignored (RFC 9110)
            assert status == 200 and body == data

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


def test_range_lists_and_other_units_get_the_whole_file_not_416(packages, make_server):
    """RFC 9110 14.2: a Range in another unit must be ignored, and 416 means no range can be
    served; a file that is there answers 200 with the whole body. ``If-None-Match: *`` is 304."""
    manifest = read_manifest(packages / "kai")
    data = (packages / "kai" / manifest.model).read_bytes()

    async def scenario():
        async with make_server(packages) as server, aiohttp.ClientSession() as s:
            url = f"{server.url}/kai/files/{manifest.model}"
            for header in ("bytes=0-1,5-6", "items=0-1", "Bytes=0-1,3-4"):
                status, headers, body = await fetch(s, url, Range=header)
                assert status == 200 and body == data and "Content-Range" not in headers, header
            status, _, _ = await fetch(s, url, Range=f"bytes={len(data)}-")  # truly unsatisfiable
            assert status == 416
            status, _, body = await fetch(s, url, **{"If-None-Match": "*"})
            assert status == 304 and body == b""

    run(scenario())


def test_files_are_revalidated_by_caches_not_served_stale(packages, make_server):
    """File URLs are not versioned: a CDN holding ``max-age`` bytes would hand out an old
    model after the avatar is republished, and every client would fail ``checksumMismatch``."""
    manifest = read_manifest(packages / "kai")

    async def scenario():
        async with make_server(packages) as server, aiohttp.ClientSession() as s:
            _, headers, _ = await fetch(s, f"{server.url}/kai/files/{manifest.model}")
            directives = {d.strip() for d in headers["Cache-Control"].split(",")}
            assert "no-cache" in directives and not any(
                d.startswith("max-age") and d != "max-age=0" for d in directives
            )

    run(scenario())
