"""Faults: dead peers, stalled networks, clients that stop reading, a server killed
mid-utterance."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import time

import pytest
from reliability_helpers import connect, expected_frames, receive_utterance, speech_pcm, start_serve

from avatarkit.errors import ErrorCode
from avatarkit.protocol import encode_audio

pytestmark = pytest.mark.timeout(60)


class StallingProxy:
    """A TCP relay on loopback that can stop forwarding while keeping both sockets open
    (a peer that vanished without a FIN, or a network that stalled)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.forwarding = threading.Event()
        self.forwarding.set()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                self.forwarding.wait()  # stalled: hold the bytes, read nothing more
                dst.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        self.forwarding.set()
        self.listener.close()
        for sock in self.sockets:
            sock.close()


async def wait_until(predicate, timeout: float) -> float:
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout, "condition not reached in time"
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def test_stalled_network_is_detected_and_frees_the_token(make_server):
    # Reusable tokens: what is checked is that the dead connection lets go of its token.
    server = make_server(heartbeat_s=0.5, send_stall_s=2.0, single_use_tokens=False)
    proxy = StallingProxy(server.port)
    try:
        token = server.issue_token()
        ws = await connect(server, token=token, port=proxy.port, ping_interval=None)
        pcm = speech_pcm(1.0)
        await ws.send(encode_audio("r1", pcm, end=True))
        assert len(await receive_utterance(ws, "r1")) == expected_frames(len(pcm))
        proxy.forwarding.clear()  # the peer is gone; no FIN, no RST
        await ws.send(encode_audio("r2", pcm[:3200]))
        took = await wait_until(lambda: server.active_sessions == 0, 10)
        assert (
            took < 3.0
        )  # heartbeat 0.5 s + pong timeout 0.25 s + watchdog, not the 60 s idle limit
        again = await connect(server, token=token)  # the token is free again: the app can reconnect
        await again.send(encode_audio("r3", pcm, end=True))
        assert len(await receive_utterance(again, "r3")) == expected_frames(len(pcm))
        await again.close()
    finally:
        proxy.close()


async def test_client_that_never_reads_big_messages_is_a_slow_consumer(make_server):
    server = make_server(send_stall_s=1.0)
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # reads nothing, tiny window
    ws = await connect(
        server, sock=sock, max_queue=1, max_size=None, compression=None, ping_interval=None
    )
    big = speech_pcm(5.0)  # 160 KB per message

    async def send_forever() -> None:
        n = 0
        while True:  # blocks once TCP flow control pushes back: it never reads, so it stalls
            await ws.send(encode_audio(f"r{n % 3}", big))
            n += 1

    sender = asyncio.create_task(send_forever())
    try:
        took = await wait_until(lambda: server.stats.errors[ErrorCode.SLOW_CONSUMER] > 0, 15)
        assert took < 10  # send_stall_s after the client stopped taking bytes, not never
        await wait_until(lambda: server.active_sessions == 0, 5)  # closed, backlog dropped
    finally:
        sender.cancel()
        ws.transport.abort()
    assert server.stats.errors[ErrorCode.SLOW_CONSUMER] == 1


