"""Helpers shared by the reliability tests (importable: conftest puts this folder on sys.path)."""

from __future__ import annotations

import asyncio
import math

import websockets

from avatarkit.errors import ErrorCode
from avatarkit.proto import wire_pb2 as pb
from avatarkit.protocol import animation_frames, classify, decode_envelope, encode_configure
from avatarkit.testing import speech_like_pcm as speech_pcm  # noqa: F401  (re-exported)

AVATAR = "ava"  # a bundled avatar: the server's default catalog accepts it


def expected_frames(n_bytes: int, rate: int = 16000, fps: int = 30) -> int:
    return math.ceil(n_bytes // 2 * fps / rate)


async def connect(
    server,
    *,
    token: str | None = None,
    configure: bool = True,
    port: int | None = None,
    avatar: str = AVATAR,
    **options,
):
    """A raw websocket session (our encoders, no SDK in between)."""
    headers = {"X-App-ID": server.app_id, "X-Session-Key": token or server.issue_token()}
    url = f"ws://127.0.0.1:{port or server.port}/v2/driveningress/websocket?id={avatar}"
    ws = await websockets.connect(url, additional_headers=headers, **options)
    if configure:
        await ws.send(encode_configure(16000))
        assert (
            decode_envelope(await asyncio.wait_for(ws.recv(), 5)).type
            == pb.MESSAGE_SERVER_CONFIRM_SESSION
        )
    return ws


async def receive_utterance(ws, req_id: str, timeout: float = 10.0) -> list:
    """Frames of ``req_id`` up to its end=true message (errors fail the test)."""
    frames = []
    while True:
        envelope = decode_envelope(await asyncio.wait_for(ws.recv(), timeout))
        if envelope.type == pb.MESSAGE_SERVER_ERROR:
            err = envelope.server_error
            raise AssertionError(f"{classify(err.code, err.message)}: {err.message}")
        got_req, got, end = animation_frames(envelope)
        assert got_req == req_id
        frames += got
        if end:
            return frames


def refusal_code(exc: websockets.InvalidStatus) -> tuple[int, ErrorCode]:
    """HTTP status and classified code of a refused upgrade."""
    import json

    status = exc.response.status_code
    parsed = json.loads(exc.response.body)
    first = (parsed.get("errors") or [parsed])[0]  # an invalid token: the bare {"message": ...}
    text = " ".join(str(first.get(k, "")) for k in ("title", "detail", "message"))
    return status, classify(first.get("code"), text, http_status=status, upgrade=True)


def start_serve(port: int, api_key: str, app_id: str, *extra: str):
    """``avatarkit serve`` in a subprocess on 127.0.0.1:port, once it accepts connections."""
    import os
    import socket
    import subprocess
    import sys
    import time

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "avatarkit",
            "serve",
            "--port",
            str(port),
            "--api-key",
            api_key,
            "--app-id",
            app_id,
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise AssertionError("avatarkit serve did not come up") from None
            time.sleep(0.05)


async def console_token(base_url: str, api_key: str, ttl_s: float = 600) -> str:
    import time

    import aiohttp

    async with (
        aiohttp.ClientSession() as http,
        http.post(
            base_url + "/v1/console/session-tokens",
            headers={"X-Api-Key": api_key},
            json={"expireAt": int(time.time() + ttl_s)},
        ) as resp,
    ):
        assert resp.status == 200, await resp.text()
        return (await resp.json())["sessionToken"]


async def health(base_url: str) -> dict:
    import aiohttp

    async with aiohttp.ClientSession() as http, http.get(base_url + "/v1/health") as resp:
        return await resp.json()


_SERVER_MAIN = """
import json, logging, sys
from avatarkit.server.config import ServerConfig
from avatarkit.server.workers import serve
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
serve(ServerConfig(**json.loads(sys.argv[1])))
"""


class ServerProcess:
    """A server process built from ``ServerConfig(**config)``, its log in a file.

    ``nofile`` lowers its file-descriptor limit (RLIMIT_NOFILE) to provoke exhaustion.
    """

    def __init__(self, log_path, nofile: int | None = None, **config) -> None:
        import json
        import os
        import resource
        import subprocess
        import sys

        from avatarkit.server.workers import pick_free_port

        self.port = config.setdefault("port", pick_free_port("127.0.0.1"))
        config.setdefault("api_key", "ak_test_key")
        config.setdefault("app_id", "app_test")
        self.config = config
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path

        def limit() -> None:
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _SERVER_MAIN, json.dumps(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=limit,
                env={**os.environ, "PYTHONUNBUFFERED": "1", "OPENBLAS_NUM_THREADS": "1"},
            )
        self.wait_ready()

    def wait_ready(self, timeout: float = 20.0) -> None:
        import time
        import urllib.request

        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.base_url + "/v1/health", timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise AssertionError(f"server did not come up: {self.log()[-2000:]}") from None
                time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        import subprocess

        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def redis_server_binary() -> str | None:
    import shutil

    return shutil.which("redis-server")


def start_redis(workdir):
    """A throwaway ``redis-server`` on a free loopback port (no persistence): (process, url)."""
    import subprocess
    import time

    import redis

    from avatarkit.server.workers import pick_free_port

    port = pick_free_port("127.0.0.1")
    process = subprocess.Popen(
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--logfile",
            str(workdir / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise AssertionError("redis-server did not come up") from None
            time.sleep(0.05)
    client.close()
    return process, url
