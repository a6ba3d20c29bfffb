"""Backend Mode: your backend talks to the Motion Server and relays to its client.

    python examples/backend_relay.py [speech.wav] [--headless]

Three parts, all on loopback here:

- the Motion Server (``EmbeddedServer``; in production, wherever you run it);
- ``RelayBackend``: your backend. It holds the API key, opens a Server SDK session
  per client, and forwards over its *own* websocket both the speech audio (from its TTS;
  a WAV here) and the animation envelopes the Server SDK hands to ``transport_frames``;
- ``RelayClient``: the app. It never sees a Motion Server token; it feeds what arrives to
  ``AvatarController.yield_audio_data`` / ``yield_frames_data``.

Relay wire format (ours, one binary websocket message each):
``kind (b"A" audio | b"M" motion) + end (1 byte) + len(req_id) (1 byte) + req_id + payload``.
Client to backend: text ``say <path>`` or ``interrupt``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import wave

from aiohttp import WSMsgType, web

from avatarkit.controller import AvatarController
from avatarkit.server_sdk import new_avatar_session

log = logging.getLogger("backend_relay")

AUDIO, MOTION = b"A", b"M"
CHUNK_BYTES = 6400  # 200 ms of 16 kHz PCM per message, sent as fast as "TTS" makes it


def pack(kind: bytes, req_id: str, payload: bytes, end: bool) -> bytes:
    rid = req_id.encode()
    return kind + bytes([int(end), len(rid)]) + rid + payload


def unpack(message: bytes) -> tuple[bytes, str, bytes, bool]:
    kind, end, n = message[:1], bool(message[1]), message[2]
    return kind, message[3 : 3 + n].decode(), message[3 + n :], end


class RelayBackend:
    """An aiohttp app with one websocket route; one Motion Server session per client."""

    def __init__(self, motion_server, avatar_id: str = "ava", host: str = "127.0.0.1") -> None:
        self.motion_server, self.avatar_id, self.host = motion_server, avatar_id, host
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/avatar"

    async def start(self) -> RelayBackend:
        app = web.Application()
        app.router.add_get("/avatar", self._client)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _client(self, request: web.Request) -> web.WebSocketResponse:
        from avatarkit.protocol import decode_envelope

        ws = web.WebSocketResponse()
        await ws.prepare(request)
        outbox: asyncio.Queue[bytes] = asyncio.Queue()  # one sender keeps messages in order

        async def sender() -> None:
            while True:
                await ws.send_bytes(await outbox.get())

        def relay_frames(envelope: bytes, last: bool) -> None:  # called on this loop
            req_id = decode_envelope(envelope).server_response_animation.req_id
            outbox.put_nowait(pack(MOTION, req_id, envelope, last))

        server = self.motion_server
        session = new_avatar_session(
            avatar_id=self.avatar_id,
            api_key=server.api_key,  # the API key never leaves the backend
            app_id=server.app_id,
            console_endpoint_url=server.console_url,
            ingress_endpoint_url=server.ingress_url,
            transport_frames=relay_frames,
            on_error=lambda error: log.warning("motion server: %s", error),
        )
        await session.init()
        await session.start()
        sending = asyncio.create_task(sender())
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                if msg.data.startswith("say "):
                    await self._say(outbox, session, msg.data[4:])
                elif msg.data == "interrupt":
                    await session.interrupt()
        finally:
            sending.cancel()
            await session.close()
        return ws

    @staticmethod
    async def _say(outbox: asyncio.Queue, session, path: str) -> None:
        with wave.open(path) as wav:
            pcm = wav.readframes(wav.getnframes())
        for i in range(0, len(pcm), CHUNK_BYTES):
            chunk, end = pcm[i : i + CHUNK_BYTES], i + CHUNK_BYTES >= len(pcm)
            req_id = await session.send_audio(chunk, end=end)
            outbox.put_nowait(pack(AUDIO, req_id, chunk, end))


class RelayClient:
    """The app side: reads the backend's websocket on its own thread, feeds the controller."""

    def __init__(self, controller: AvatarController, url: str) -> None:
        self.controller, self.url = controller, url
        self._conversations: dict[str, str] = {}  # backend req_id -> our conversation id
        self._loop = asyncio.new_event_loop()
        self._ws = None
        self._connected = threading.Event()
        threading.Thread(target=self._loop.run_forever, name="relay-client", daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._run(), self._loop)
        if not self._connected.wait(10):
            raise TimeoutError(f"backend at {url} did not answer")

    def say(self, wav_path: str) -> None:
        self._send(f"say {wav_path}")

    def interrupt(self) -> None:
        self.controller.interrupt()
        self._send("interrupt")

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._ws.close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)

    def _send(self, text: str) -> None:
        asyncio.run_coroutine_threadsafe(self._ws.send(text), self._loop).result(5)

    async def _run(self) -> None:
        from websockets.asyncio.client import connect

        async with connect(self.url, max_size=None) as ws:
            self._ws = ws
            self._connected.set()
            async for message in ws:
                kind, req_id, payload, end = unpack(message)
                if kind == AUDIO:
                    self._conversations[req_id] = self.controller.yield_audio_data(payload, end=end)
                elif kind == MOTION and req_id in self._conversations:
                    self.controller.yield_frames_data([payload], self._conversations[req_id])


