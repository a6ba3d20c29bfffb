"""``Configuration.assets_url``: the shared manager loads from the server the SDK points at."""

from __future__ import annotations

import pytest

from avatarkit.errors import AvatarKitError
from avatarkit.manager import AvatarManager, LoadProgress, LoadState
from avatarkit.paths import AVATARS_DIR
from avatarkit.sdk import AvatarSDK, Configuration, assets_url_for


@pytest.fixture(autouse=True)
def _clean(monkeypatch, tmp_path):
    monkeypatch.delenv("AVATARKIT_ASSET_URL", raising=False)
    monkeypatch.setenv("AVATARKIT_CACHE_DIR", str(tmp_path / "cache"))  # never the user's cache
    yield
    AvatarSDK.cleanup()
    AvatarManager._shared = None


def test_derived_from_the_ingress_url():
    assert (
        assets_url_for("ws://127.0.0.1:40123/v2/driveningress")
        == "http://127.0.0.1:40123/v1/avatars"
    )
    assert (
        assets_url_for("wss://avatars.example.com/v2/driveningress")
        == "https://avatars.example.com/v1/avatars"
    )
    config = Configuration(ingress_url="ws://10.0.0.5:9000/v2/driveningress")
    assert config.resolved_assets_url == "http://10.0.0.5:9000/v1/avatars"
    moved = config.with_changes(ingress_url="ws://10.0.0.6:9000/v2/driveningress")
    assert moved.resolved_assets_url == "http://10.0.0.6:9000/v1/avatars"  # follows, not frozen
    assert Configuration(assets_url=str(AVATARS_DIR)).resolved_assets_url == str(AVATARS_DIR)


def test_environment_overrides_the_derived_url(monkeypatch):
    monkeypatch.setenv("AVATARKIT_ASSET_URL", "/srv/avatars")
    assert Configuration().resolved_assets_url == "/srv/avatars"
    assert Configuration(assets_url="/mine").resolved_assets_url == "/mine"  # explicit wins


@pytest.mark.parametrize("url", ["127.0.0.1:8765", ..., None])
def test_a_malformed_ingress_url_fails_at_initialize(url):
    with pytest.raises(AvatarKitError) as info:  # coded, not an AttributeError from urllib
        AvatarSDK.initialize("app", Configuration(ingress_url=url))
    assert info.value.code == "invalidRequest"


@pytest.mark.timeout(60)
def test_readme_stage_two_against_an_embedded_server(server):
    """The README's stage 2 verbatim: no URL besides the ingress, a server on a random port."""
    AvatarSDK.initialize(
        server.app_id, Configuration(ingress_url=server.ingress_url, audio_device="virtual")
    )
    reports: list[LoadProgress] = []
    avatar = AvatarManager.shared().load_blocking("ava", on_progress=reports.append)
    assert avatar.id == "ava"
    assert AvatarManager.shared().base_url == server.assets_url
    assert reports[-1].state == LoadState.COMPLETED
    # initializing again with the same server keeps the manager and its loaded avatars
    AvatarSDK.initialize(
        server.app_id, Configuration(ingress_url=server.ingress_url, audio_device="virtual")
    )
    assert AvatarManager.shared().retrieve("ava") is avatar


def test_local_folder():
    AvatarSDK.initialize("app", Configuration(assets_url=str(AVATARS_DIR), audio_device="virtual"))
    assert AvatarManager.shared().load_blocking("ava").id == "ava"


def test_progress_prints_one_readable_line():
    assert str(LoadProgress("ava", LoadState.DOWNLOADING, 0.4)) == "ava: downloading 40%"
    failed = LoadProgress("ava", LoadState.FAILED, 0.5, AvatarKitError("diskFull", "no space"))
    assert str(failed) == "ava: failed 50% ([diskFull] no space)"
