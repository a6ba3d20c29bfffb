"""A user's avatars on a real server: ``EmbeddedServer(avatars=DIR)`` / ``serve --avatars``
lists and serves their files and packages, sessions for them speak (public Spatius SDK),
and the folder is untrusted: ``../`` ids, symlinks out, oversized and garbage files."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import aiohttp
import pytest
import websockets
from spatius import AvatarSDKErrorCode
from yarl import URL

from avatarkit.avatar import Avatar
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.manager import AvatarManager
from avatarkit.package import MANIFEST_NAME
from avatarkit.package_build import write_package
from avatarkit.paths import AVATARS_DIR
from avatarkit.server import catalog as catalog_module
from avatarkit.server.apikeys import hash_key, new_key
from avatarkit.server.apps import AppKey, AppPolicy, write_apps

KAI = AVATARS_DIR / "kai" / "kai.glb"  # a real glTF with ARKit morph targets


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """A user's folder: a file with a space in its name, a package, and clutter."""
    root = tmp_path / "avatars"
    root.mkdir()
    shutil.copy(KAI, root / "My Avatar.glb")
    guest = root / "guest"
    guest.mkdir()
    shutil.copy(KAI, guest / "guest.glb")
    write_package(
        guest,
        avatar_id="guest",
        name="Guest",
        version="1",
        model="guest.glb",
        framing={"head_center": [0, 1.6, 0], "camera_distance": 0.9},
    )
    (root / "notes.txt").write_text("not an avatar")
    (root / ".hidden.glb").write_bytes(KAI.read_bytes())
    return root


async def get_json(url: str | URL) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.json(content_type=None)


async def speak(sdk_session, server, recorder, make_speech, avatar_id: str) -> int:
    async with sdk_session(recorder, target=server, avatar_id=avatar_id) as session:
        await session.send_audio(make_speech(0.5), end=True)
        await recorder.wait_end()
    return len(recorder.envelopes)


async def test_a_folder_is_listed_served_and_speaks(
    make_server, library, sdk_session, recorder, make_speech, tmp_path
):
    server = make_server(avatars=library)
    status, body = await get_json(server.assets_url)
    listed = {a["id"]: a for a in body["avatars"]}
    assert status == 200
    assert {"my-avatar", "guest", "ava"} <= set(listed)  # the user's, then the bundled
    assert "hidden" not in listed and listed["my-avatar"]["channels"] > 40
    # The file downloads as a one-file package and opens as Avatar.from_file would.
    manager = AvatarManager(server.assets_url, tmp_path / "cache")
    mine = await manager.load("my-avatar")
    direct = Avatar.from_file(library / "My Avatar.glb")
    assert mine.manifest.model == "my-avatar.glb"
    assert mine.framing == direct.framing and mine.available_channels == direct.available_channels
    assert (await manager.load("guest")).name == "Guest"
    for avatar_id in ("my-avatar", "guest"):
        recorder.envelopes.clear()
        assert await speak(sdk_session, server, recorder, make_speech, avatar_id) > 0


async def test_one_file_and_a_dropped_in_file(
    make_server, library, sdk_session, recorder, make_speech, monkeypatch
):
    monkeypatch.setattr(catalog_module, "RESCAN_S", 0.05)
    one = make_server(avatars=library / "My Avatar.glb")
    _, body = await get_json(one.assets_url)
    assert "my-avatar" in {a["id"] for a in body["avatars"]}
    assert "guest" not in {a["id"] for a in body["avatars"]}  # only what was named
    folder = make_server(avatars=[library])
    shutil.copy(KAI, library / "late.vrm")  # a .vrm is a GLB: served the same way
    time.sleep(0.1)
    status, manifest = await get_json(folder.assets_url + "/late")
    assert status == 200 and manifest["model"] == "late.vrm"
    assert await speak(sdk_session, folder, recorder, make_speech, "late") > 0


def test_a_missing_source_stops_the_start(make_server, tmp_path):
    with pytest.raises(AvatarKitError) as info:
        make_server(avatars=tmp_path / "nope")
    assert info.value.code == ErrorCode.AVATAR_NOT_FOUND and "nope" in info.value.message
    (tmp_path / "face.fbx").write_bytes(b"x")
    with pytest.raises(AvatarKitError) as info:
        make_server(avatars=tmp_path / "face.fbx")
    assert info.value.code == ErrorCode.INCOMPATIBLE_AVATAR_ASSET


async def test_unknown_avatar_names_where_it_looked(make_server, library, sdk_session):
    server = make_server(avatars=library)
    session = sdk_session(target=server, avatar_id="nobody")
    await session.init()
    with pytest.raises(Exception) as info:
        await session.start()
    await session.close()
    assert info.value.code is AvatarSDKErrorCode.avatarNotFound
    assert str(library) in info.value.message and "bundled" in info.value.message
    status, body = await get_json(server.assets_url + "/nobody")
    assert status == 404 and str(library) in body["error"]["message"]


