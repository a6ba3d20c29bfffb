"""What reaches the app when an avatar is not served: ``avatarNotFound`` naming where it was
looked for, from the manager's load, from a controller's start and from ``avatarkit render``;
never a bare ``connectionFailed``. Real embedded servers on loopback."""

from __future__ import annotations

import shutil
import time

import pytest

from avatarkit.avatar import Avatar
from avatarkit.controller import AvatarController, ConnectionState
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.manager import AvatarManager
from avatarkit.paths import AVATARS_DIR, SPEECH_DIR
from avatarkit.sdk import AvatarSDK

KAI = AVATARS_DIR / "kai" / "kai.glb"


def start_controller(sdk, server, rig, avatar_id: str) -> tuple[AvatarController, list]:
    sdk(server.app_id, ingress_url=server.ingress_url, console_url=server.console_url)
    AvatarSDK.set_session_token(server.issue_token())
    controller = AvatarController(avatar_id, rig.mixer)
    errors: list[AvatarKitError] = []
    controller.on_error = errors.append
    controller.start()
    deadline = time.monotonic() + 10
    settled = (ConnectionState.FAILED, ConnectionState.CONNECTED)
    while controller.connection_state not in settled:
        assert time.monotonic() < deadline, "the controller never settled"
        rig.step(controller)
        time.sleep(0.005)
    rig.step(controller)  # errors reach on_error on a tick
    return controller, errors


async def test_the_managers_load_names_the_service_and_its_folders(make_server, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    server = make_server(avatars=folder)
    with pytest.raises(AvatarKitError) as info:
        await AvatarManager(server.assets_url, tmp_path / "cache").load("nobody")
    assert info.value.code == ErrorCode.AVATAR_NOT_FOUND
    assert server.assets_url in info.value.message and str(folder) in info.value.message
    with pytest.raises(AvatarKitError) as info:  # a local packages folder: that folder
        await AvatarManager(str(folder), tmp_path / "cache").load("nobody")
    assert info.value.code == ErrorCode.AVATAR_NOT_FOUND and str(folder) in info.value.message


def test_a_controller_for_an_unserved_file_hears_avatar_not_found(make_server, sdk, rig, tmp_path):
    shutil.copy(KAI, tmp_path / "Mine.glb")
    mine = Avatar.from_file(tmp_path / "Mine.glb")
    controller, errors = start_controller(sdk, make_server(), rig, mine.id)
    assert controller.connection_state == ConnectionState.FAILED
    assert [e.code for e in errors] == [ErrorCode.AVATAR_NOT_FOUND]
    assert "'mine'" in errors[0].message and "bundled avatars" in errors[0].message
    controller.dispose()
    AvatarSDK.cleanup()
    served = make_server(avatars=mine.source_path)  # no flag but the file itself
    controller, errors = start_controller(sdk, served, rig, mine.id)
    assert controller.connection_state == ConnectionState.CONNECTED and not errors
    controller.dispose()


def test_render_reports_the_refusal_not_connection_failed(tmp_path, monkeypatch):
    """A server that does not serve the file (a misconfigured one) must say so."""
    _render_unserved(tmp_path, monkeypatch)


def test_render_reports_a_refusal_that_lands_while_it_sends(tmp_path, monkeypatch):
    """The refusal arrives before the audio is all sent (a slow client): send() then
    refuses with "not connected", and render must still name the real cause."""
    real_send = AvatarController.send

    def send_once_refused(self, *args, **kwargs):
        deadline = time.monotonic() + 5
        while self.connection_state != ConnectionState.FAILED and time.monotonic() < deadline:
            time.sleep(0.01)
        return real_send(self, *args, **kwargs)

    monkeypatch.setattr(AvatarController, "send", send_once_refused)
    _render_unserved(tmp_path, monkeypatch)


def _render_unserved(tmp_path, monkeypatch) -> None:
    from avatarkit.cli.render import render_video
    from avatarkit.server import embedded

    shutil.copy(KAI, tmp_path / "Mine.glb")
    real_init = embedded.EmbeddedServer.__init__

    def without_avatars(self, *args, **kwargs):
        kwargs.pop("avatars", None)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(embedded.EmbeddedServer, "__init__", without_avatars)
    with pytest.raises(AvatarKitError) as info:
        render_video(
            str(tmp_path / "Mine.glb"), SPEECH_DIR / "greeting.wav", tmp_path / "o.mp4", (64, 48)
        )
    assert info.value.code == ErrorCode.AVATAR_NOT_FOUND, info.value.message
    assert "'mine'" in info.value.message