def test_server_killed_mid_utterance_client_reconnects_without_replay(tmp_path):
    """kill -9 of the server mid-utterance: the controller reports it, reconnects with backoff
    to the restarted server (a fresh token from its provider), and no sample plays twice."""
    import urllib.request

    from avatarkit.controller import AvatarController, ConnectionState, ConversationState
    from avatarkit.sdk import AvatarSDK, Configuration
    from avatarkit.server.workers import pick_free_port
    from engine.audio import Mixer, VirtualDevice

    port, api_key, app_id = pick_free_port("127.0.0.1"), "ak_kill_test", "app_kill"
    base = f"http://127.0.0.1:{port}"

    def fresh_token() -> str:  # what an app's backend does: Console API call per connection
        import json

        request = urllib.request.Request(
            base + "/v1/console/session-tokens",
            method="POST",
            data=json.dumps({"expireAt": int(time.time()) + 600}).encode(),
            headers={"X-Api-Key": api_key, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            return json.load(resp)["sessionToken"]

    server = start_serve(port, api_key, app_id, "--any-avatar")
    mixer = Mixer(16000)
    device = VirtualDevice(mixer).start()
    AvatarSDK.initialize(
        app_id,
        Configuration(
            audio_device="virtual",
            ingress_url=f"ws://127.0.0.1:{port}/v2/driveningress",
            token_provider=fresh_token,
            reconnect_backoff_s=0.2,
            reconnect_attempts=8,
            strict_sync=True,
        ),
    )
    controller = AvatarController("ava", mixer)
    states, errors = [], []
    controller.on_connection_state = lambda s, r: states.append(s)
    controller.on_error = lambda e: errors.append(e.code)
    frame = 0

    def run_until(predicate, timeout: float = 20.0) -> None:
        nonlocal frame
        deadline = time.monotonic() + timeout
        controller.tick(0.0)
        while not predicate():
            assert time.monotonic() < deadline, f"not reached; states={states} errors={errors}"
            controller.tick(1 / 30)
            device.advance(device.frames_for_video_frame(frame, 30))
            frame += 1
            time.sleep(0.002)

    try:
        AvatarSDK.set_session_token(fresh_token())
        controller.start()
        pcm = speech_pcm(2.0)
        half = len(pcm) // 2
        cid = {controller.send(pcm[i : i + 3200]) for i in range(0, half, 3200)}
        run_until(lambda: controller.face_time is not None)
        server.send_signal(signal.SIGKILL)  # no close frame, no graceful anything
        server.wait(10)
        run_until(lambda: ConnectionState.RECONNECTING in states)
        server = start_serve(port, api_key, app_id, "--any-avatar")
        run_until(lambda: controller.connection_state == ConnectionState.CONNECTED)
        cid |= {
            controller.send(pcm[i : i + 3200], end=i + 3200 >= len(pcm))
            for i in range(half, len(pcm), 3200)
        }
        assert len(cid) == 1  # the same conversation goes on after the reconnect
        run_until(lambda: controller.conversation_state == ConversationState.IDLE)
        assert states.count(ConnectionState.CONNECTED) == 2
        assert ErrorCode.CONNECTION_CLOSED in errors  # reported to the app
        assert (
            controller._source.consumed == len(pcm) // 2
        )  # every sample played once, none replayed
    finally:
        controller.dispose()
        AvatarSDK.cleanup()
        server.kill()
        server.wait(10)


async def test_a_model_crash_costs_one_utterance_not_the_session(make_server, monkeypatch):
    import avatarkit.server.session as session_module
    from avatarkit.motion.envelope import EnvelopeStream

    created = []

    class CrashingEveryOther(EnvelopeStream):
        def __init__(self, sample_rate: int, fps: int, model: str = "envelope") -> None:
            super().__init__(sample_rate, fps)
            created.append(self)
            self.crash = len(created) % 2 == 1

        def push(self, pcm: bytes):
            if self.crash:
                raise RuntimeError("model bug")
            return super().push(pcm)

    monkeypatch.setattr(session_module, "create_stream", CrashingEveryOther)
    server = make_server()
    ws = await connect(server)
    pcm = speech_pcm(0.5)
    await ws.send(encode_audio("bad", pcm, end=True))
    with pytest.raises(AssertionError, match="serverError"):
        await receive_utterance(ws, "bad")
    await ws.send(encode_audio("good", pcm, end=True))  # the same connection goes on
    assert len(await receive_utterance(ws, "good")) == expected_frames(len(pcm))
    assert server.stats.errors[ErrorCode.SERVER_ERROR] == 1
    await ws.close()


def test_embedded_server_runs_blas_on_one_thread(make_server):
    """numpy is loaded long before (as in an app): the server still gets one BLAS thread."""
    import numpy  # noqa: F401

    from avatarkit.server.blas import blas_threads

    if blas_threads() is None:
        pytest.skip("numpy is not linked against OpenBLAS here")
    make_server()
    assert blas_threads() == 1
