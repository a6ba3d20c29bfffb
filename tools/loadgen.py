"""A load generator for the Motion Server: N concurrent real-time sessions on the wire protocol.

Each session takes its own token from the Console API (tokens back one live connection
each), then talks like a voice agent for ``seconds``: an utterance of speech sent at 1x in
``chunk_s`` chunks, a pause, the next one. For every motion frame it records its
*lateness*: arrival time minus the moment the audio completing that frame had been sent
(the least a streaming server could do), so chunking itself costs nothing.

    from tools.loadgen import run_load
    result = asyncio.run(
        run_load("http://127.0.0.1:8765", api_key, app_id, sessions=50, seconds=30)
    )

Used by ``benchmarks/load.py``; loopback only by intent (it is a load generator).
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field

import aiohttp
import websockets

from avatarkit.proto import wire_pb2 as pb
from avatarkit.protocol import decode_envelope, encode_audio, encode_configure
from avatarkit.testing import speech_like_pcm

RATE, FPS = 16000, 30


@dataclass
class LoadResult:
    sessions: int
    seconds: float
    lateness: list[float] = field(default_factory=list)  # per frame, seconds
    frames: int = 0
    expected_frames: int = 0
    utterances: int = 0
    errors: list[str] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        if not self.lateness:
            return float("nan")
        ordered = sorted(self.lateness)
        return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1)))]


async def _token(http: aiohttp.ClientSession, base_url: str, api_key: str) -> str:
    async with http.post(
        base_url + "/v1/console/session-tokens",
        headers={"X-Api-Key": api_key},
        json={"expireAt": int(time.time() + 3600)},
    ) as resp:
        resp.raise_for_status()
        return (await resp.json())["sessionToken"]


async def _session(
    index: int,
    url: str,
    app_id: str,
    token: str,
    until: float,
    chunk_s: float,
    utterance_s: float,
    pause_s: float,
    result: LoadResult,
) -> None:
    pcm = speech_like_pcm(utterance_s, seed=index)
    step = int(chunk_s * RATE) * 2
    ws = await websockets.connect(
        url,
        additional_headers={"X-App-ID": app_id, "X-Session-Key": token},
        compression=None,
        max_queue=None,
        open_timeout=30,
    )
    try:
        await ws.send(encode_configure(RATE))
        if (
            decode_envelope(await asyncio.wait_for(ws.recv(), 30)).type
            != pb.MESSAGE_SERVER_CONFIRM_SESSION
        ):
            raise RuntimeError("no session confirmation")
        await asyncio.sleep(
            index * chunk_s / max(1, result.sessions) + (index % 7) * 0.05
        )  # spread phases
        n = 0
        while time.perf_counter() < until:
            await _utterance(ws, pcm, step, chunk_s, f"s{index}u{n}", result)
            n += 1
            await asyncio.sleep(pause_s)
    finally:
        await ws.close()


async def _utterance(
    ws, pcm: bytes, step: int, chunk_s: float, req_id: str, result: LoadResult
) -> None:
    sent_at: list[float] = []  # when chunk k (samples k*chunk_samples onwards) went out
    chunk_samples, total = step // 2, len(pcm) // 2
    done = asyncio.Event()
    got = 0

    async def receive() -> None:
        nonlocal got
        async for data in ws:
            envelope = decode_envelope(data)
            now = time.perf_counter()
            if envelope.type == pb.MESSAGE_SERVER_ERROR:
                result.errors.append(envelope.server_error.message)
                continue
            anim = envelope.server_response_animation
            for frame in range(anim.first_frame, anim.first_frame + anim.frame_count):
                need = min(total, math.ceil((frame + 1) * RATE / FPS))  # samples the frame needs
                chunk = min(len(sent_at) - 1, max(0, math.ceil(need / chunk_samples) - 1))
                result.lateness.append(now - sent_at[chunk])
            got += anim.frame_count
            if anim.end:
                done.set()
                return

    reader = asyncio.create_task(receive())
    start = time.perf_counter()
    try:
        for k, i in enumerate(range(0, len(pcm), step)):
            delay = start + k * chunk_s - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await ws.send(encode_audio(req_id, pcm[i : i + step], end=i + step >= len(pcm)))
            sent_at.append(time.perf_counter())
        await asyncio.wait_for(done.wait(), 30)
    finally:
        reader.cancel()
    result.frames += got
    result.expected_frames += math.ceil(len(pcm) // 2 * FPS / RATE)
    result.utterances += 1


async def run_load(
    base_url: str,
    api_key: str,
    app_id: str,
    *,
    sessions: int,
    seconds: float,
    chunk_s: float = 0.04,
    utterance_s: float = 4.0,
    pause_s: float = 1.0,
    avatar: str = "ava",
) -> LoadResult:
    """Run ``sessions`` concurrent talking sessions for ``seconds``; returns what was measured."""
    result = LoadResult(sessions, seconds)
    url = base_url.replace("http://", "ws://") + f"/v2/driveningress/websocket?id={avatar}"
    async with aiohttp.ClientSession() as http:
        tokens = [await _token(http, base_url, api_key) for _ in range(sessions)]
    until = time.perf_counter() + seconds
    outcomes = await asyncio.gather(
        *(
            _session(i, url, app_id, tokens[i], until, chunk_s, utterance_s, pause_s, result)
            for i in range(sessions)
        ),
        return_exceptions=True,
    )
    result.errors += [repr(o) for o in outcomes if isinstance(o, BaseException)]
    return result
