"""Several apps on one server (``serve --config apps.toml``), driven by the public SDK."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
import spatius
import websockets

from avatarkit.cli import main as cli
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.protocol import classify

pytestmark = pytest.mark.timeout(40)

APPS = """
[[apps]]
id = "kiosk"
avatars = ["ava"]
max_sessions = 1
max_token_ttl_s = 600

[[apps]]
id = "tutor"
"""


def create_key(path: Path, app: str, capsys, *extra: str) -> str:
    assert cli(["keys", "create", "--config", str(path), "--app", app, *extra]) == 0
    return re.search(r"api key (\S+)", capsys.readouterr().out)[1]


@pytest.fixture
def apps_file(tmp_path: Path, capsys) -> tuple[Path, dict[str, str]]:
    path = tmp_path / "apps.toml"
    path.write_text(APPS)
    return path, {app: create_key(path, app, capsys) for app in ("kiosk", "tutor")}


class Recorder:
    def __init__(self) -> None:
        self.envelopes: list[bytes] = []
        self.ended = asyncio.Event()

    def transport_frames(self, data: bytes, last: bool) -> None:
        self.envelopes.append(data)
        if last:
            self.ended.set()


def sdk(server, app_id: str, key: str, recorder: Recorder | None = None, avatar_id: str = "ava"):
    """A public-SDK session of ``app_id`` (explicit URLs: no region look-up)."""
    return spatius.new_avatar_session(
        avatar_id=avatar_id,
        api_key=key,
        app_id=app_id,
        console_endpoint_url=server.console_url,
        ingress_endpoint_url=server.ingress_url,
        transport_frames=recorder.transport_frames if recorder else None,
        expire_at=datetime.now(UTC) + timedelta(minutes=5),  # kiosk's tokens: at most 600 s
    )


async def token_request(server, key: str, body: dict) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            server.console_url + "/session-tokens", json=body, headers={"X-Api-Key": key}
        ) as response:
            return response.status, await response.json()


async def refused_upgrade(server, app_id: str, token: str) -> tuple[int, dict]:
    """Status and JSON body of an ingress upgrade the server must refuse."""
    headers = {"X-App-ID": app_id, "X-Session-Key": token}
    url = server.ingress_url + "/websocket?id=ava"
    with pytest.raises(websockets.InvalidStatus) as info:
        async with websockets.connect(url, additional_headers=headers):
            pass
    return info.value.response.status_code, json.loads(info.value.response.body)


def code_of(body: dict) -> str:
    return body["errors"][0]["code"]


async def expect_refusal(session) -> spatius.AvatarSDKError:
    await session.init()
    with pytest.raises(spatius.AvatarSDKError) as info:
        await session.start()
    await session.close()
    return info.value


async def test_each_app_gets_its_own_tokens_avatars_and_limits(make_server, apps_file):
    path, keys = apps_file
    server = make_server(apps_file=str(path))

    # Both apps speak, each with its own key, over the public SDK.
    for app_id in ("kiosk", "tutor"):
        recorder = Recorder()
        async with sdk(server, app_id, keys[app_id], recorder) as session:
            await session.send_audio(b"\x10\x00" * 8000, end=True)
            await asyncio.wait_for(recorder.ended.wait(), 5)
        assert len(recorder.envelopes) >= 1

    # Tokens are scoped to the key's app: kiosk's token does not open a tutor session.
    status, body = await token_request(server, keys["kiosk"], {"expireAt": time.time() + 60})
    assert status == 200
    status, refused = await refused_upgrade(server, "tutor", body["sessionToken"])
    assert (status, code_of(refused)) == (400, ErrorCode.APP_ID_MISMATCH)
    # Asking for another app's token with this key, an unknown app, a wrong key.
    status, body = await token_request(server, keys["kiosk"], {"appId": "tutor", "expireAt": 1e10})
    assert (status, code_of(body)) == (400, ErrorCode.APP_ID_MISMATCH)
    status, body = await token_request(server, keys["kiosk"], {"appId": "nope", "expireAt": 1e10})
    assert (status, code_of(body)) == (404, ErrorCode.APP_ID_UNRECOGNIZED)
    forged = keys["kiosk"][:-4] + "AAAA"
    status, body = await token_request(server, forged, {"expireAt": time.time() + 60})
    assert (status, code_of(body)) == (403, "invalidApiKey")

    # The app's token TTL cap (600 s), below the server's 24 h.
    status, body = await token_request(server, keys["kiosk"], {"expireAt": time.time() + 900})
    assert status == 400 and "600 s" in body["errors"][0]["detail"]
    status, _ = await token_request(server, keys["tutor"], {"expireAt": time.time() + 900})
    assert status == 200

    # A token made in process (EmbeddedServer.issue_token) for a file's app.
    status, _ = await refused_upgrade(server, "kiosk", server.issue_token(app_id="tutor"))
    assert status == 400
    with pytest.raises(AvatarKitError) as info:
        server.issue_token(app_id="nope")
    assert info.value.code == ErrorCode.APP_ID_UNRECOGNIZED

    # kiosk may drive only "ava"; tutor any avatar the server serves.
    error = await expect_refusal(sdk(server, "kiosk", keys["kiosk"], avatar_id="kai"))
    assert error.code == spatius.AvatarSDKErrorCode.avatarNotFound
    async with sdk(server, "tutor", keys["tutor"], avatar_id="kai"):
        pass


async def test_app_at_its_session_limit_is_refused_with_concurrent_limit_exceeded(
    make_server, apps_file
):
    path, keys = apps_file
    server = make_server(apps_file=str(path))
    first = sdk(server, "kiosk", keys["kiosk"])
    await first.init()
    await first.start()
    try:
        error = await expect_refusal(sdk(server, "kiosk", keys["kiosk"]))
        # The public SDK has no code of its own for it: it reports the server's code beside
        # its generic one; our classifier (the AvatarKit client) reads the exact code.
        assert error.http_status == 429
        assert error.server_code == ErrorCode.CONCURRENT_LIMIT_EXCEEDED
        assert "max_sessions" in (error.server_detail or "")
        assert classify(error.server_code, error.server_detail or "", http_status=429) == (
            ErrorCode.CONCURRENT_LIMIT_EXCEEDED
        )
        async with sdk(server, "tutor", keys["tutor"]):  # another app is not affected
            pass
    finally:
        await first.close()
    await asyncio.sleep(0.1)  # the server notices the close
    async with sdk(server, "kiosk", keys["kiosk"]):  # the slot is free again
        pass


async def test_key_rotation_without_downtime(make_server, apps_file, capsys):
    path, keys = apps_file
    server = make_server(apps_file=str(path))
    old = keys["kiosk"]
    status, body = await token_request(server, old, {"expireAt": time.time() + 60})
    old_token = body["sessionToken"]
    # A second key while the server runs: both keys work at once.
    new = create_key(path, "kiosk", capsys, "--label", "next")
    for key in (old, new):
        status, _ = await token_request(server, key, {"expireAt": time.time() + 60})
        assert status == 200
    # Revoke the old one: it stops at once, the new one carries on, the old key's
    # outstanding token is refused.
    old_id = re.match(r"ak_([0-9a-f]{8})_", old)[1]
    assert cli(["keys", "revoke", "--config", str(path), "--app", "kiosk", old_id]) == 0
    status, body = await token_request(server, old, {"expireAt": time.time() + 60})
    assert (status, code_of(body)) == (403, "invalidApiKey")
    async with sdk(server, "kiosk", new):
        pass
    status, refused = await refused_upgrade(server, "kiosk", old_token)
    assert status == 400 and "revoked" in refused["errors"][0]["detail"]
    assert classify(code_of(refused), refused["errors"][0]["title"]) == (
        ErrorCode.SESSION_TOKEN_INVALID
    )
    # The last key cannot be revoked (the app would be locked out).
    new_id = re.match(r"ak_([0-9a-f]{8})_", new)[1]
    assert cli(["keys", "revoke", "--config", str(path), "--app", "kiosk", new_id]) == 2
    assert "last key" in capsys.readouterr().err
    # `list` shows ids and labels, never a key or a hash.
    assert cli(["keys", "list", "--config", str(path)]) == 0
    listing = capsys.readouterr().out
    assert new_id in listing and "next" in listing and old_id not in listing
    assert new not in listing and "scrypt" not in listing


async def test_a_broken_edit_keeps_the_last_good_apps(make_server, apps_file, caplog):
    path, keys = apps_file
    server = make_server(apps_file=str(path))
    path.write_text(path.read_text() + "\nmax_sessions = -1\n")  # lands in the last key table
    status, _ = await token_request(server, keys["tutor"], {"expireAt": time.time() + 60})
    assert status == 200
    assert "apps file not reloaded" in caplog.text and "unknown keys" in caplog.text


def test_the_file_stores_only_salted_hashes(apps_file):
    path, keys = apps_file
    text = path.read_text()
    assert all(key not in text for key in keys.values())
    hashes = re.findall(r'hash = "(scrypt\$[^"]+)"', text)
    assert len(hashes) == 2 and len({h.split("$")[4] for h in hashes}) == 2  # own salts


BAD_FILES = [
    ("", "at least one [[apps]]"),
    ("[[apps]]\nid = 'a'\n[[apps]]\nid = 'a'\n", "apps[1].id: 'a' appears twice"),
    ("[[apps]]\nid = 'a b'\n", "apps[0].id: required"),
    ("[[apps]]\nid = 'a'\nmax_session = 3\n", "unknown keys ['max_session']"),
    ("[[apps]]\nid = 'a'\nmax_sessions = -1\n", "apps[0].max_sessions"),
    ("[[apps]]\nid = 'a'\nmax_sessions = true\n", "apps[0].max_sessions"),
    ("[[apps]]\nid = 'a'\nmax_token_ttl_s = 90000\n", "apps[0].max_token_ttl_s"),
    ("[[apps]]\nid = 'a'\navatars = ['../x']\n", "apps[0].avatars"),
    ("[[apps]]\nid = 'a'\n[[apps.keys]]\nid = '0011aabb'\nhash = 'md5$x'\n", "keys[0].hash"),
    (
        "[[apps]]\nid = 'a'\n[[apps.keys]]\nid = '0011aabb'\n"
        "hash = 'scrypt$1048576$32$1$AAAA$AAAAAAAAAAAAAAAAAAAAAA=='\n",
        "out of range",
    ),
    ("[[apps]]\nid = 'a'\n[[apps.keys]]\nid = 'XY'\nhash = 'h'\n", "keys[0].id"),
    ("[[apps]\nid = 'a'\n", "TOML"),
    ("[server]\nport = 1\n", "unknown keys ['server']"),
]


@pytest.mark.parametrize(("text", "why"), BAD_FILES)
def test_a_bad_apps_file_is_refused_naming_the_field(tmp_path, text, why):
    from avatarkit.errors import AvatarKitError
    from avatarkit.server.apps import load_apps

    path = tmp_path / "apps.toml"
    path.write_text(text)
    with pytest.raises(AvatarKitError) as info:
        load_apps(path)
    assert info.value.code == ErrorCode.INVALID_CONFIG
    assert str(path) in info.value.message and why in info.value.message


def test_an_oversized_apps_file_is_refused_unread(tmp_path):
    from avatarkit.errors import AvatarKitError
    from avatarkit.server.apps import load_apps

    path = tmp_path / "apps.toml"
    path.write_bytes(b"#" * (2 << 20))
    with pytest.raises(AvatarKitError, match="larger than 1 MiB"):
        load_apps(path)


def test_serve_refuses_a_bad_config_in_one_line(tmp_path):
    path = tmp_path / "apps.toml"
    path.write_text("[[apps]]\nid = 'a'\nmax_sessions = 'ten'\n")
    result = subprocess.run(
        [sys.executable, "-m", "avatarkit", "serve", "--port", "0", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("avatarkit serve: error [invalidConfig]: ")
    )
    assert "apps[0].max_sessions" in result.stderr


async def test_serve_config_hosts_the_file_apps(apps_file):
    """`avatarkit serve --config` as a user runs it: a real process, its banner, SIGTERM."""
    import os
    import signal

    path, keys = apps_file
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVATARKIT_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "avatarkit", "serve", "--port", "0", "--config", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        banner = []
        assert process.stdout is not None
        for line in process.stdout:
            banner.append(line)
            if line.startswith("Ctrl-C"):
                break
        text = "".join(banner)
        assert "app kiosk: 1 key(s), max_sessions 1" in text and "api_key" not in text
        console = re.search(r"console_endpoint_url = (\S+)", text)[1]
        ingress = re.search(r"ingress_endpoint_url = (\S+)", text)[1]
        server = type("Target", (), {"console_url": console, "ingress_url": ingress})
        deadline = time.monotonic() + 20
        while True:  # the banner comes before the socket listens
            try:
                async with sdk(server, "tutor", keys["tutor"]):
                    break
            except spatius.AvatarSDKError as exc:
                if time.monotonic() > deadline or exc.code != "connectionFailed":
                    raise
                await asyncio.sleep(0.2)
        status, body = await token_request(
            server, keys["tutor"], {"appId": "kiosk", "expireAt": 1e10}
        )
        assert (status, code_of(body)) == (400, ErrorCode.APP_ID_MISMATCH)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