def main(wav: str | None = None, headless: bool = False):
    """Run all three parts and make the avatar speak ``wav``; returns the view."""
    from avatarkit import AvatarManager, AvatarSDK, AvatarView, Configuration, DrivingMode
    from avatarkit.paths import AVATARS_DIR, SPEECH_DIR
    from avatarkit.server.embedded import EmbeddedServer
    from engine import App, RealtimeClock

    wav = wav or str(SPEECH_DIR / "greeting.wav")
    with wave.open(wav) as f:
        seconds = f.getnframes() / f.getframerate()
    app = (
        App.headless(clock=RealtimeClock(30))
        if headless
        else App.window(title="AvatarKit backend relay")
    )
    with EmbeddedServer() as server, app:
        backend_loop = asyncio.new_event_loop()
        threading.Thread(target=backend_loop.run_forever, name="backend", daemon=True).start()
        backend = asyncio.run_coroutine_threadsafe(
            RelayBackend(server).start(), backend_loop
        ).result(10)
        AvatarSDK.initialize("my-app", Configuration(driving_mode=DrivingMode.BACKEND))
        avatar = AvatarManager(str(AVATARS_DIR)).load_blocking("ava")
        view = app.scene.create_entity("host").add_component(AvatarView(avatar))
        view.frame(app.scene.camera)
        client = RelayClient(view.controller, backend.url)
        client.say(wav)
        frames = app.run(seconds=seconds + 1.0)
        client.close()
        view.dispose()
        asyncio.run_coroutine_threadsafe(backend.stop(), backend_loop).result(10)
        backend_loop.call_soon_threadsafe(backend_loop.stop)
    print(
        f"backend_relay: {avatar.id} spoke {seconds:.1f} s relayed by the backend, "
        f"{frames} frames rendered"
    )
    return view


if __name__ == "__main__":
    from avatarkit import AvatarKitError
    from engine import EngineError

    args = [a for a in sys.argv[1:] if a != "--headless"]
    try:
        main(*args[:1], headless="--headless" in sys.argv)
    except (AvatarKitError, EngineError) as exc:  # one line with its stable code, no traceback
        print(f"backend_relay: error [{exc.code}]: {exc.message}", file=sys.stderr)
        sys.exit(2)
    except (OSError, wave.Error) as exc:  # the speech file given on the command line
        print(f"backend_relay: error [invalidAudio]: {exc}", file=sys.stderr)
        sys.exit(2)