async def test_apps_file_may_name_a_users_avatar(make_server, library, sdk_session, tmp_path):
    (id_a, key_a), (id_b, key_b) = new_key(), new_key()
    apps = tmp_path / "apps.toml"
    policies = [
        AppPolicy("app_a", (AppKey(id_a, hash_key(key_a)),), avatars=frozenset({"my-avatar"})),
        AppPolicy("app_b", (AppKey(id_b, hash_key(key_b)),), avatars=frozenset({"ava"})),
    ]
    write_apps(apps, {p.app_id: p for p in policies})
    server = make_server(avatars=library, apps_file=str(apps))
    async with sdk_session(target=server, avatar_id="my-avatar", api_key=key_a, app_id="app_a"):
        pass
    session = sdk_session(target=server, avatar_id="my-avatar", api_key=key_b, app_id="app_b")
    await session.init()
    with pytest.raises(Exception) as info:
        await session.start()
    await session.close()
    assert info.value.code is AvatarSDKErrorCode.avatarNotFound
    assert "app_b" in info.value.message


# -- hostile folders and requests -----------------------------------------------------------


async def test_traversal_ids_and_file_names_are_refused(make_server, library, tmp_path):
    (tmp_path / "secret.glb").write_bytes(KAI.read_bytes())  # beside the folder, not in it
    server = make_server(avatars=library)
    base = f"{server.base_url}/v1/avatars"
    for raw in ("..%2Fsecret", "%2E%2E", "..", "guest%2F..%2F..%2Fsecret", "GUEST"):
        status, body = await get_json(URL(f"{base}/{raw}", encoded=True))
        assert status == 404 and body["error"]["code"] == "avatarNotFound", raw
    for name in (
        "..%2Fsecret.glb",
        "..%2F..%2Fsecret.glb",
        "%2E%2E",
        MANIFEST_NAME,
        "My%20Avatar.glb",
    ):
        status, _ = await get_json(URL(f"{base}/my-avatar/files/{name}", encoded=True))
        assert status == 404, name
    for avatar_id in ("../secret", "..", "guest/../../secret"):
        with pytest.raises(websockets.InvalidStatus) as info:
            await websockets.connect(
                f"{server.ingress_url}/websocket?id={avatar_id}",
                additional_headers={
                    "X-App-ID": server.app_id,
                    "X-Session-Key": server.issue_token(),
                },
            )
        assert info.value.response.status_code == 404


async def test_symlinks_out_of_the_folder_are_not_served(make_server, library, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(KAI, outside / "stolen.glb")
    shutil.copytree(library / "guest", outside / "pkg")
    os.symlink(outside / "stolen.glb", library / "stolen.glb")
    os.symlink(outside / "pkg", library / "pkg")  # manifest id "guest": refused anyway
    os.symlink(outside, library / "linked")
    os.symlink(library / "My Avatar.glb", library / "alias.glb")  # inside: fine
    os.symlink(outside / "stolen.glb", library / "guest" / "extra.glb")
    server = make_server(avatars=library)
    _, body = await get_json(server.assets_url)
    ids = {a["id"] for a in body["avatars"]}
    assert "stolen" not in ids and {"alias", "my-avatar"} <= ids  # two names, one file
    status, body = await get_json(server.assets_url + "/stolen")
    assert status == 404 and "links outside" in body["error"]["message"]
    status, _ = await get_json(server.assets_url + "/guest/files/extra.glb")
    assert status == 404  # not in its manifest


async def test_oversized_and_garbage_files(make_server, library):
    (library / "junk.glb").write_bytes(b"glTF" + os.urandom(5000))
    big = KAI.stat().st_size - 1  # the real file is one byte over the limit
    server = make_server(avatars=library, max_avatar_bytes=big)
    _, body = await get_json(server.assets_url)
    ids = {a["id"] for a in body["avatars"]}
    assert "my-avatar" not in ids and "junk" not in ids
    status, body = await get_json(server.assets_url + "/my-avatar")
    assert status == 404 and "over the" in body["error"]["message"]
    status, body = await get_json(server.assets_url + "/junk")
    assert status == 422 and body["error"]["code"] == "incompatibleAvatarAsset"
    with pytest.raises(AvatarKitError) as info:  # the client hears the same, at once
        await AvatarManager(server.assets_url, library.parent / "c", retries=0).load("junk")
    assert info.value.code == ErrorCode.INCOMPATIBLE_AVATAR_ASSET


async def test_a_crowded_folder_is_read_up_to_its_limit(make_server, library, monkeypatch):
    monkeypatch.setattr(catalog_module, "MAX_FOLDER_ENTRIES", 3)
    for n in range(6):
        (library / f"z{n}.glb").symlink_to(library / "My Avatar.glb")
    server = make_server(avatars=library)
    _, body = await get_json(server.assets_url)
    ids = [a["id"] for a in body["avatars"]]
    assert len(ids) == len(set(ids))  # each link is an avatar of its own name
    from_folder = set(ids) - {"ava", "kai", "mei", "noor"}
    assert 0 < len(from_folder) <= 3  # bounded work, whatever the folder holds


async def test_a_package_file_grown_past_its_manifest_is_cut_there(make_server, library):
    declared = (library / "guest" / "guest.glb").stat().st_size
    with open(library / "guest" / "guest.glb", "ab") as fh:
        fh.write(b"\0" * 1_000_000)  # the package's size limit counted the declared bytes
    server = make_server(avatars=library, max_avatar_bytes=declared + 1000)
    async with aiohttp.ClientSession() as http:
        async with http.get(server.assets_url + "/guest/files/guest.glb") as resp:
            assert resp.status == 200 and len(await resp.read()) == declared
    # The declared bytes are the package (the checksum says so): the client loads it.
    assert (await AvatarManager(server.assets_url, library.parent / "c").load("guest")).id
