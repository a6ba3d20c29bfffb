"""Tokens, secrets, origins and per-address limits (issue 8, security)."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import socket
import subprocess
import sys
import time

import aiohttp
import jwt
import pytest
import websockets
from reliability_helpers import (
    AVATAR,
    connect,
    expected_frames,
    receive_utterance,
    refusal_code,
    speech_pcm,
)

from avatarkit.errors import ErrorCode
from avatarkit.protocol import encode_audio
from avatarkit.server import ServerConfig

pytestmark = pytest.mark.timeout(40)


async def test_secrets_never_reach_a_log_or_the_client(make_server, caplog):
    for name in ("", "avatarkit", "aiohttp"):  # everything any logger says, our own and aiohttp's
        caplog.set_level(logging.DEBUG, logger=name)
    server = make_server()
    received = bytearray()
    async with aiohttp.ClientSession() as http:
        resp = await http.post(
            server.console_url + "/session-tokens",
            headers={"X-Api-Key": server.api_key},
            json={"expireAt": int(time.time()) + 600},
        )
        body = await resp.read()
        received += body
        token = (await resp.json())["sessionToken"]
    ws = await connect(server, token=token)
    pcm = speech_pcm(1.0)
    await ws.send(encode_audio("r1", pcm, end=True))
    assert len(await receive_utterance(ws, "r1")) == expected_frames(len(pcm))
    await ws.send(b"\xff garbage")  # an error path logs too
    received += await asyncio.wait_for(ws.recv(), 5)
    await ws.close()
    await asyncio.sleep(0.2)
    key = server.config.signing_key()
    secrets = [server.api_key, key.hex(), key.decode("latin-1")]
    # Everything but this test's own websocket client (whose DEBUG log echoes its headers).
    records = [r for r in caplog.records if not r.name.startswith("websockets.client")]
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.args}" for r in records)
    assert any(r.name.startswith("avatarkit.server") for r in records), (
        "nothing logged: the test would mean nothing"
    )
    for secret in secrets:
        assert secret not in logged
        assert secret.encode("latin-1") not in bytes(received)
    assert token not in logged  # the session token is a bearer credential too
    assert (
        jwt.decode(token, options={"verify_signature": False})["app"] == server.app_id
    )  # no key inside


def test_comparisons_are_timing_safe():
    from jwt import algorithms

    from avatarkit.server.apikeys import verify_key
    from avatarkit.server.apps import AppRegistry

    # The one-app key, the cache of verified keys, and an apps file's scrypt hashes.
    assert inspect.getsource(AppRegistry.authenticate).count("hmac.compare_digest(") == 2
    assert "hmac.compare_digest(" in inspect.getsource(verify_key)
    # Token signatures are checked by PyJWT, which compares HMACs in constant time.
    assert "compare_digest" in inspect.getsource(algorithms.HMACAlgorithm.verify)


@pytest.mark.parametrize("forge", ["other_key", "alg_none", "tampered", "expired", "other_app"])
async def test_forged_tampered_expired_and_foreign_tokens_are_refused(server, forge):
    now = int(time.time())
    claims = {
        "app": server.app_id,
        "exp": now + 600,
        "iat": now,
        "jti": "x" * 32,
        "scope": "motion:stream",
    }
    key = server.config.signing_key()
    if forge == "other_key":
        token = jwt.encode(claims, b"k" * 32, algorithm="HS256")
    elif forge == "alg_none":
        token = jwt.encode(claims, None, algorithm="none")
    elif forge == "tampered":  # a valid token whose claims were edited (longer expiry)
        head, _, sig = server.issue_token(60).split(".")
        body = jwt.utils.base64url_encode(
            jwt.api_jws.json.dumps({**claims, "exp": now + 86400}).encode()
        ).decode()
        token = f"{head}.{body}.{sig}"
    elif forge == "expired":
        token = jwt.encode({**claims, "exp": now - 5}, key, algorithm="HS256")
    else:
        token = jwt.encode({**claims, "app": "app_someone_else"}, key, algorithm="HS256")
    with pytest.raises(websockets.InvalidStatus) as info:
        await connect(server, token=token, configure=False)
    expected = {"expired": ErrorCode.SESSION_TOKEN_EXPIRED, "other_app": ErrorCode.APP_ID_MISMATCH}
    assert refusal_code(info.value)[1] is expected.get(forge, ErrorCode.SESSION_TOKEN_INVALID)
    assert server.active_sessions == 0


async def _closed(server) -> None:
    deadline = time.monotonic() + 5
    while server.active_sessions and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


async def test_tokens_are_single_use_by_default(make_server):
    server = make_server()
    token = server.issue_token()
    first = await connect(server, token=token)
    for _ in range(2):  # while the first connection lives, then after it closed: a replay
        with pytest.raises(websockets.InvalidStatus) as info:
            await connect(server, token=token, configure=False)
        assert refusal_code(info.value) == (400, ErrorCode.SESSION_TOKEN_INVALID)
        assert b"already used" in info.value.response.body
        await first.close()
        await _closed(server)
    await (await connect(server)).close()  # a fresh token from the Console API works


async def test_reusable_tokens_back_one_live_connection(make_server):
    server = make_server(single_use_tokens=False)
    token = server.issue_token()
    first = await connect(server, token=token)
    with pytest.raises(websockets.InvalidStatus) as info:
        await connect(server, token=token, configure=False)  # same token while the first lives
    assert refusal_code(info.value) == (400, ErrorCode.SESSION_TOKEN_INVALID)
    await first.close()
    await _closed(server)
    again = await connect(server, token=token)  # reconnect with it until it expires
    await again.close()


async def test_default_catalog_refuses_unknown_avatars(make_server):
    server = make_server()
    with pytest.raises(websockets.InvalidStatus) as info:
        await connect(server, avatar="demo", configure=False)
    assert refusal_code(info.value) == (404, ErrorCode.AVATAR_NOT_FOUND)
    await (await connect(server, avatar=AVATAR)).close()
    relaxed = make_server(any_avatar=True)
    await (await connect(relaxed, avatar="demo")).close()


async def test_browser_origins_need_the_allow_list(make_server):
    closed = make_server()
    with pytest.raises(websockets.InvalidStatus) as info:
        await connect(closed, origin="https://evil.example", configure=False)
    assert info.value.response.status_code == 403
    assert "access-control-allow-origin" not in {k.lower() for k in info.value.response.headers}
    await (await connect(closed)).close()  # no Origin (an app, a backend): unaffected
    opened = make_server(allowed_origins=("https://app.example",))
    await (await connect(opened, origin="https://app.example")).close()
    with pytest.raises(websockets.InvalidStatus):
        await connect(opened, origin="https://other.example", configure=False)


async def test_console_api_refuses_browsers_and_sends_no_cors(server):
    url = server.console_url + "/session-tokens"
    body = {"expireAt": int(time.time()) + 60}
    async with aiohttp.ClientSession() as http:
        for method in ("OPTIONS", "POST"):
            async with http.request(
                method,
                url,
                json=body,
                headers={
                    "X-Api-Key": server.api_key,
                    "Origin": "https://app.example",
                    "Access-Control-Request-Method": "POST",
                },
            ) as resp:
                assert resp.status in (403, 405)
                assert not [h for h in resp.headers if h.lower().startswith("access-control-")]
        async with http.post(url, json=body, headers={"X-Api-Key": server.api_key}) as resp:
            assert resp.status == 200  # the same request from a backend


async def test_sessions_per_address_are_limited(make_server):
    server = make_server(max_connections_per_ip=2)
    first, second = await connect(server), await connect(server)
    with pytest.raises(websockets.InvalidStatus) as info:
        await connect(server, configure=False)
    assert refusal_code(info.value) == (429, ErrorCode.CONCURRENT_LIMIT_EXCEEDED)
    await first.close()
    deadline = time.monotonic() + 5
    while server.active_sessions > 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    third = await connect(server)  # a slot freed by the close
    await asyncio.gather(second.close(), third.close())


def _outward_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))  # no packet is sent: just picks the interface
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


async def test_serve_binds_loopback_by_default_and_wires_its_security_flags():
    assert ServerConfig().host == "127.0.0.1"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "avatarkit",
            "serve",
            "--port",
            "0",
            "--any-avatar",
            "--allow-origin",
            "https://app.example",
            "--max-per-ip",
            "1",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        banner = {}
        for _ in range(7):
            line = process.stdout.readline()
            if "=" in line:
                key, value = (part.strip() for part in line.split("=", 1))
                banner[key] = value
            elif "http://" in line:
                assert "http://127.0.0.1:" in line  # no --host: loopback
                port = int(line.split("http://127.0.0.1:")[1].split()[0])
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "server did not come up"
                await asyncio.sleep(0.1)
        outward = _outward_address()
        if outward is not None:  # reachable on loopback only
            with pytest.raises(OSError):
                socket.create_connection((outward, port), timeout=1).close()

        class Target:  # what connect() needs
            app_id = banner["app_id"]

            def issue_token(self) -> str:
                import jwt as pyjwt

                from avatarkit.server.config import ServerConfig as Config

                key = Config(api_key=banner["api_key"], app_id=self.app_id).signing_key()
                now = int(time.time())
                return pyjwt.encode(
                    {
                        "app": self.app_id,
                        "exp": now + 60,
                        "iat": now,
                        "jti": os.urandom(8).hex(),
                        "scope": "motion:stream",
                    },
                    key,
                    algorithm="HS256",
                )

        target = Target()
        ws = await connect(
            target, port=port, avatar="demo", origin="https://app.example"
        )  # --any-avatar, --allow-origin
        with pytest.raises(websockets.InvalidStatus) as info:
            await connect(target, port=port, configure=False)
        assert refusal_code(info.value) == (
            429,
            ErrorCode.CONCURRENT_LIMIT_EXCEEDED,
        )  # --max-per-ip 1
        await ws.close()
    finally:
        process.terminate()
        process.wait(15)
