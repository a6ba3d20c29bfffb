"""Motion Server benchmark: first-frame latency, motion bytes on the wire, sessions per core.

    .venv/bin/python benchmarks/server.py [--model default|envelope] [--quick]

The server runs in its own process (one event loop, as `avatarkit serve` runs it); the load
generator runs here on loopback, speaking the wire protocol with our encoders. Sessions per
core = concurrent real-time sessions / the server process's CPU share (user+sys time from
/proc), checked at each load step that frames still keep up with 1x audio (p95 lag bar).
Bars: first frame <= 60 ms after the first audio chunk; <= 4 KB/s; >= 100 sessions per core.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import os
import statistics
import time

import websockets

from avatarkit.proto import wire_pb2 as pb
from avatarkit.protocol import decode_envelope, encode_audio, encode_configure
from avatarkit.server.config import ServerConfig
from avatarkit.server.tokens import TokenSigner
from avatarkit.server.workers import SINGLE_THREAD_ENV, pick_free_port
from avatarkit.testing import speech_like_pcm

RATE, FPS = 16000, 30
REQ_ID = "20261125071500_AbC123XyZ456"  # the public SDK's req_id shape (28 characters)
LAG_BAR_S = 0.25  # a session "falls behind" when its p95 frame lag exceeds this


def run_server(config: ServerConfig, model: str) -> None:
    from dataclasses import replace

    from avatarkit.server.workers import serve

    serve(replace(config, motion_model="envelope") if model == "envelope" else config)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Client:
    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.url, self.headers = url, headers

    async def connect(self) -> websockets.ClientConnection:
        ws = await websockets.connect(
            self.url, additional_headers=self.headers, compression=None, max_queue=None
        )
        await ws.send(encode_configure(RATE))
        assert decode_envelope(await ws.recv()).type == pb.MESSAGE_SERVER_CONFIRM_SESSION
        return ws


async def paced_utterance(ws, pcm: bytes, chunk_s: float, req_id: str = REQ_ID) -> dict:
    """Send ``pcm`` at 1x in ``chunk_s`` chunks; measure first-message latency, lag, bytes."""
    step = int(chunk_s * RATE) * 2
    arrivals: list[tuple[float, int, int]] = []  # (time, last frame index + 1, wire bytes)
    done = asyncio.Event()

    async def receive() -> None:
        async for data in ws:
            envelope = decode_envelope(data)
            if envelope.type != pb.MESSAGE_SERVER_RESPONSE_ANIMATION:
                raise RuntimeError(f"server error: {envelope.server_error.message}")
            anim = envelope.server_response_animation
            arrivals.append(
                (
                    time.perf_counter(),
                    anim.first_frame + anim.frame_count,
                    len(data) + (2 if len(data) < 126 else 4),
                )
            )
            if anim.end:
                done.set()
                return

    reader = asyncio.create_task(receive())
    start = time.perf_counter()
    for k, i in enumerate(range(0, len(pcm), step)):
        delay = start + k * chunk_s - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await ws.send(encode_audio(req_id, pcm[i : i + step]))
    await ws.send(encode_audio(req_id, b"", end=True))
    await asyncio.wait_for(done.wait(), 30)
    await reader

    # Lag of a message: its arrival minus the send time of the chunk that completed the
    # audio of its last frame (frames/FPS seconds into the utterance).
    def completed_at(frames: int) -> float:
        return start + max(0, math.ceil(frames / FPS / chunk_s - 1e-9) - 1) * chunk_s

    lags = [t - completed_at(frames) for t, frames, _ in arrivals if frames]
    return {
        "first": arrivals[0][0] - start,
        "lags": lags,
        "bytes": sum(b for _, _, b in arrivals),
        "seconds": len(pcm) / 2 / RATE,
    }


async def first_frame_latency(client: Client, runs: int) -> tuple[list[float], list[float]]:
    pcm = speech_like_pcm(1.0)
    paced, burst = [], []
    for i in range(runs):
        ws = await client.connect()
        paced.append((await paced_utterance(ws, pcm, 0.02, f"paced{i}"))["first"])
        # TTS-style burst: a whole second in one message; latency to the first animation.
        sent = time.perf_counter()
        await ws.send(encode_audio(f"burst{i}", pcm))
        decode_envelope(await ws.recv())
        burst.append(time.perf_counter() - sent)
        await ws.send(encode_audio(f"burst{i}", b"", end=True))
        while not decode_envelope(await ws.recv()).server_response_animation.end:
            pass
        await ws.close()
    return paced, burst


async def main(args: argparse.Namespace) -> None:
    port = pick_free_port("127.0.0.1")
    config = ServerConfig(
        port=port,
        api_key="ak_bench",
        app_id="app_bench",
        serve_assets=False,
        max_open_utterances=4,
        idle_timeout_s=120,
        any_avatar=True,
        max_connections_per_ip=0,
        # The load generator is one address opening hundreds of sessions at once.
        max_pending_handshakes_per_ip=0,
    ).with_credentials()
    os.environ.update({k: os.environ.get(k, v) for k, v in SINGLE_THREAD_ENV.items()})  # inherited
    process = multiprocessing.get_context("spawn").Process(
        target=run_server, args=(config, args.model)
    )
    process.start()
    signer = TokenSigner(config.signing_key(), config.app_id)
    url = f"ws://127.0.0.1:{port}/v2/driveningress/websocket?id=bench"

    def client() -> Client:
        return Client(
            url, {"X-App-ID": config.app_id, "X-Session-Key": signer.issue(time.time() + 3600)}
        )

    try:
        for _ in range(100):
            try:
                await (await client().connect()).close()
                break
            except OSError:
                await asyncio.sleep(0.1)
        print(
            f"model: {args.model}; server pid {process.pid}; cores on this machine: "
            f"{os.cpu_count()}"
        )

        # Tokens are single-use per live connection: each connection gets its own.
        paced, burst = [], []
        for _ in range(args.latency_runs):
            p, b = await first_frame_latency(client(), 1)
            paced += p
            burst += b

        def ms(values: list[float], q: float) -> float:
            return 1000 * sorted(values)[int(q * (len(values) - 1))]

        print(
            f"first animation after first audio chunk, 20 ms chunks paced 1x: "
            f"median {ms(paced, 0.5):.1f} ms, p95 {ms(paced, 0.95):.1f} ms (bar 60 ms)"
        )
        print(
            f"first animation after a 1 s burst chunk: median {ms(burst, 0.5):.1f} ms, p95 "
            f"{ms(burst, 0.95):.1f} ms"
        )

        ws = await client().connect()
        for chunk_s in (0.02, 0.1):
            r = await paced_utterance(
                ws, speech_like_pcm(args.bytes_seconds, seed=2), chunk_s, f"bytes{chunk_s}"
            )
            print(
                f"motion on the wire ({chunk_s * 1000:.0f} ms chunks, 30 fps, envelope + framing): "
                f"{r['bytes'] / r['seconds']:.0f} B/s (bar 4096 B/s)"
            )
        await ws.close()

        for burst_s in (0.0, 60.0):
            step = await load_step(client, process.pid, 20, 4.0, args.chunk, burst_s)
            bursting = f" + one client bursting {burst_s:.0f} s of audio" if burst_s else ""
            print(
                f"20 paced sessions{bursting}: "
                f"frame lag p95 {1000 * step['lag_p95']:.0f} ms, "
                f"max {1000 * step['lag_max']:.0f} ms"
            )

        best = 0.0
        for n in args.steps:
            step = await load_step(client, process.pid, n, args.load_seconds, args.chunk)
            held = step["lag_p95"] <= LAG_BAR_S
            if held:
                best = max(best, step["per_core"])
            print(
                f"{n:4d} sessions at 1x ({args.chunk * 1000:.0f} ms chunks): server CPU "
                f"{100 * step['cpu_share']:.0f}% "
                f"-> {step['per_core']:.0f} sessions/core; frame lag p95 "
                f"{1000 * step['lag_p95']:.0f} ms, "
                f"max {1000 * step['lag_max']:.0f} ms: {'kept up' if held else 'FELL BEHIND'} "
                f"(load generator CPU {100 * step['generator_share']:.0f}%, machine load "
                f"{step['load']:.1f})"
            )
            if not held:
                break
        print(f"sessions per core (best step that kept up): {best:.0f} (bar 100)")
    finally:
        process.terminate()
        process.join(15)


async def tts_burst(make_client, seconds: float) -> None:
    """One client sending ``seconds`` of audio as fast as it can (a TTS burst) to the end."""
    ws = await make_client().connect()
    pcm = speech_like_pcm(seconds, seed=3)
    for i in range(0, len(pcm), 512 * 1024):
        await ws.send(encode_audio("burst", pcm[i : i + 512 * 1024]))
    await ws.send(encode_audio("burst", b"", end=True))
    while not decode_envelope(await ws.recv()).server_response_animation.end:
        pass
    await ws.close()


async def load_step(
    make_client, pid: int, n: int, seconds: float, chunk_s: float, burst_s: float = 0.0
) -> dict:
    clients = [make_client() for _ in range(n)]
    sockets = await asyncio.gather(*(c.connect() for c in clients))
    pcm = speech_like_pcm(seconds, seed=1)

    async def one(i: int, ws) -> dict:
        await asyncio.sleep(i * chunk_s / n)  # spread the sessions' chunk phases
        return await paced_utterance(ws, pcm, chunk_s, f"load{i}")

    async def burst() -> list:
        await asyncio.sleep(seconds / 3)
        await tts_burst(make_client, burst_s)
        return []

    extra = [burst()] if burst_s else []
    cpu0, wall0, own0 = cpu_seconds(pid), time.perf_counter(), time.process_time()
    results = (await asyncio.gather(*(one(i, ws) for i, ws in enumerate(sockets)), *extra))[:n]
    cpu, wall = cpu_seconds(pid) - cpu0, time.perf_counter() - wall0
    generator = (time.process_time() - own0) / wall
    await asyncio.gather(*(ws.close() for ws in sockets))
    lags = sorted(lag for r in results for lag in r["lags"])
    share = cpu / wall
    return {
        "sessions": n,
        "cpu_share": share,
        "per_core": n / share if share else float("inf"),
        "lag_p95": lags[int(0.95 * (len(lags) - 1))],
        "lag_max": lags[-1],
        "median_lag": statistics.median(lags),
        "generator_share": generator,
        "load": os.getloadavg()[0],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model",
        choices=("default", "envelope"),
        default="default",
        help="default: the trained model; envelope: the baseline (server cost alone)",
    )
    parser.add_argument("--quick", action="store_true", help="fewer runs and steps")
    args = parser.parse_args()
    args.latency_runs = 5 if args.quick else 20
    args.bytes_seconds = 5.0 if args.quick else 10.0
    args.load_seconds = 4.0 if args.quick else 6.0
    args.chunk = 0.04
    args.steps = (25, 50) if args.quick else (50, 100, 150, 200)
    asyncio.run(main(args))
