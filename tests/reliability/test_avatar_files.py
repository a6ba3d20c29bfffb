"""A downloaded avatar is untrusted input: hostile packages through ``AvatarManager.load``
against a real asset server on loopback. Each fails with one coded error, opens nothing
outside the package, writes no byte past a declared size and leaves nothing cached."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.manager import AvatarManager
from avatarkit.package import MANIFEST_NAME, FileEntry, Manifest, parse_manifest, read_manifest
from avatarkit.paths import AVATARS_DIR
from avatarkit.server.assets import AssetServer
from engine.gltf_write import pack_glb, unpack_glb

pytestmark = pytest.mark.timeout(60)
KAI = (AVATARS_DIR / "kai" / "kai.glb").read_bytes()


def leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir() if p.name != ".locks") if cache.is_dir() else []


def package(root: Path, avatar_id: str, files: dict[str, bytes], model: str) -> Manifest:
    """A package whose manifest honestly describes ``files`` (checksums pass)."""
    folder = root / avatar_id
    folder.mkdir(parents=True)
    entries = []
    for name, data in files.items():
        (folder / name).write_bytes(data)
        entries.append(FileEntry(name, len(data), hashlib.sha256(data).hexdigest()))
    manifest = Manifest(
        id=avatar_id, name=avatar_id, version="1", model=model, files=tuple(entries), channels=()
    )
    (folder / MANIFEST_NAME).write_bytes(manifest.to_bytes())
    return manifest


def kai_with(change) -> bytes:
    doc, blob = unpack_glb(KAI)
    change(doc)
    return pack_glb(doc, blob)


def triangle_gltf(uri: str) -> bytes:
    """A .gltf whose one buffer is ``uri`` (44 bytes: a triangle and its indices)."""
    doc = {
        "asset": {"version": "2.0"},
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}}]}],
        "accessors": [{"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3"}],
        "bufferViews": [{"buffer": 0, "byteLength": 36}],
        "buffers": [{"byteLength": 36, "uri": uri}],
    }
    return json.dumps(doc).encode()


async def load(url: str, cache: Path, avatar_id: str, **kwargs) -> AvatarKitError | None:
    manager = AvatarManager(url, cache, retries=1, backoff=0.01, timeout=5, **kwargs)
    try:
        await manager.load(avatar_id)
    except AvatarKitError as exc:
        return exc
    return None


@pytest.mark.parametrize(
    "uri", ["../../../../etc/passwd", "/proc/self/environ", "file:///etc/passwd"]
)
async def test_a_buffer_uri_outside_the_package_is_never_opened(tmp_path, opened, uri):
    package(tmp_path / "root", "sneaky", {"sneaky.gltf": triangle_gltf(uri)}, "sneaky.gltf")
    cache = tmp_path / "cache"
    async with AssetServer(tmp_path / "root") as server:
        error = await load(server.url, cache, "sneaky")
    assert error is not None and error.code is ErrorCode.INCOMPATIBLE_AVATAR_ASSET
    assert "gltfUriNotAllowed" in error.message
    assert not [p for p in opened if not p.is_relative_to(tmp_path.resolve())], opened
    assert leftovers(cache) == []


def _cycle(doc: dict) -> None:
    doc["nodes"][4]["children"] = [0]  # Body -> Avatar, the root above it


def _huge_accessor(doc: dict) -> None:
    doc["accessors"][0] = {
        "componentType": 5126,
        "count": 2**26,
        "type": "VEC3",
    }  # 768 MiB of zeros


@pytest.mark.parametrize(
    "change, engine_code",
    [(_cycle, "invalidGltf"), (_huge_accessor, "gltfLimitExceeded")],
    ids=["cycle", "huge-accessor"],
)
async def test_a_hostile_glb_is_refused_and_not_cached(tmp_path, change, engine_code):
    package(tmp_path / "root", "hostile", {"hostile.glb": kai_with(change)}, "hostile.glb")
    cache = tmp_path / "cache"
    async with AssetServer(tmp_path / "root") as server:
        start = time.perf_counter()
        error = await load(server.url, cache, "hostile")
        elapsed = time.perf_counter() - start
    assert error is not None and error.code is ErrorCode.INCOMPATIBLE_AVATAR_ASSET
    assert engine_code in error.message
    assert elapsed < 5
    assert leftovers(cache) == []  # never committed: not "cached as verified"
    assert AvatarManager("http://127.0.0.1:9/v1/avatars", cache).retrieve("hostile") is None


async def test_a_hostile_package_already_in_the_cache_is_removed(tmp_path):
    """A package cached before validation existed: checksums pass, the model does not."""
    manifest = package(
        tmp_path / "root", "hostile", {"hostile.glb": kai_with(_cycle)}, "hostile.glb"
    )
    cache = tmp_path / "cache"
    shutil.copytree(tmp_path / "root" / "hostile", cache / "hostile")
    assert read_manifest(cache / "hostile") == manifest
    async with AssetServer(tmp_path / "root") as server:
        error = await load(server.url, cache, "hostile")
    assert error is not None and error.code is ErrorCode.INCOMPATIBLE_AVATAR_ASSET
    assert leftovers(cache) == []


# -- sizes ---------------------------------------------------------------------------------
STREAM_CAP = 24 << 20  # the test server gives up here, so a regression cannot fill the disk


def lying_server(declared_size: int, body_prefix: bytes, sha256: str, stats: dict) -> AssetServer:
    """Declares one file of ``declared_size`` bytes, then streams ``body_prefix`` and zeros."""
    manifest = {
        "format": "avatarkit-avatar/1",
        "id": "liar",
        "model": "liar.glb",
        "files": [{"name": "liar.glb", "size": declared_size, "sha256": sha256}],
    }

    async def get_manifest(request: web.Request) -> web.Response:
        return web.json_response(manifest)

    async def get_file(request: web.Request) -> web.StreamResponse:
        stats["file_requests"] = stats.get("file_requests", 0) + 1
        response = web.StreamResponse()
        await response.prepare(request)
        sent = 0
        with_prefix = body_prefix + bytes(STREAM_CAP - len(body_prefix))
        while sent < STREAM_CAP:
            try:
                await response.write(with_prefix[sent : sent + 65536])
            except ConnectionError:
                break  # the client stopped reading: what we want
            sent += 65536
        return response

    app = web.Application()
    app.router.add_get("/v1/avatars/liar", get_manifest)
    app.router.add_get("/v1/avatars/liar/files/liar.glb", get_file)
    return AssetServer(app=app)


@pytest.fixture
def written(monkeypatch):
    """Bytes the manager wrote, per file name."""
    from avatarkit import avatar_cache

    totals: dict[str, int] = {}
    real = avatar_cache.write_chunk

    def spy(fh, data):
        name = Path(fh.name).name
        totals[name] = totals.get(name, 0) + len(data)
        return real(fh, data)

    monkeypatch.setattr(avatar_cache, "write_chunk", spy)
    return totals


async def test_a_manifest_declaring_a_terabyte_is_refused_before_any_download(tmp_path, written):
    stats: dict = {}
    cache = tmp_path / "cache"
    async with lying_server(10**12, b"", "0" * 64, stats) as server:
        error = await load(server.url, cache, "liar")
    assert error is not None and error.code is ErrorCode.AVATAR_TOO_LARGE
    assert stats.get("file_requests", 0) == 0 and written.get("liar.glb", 0) == 0
    assert leftovers(cache) == []


async def test_max_package_size_is_configurable(tmp_path):
    async with AssetServer() as server:
        error = await load(server.url, tmp_path / "small", "kai", max_package_size=1 << 20)
        assert (
            error is not None
            and error.code is ErrorCode.AVATAR_TOO_LARGE
            and "kai" in error.message
        )
        assert await load(server.url, tmp_path / "default", "kai") is None


async def test_zeros_past_the_declared_size_are_never_written(tmp_path, written):
    """An honest manifest, a server that appends zeros for ever: the declared bytes are kept
    (and verified), nothing past them reaches the disk."""
    stats: dict = {}
    async with lying_server(len(KAI), KAI, hashlib.sha256(KAI).hexdigest(), stats) as server:
        error = await load(server.url, tmp_path / "cache", "liar")
    assert error is None
    assert written["liar.glb"] == len(KAI)


async def test_a_stream_of_zeros_is_a_checksum_mismatch_bounded_by_the_declared_size(
    tmp_path, written
):
    stats: dict = {}
    declared = 4 << 20
    cache = tmp_path / "cache"
    async with lying_server(
        declared, b"", hashlib.sha256(b"something else").hexdigest(), stats
    ) as server:
        error = await load(server.url, cache, "liar")
    assert error is not None and error.code is ErrorCode.CHECKSUM_MISMATCH
    assert written["liar.glb"] <= declared * stats["file_requests"]
    assert leftovers(cache) == []


# -- manifests -----------------------------------------------------------------------------
def manifest_server(body: bytes) -> AssetServer:
    async def get_manifest(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/v1/avatars/deep", get_manifest)
    return AssetServer(app=app)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"id": "deep", "extra": ' + b"{" * 5000 + b"}" * 5000 + b"}",
        b" " * (3 << 20),
    ],
    ids=["deep-array", "deep-extra", "3-MiB-body"],
)
async def test_a_hostile_manifest_is_invalid_metadata_not_unknown(tmp_path, body):
    async with manifest_server(body) as server:
        error = await load(server.url, tmp_path / "cache", "deep")
    assert error is not None and error.code is ErrorCode.INVALID_AVATAR_METADATA


def test_a_deeply_nested_manifest_on_disk_is_invalid_metadata(tmp_path):
    (tmp_path / "deep").mkdir()
    (tmp_path / "deep" / MANIFEST_NAME).write_bytes(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(AvatarKitError) as info:
        read_manifest(tmp_path / "deep")
    assert info.value.code is ErrorCode.INVALID_AVATAR_METADATA
    assert AvatarManager("http://127.0.0.1:9/v1/avatars", tmp_path).retrieve("deep") is None


def test_the_reference_avatar_still_loads_whole():
    """The validator admits the bundled avatars unchanged (every vertex, every target)."""
    from avatarkit.avatar import Avatar

    avatar = Avatar.from_package(AVATARS_DIR / "kai")
    face = avatar.asset.meshes[0]
    assert len(face.target_names) == 52 and np.isfinite(avatar.asset.bounds()[1]).all()


MANIFEST_BYTES = (AVATARS_DIR / "kai" / MANIFEST_NAME).read_bytes()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, len(MANIFEST_BYTES) - 1), st.integers(1, 255)),
        min_size=1,
        max_size=8,
    ),
    st.integers(0, len(MANIFEST_BYTES)),
)
def test_mutated_manifests_parse_or_fail_with_a_code(flips, cut):
    """Byte flips and cuts of a real manifest: a Manifest or ``invalidAvatarMetadata``."""
    data = bytearray(MANIFEST_BYTES[:cut] if cut else MANIFEST_BYTES)
    for at, xor in flips:
        if at < len(data):
            data[at] ^= xor
    try:
        parse_manifest(bytes(data), "mutant")
    except AvatarKitError as exc:
        assert exc.code is ErrorCode.INVALID_AVATAR_METADATA
