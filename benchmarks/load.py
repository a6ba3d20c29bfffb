"""Load and soak: N concurrent real-time sessions against ``avatarkit serve`` on loopback.

    .venv/bin/python benchmarks/load.py                      # steps of 10/25/50 sessions, 20 s each
    .venv/bin/python benchmarks/load.py --steps 25 --seconds 60
    .venv/bin/python benchmarks/load.py --soak 600 --steps 25 # opt-in 10-minute soak
    .venv/bin/python benchmarks/load.py --blas                # BLAS threads in an embedding app
    .venv/bin/python benchmarks/load.py --heap                # Python heap growth per session

The server is the real CLI in its own process (``avatarkit serve``, one worker); the load
generator (``tools/loadgen.py``) runs here, each session a voice agent talking at 1x in
40 ms chunks: 4 s utterances with 1 s pauses, a Console API token per session. Reported per
step: sessions per core (sessions / the server process's CPU share), frame lateness
percentiles (arrival minus the moment that frame's audio was sent), frames delivered vs
expected, and the server's RSS over time; a soak also reports RSS growth over its second half.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from avatarkit.server.workers import pick_free_port  # noqa: E402
from tools.loadgen import run_load  # noqa: E402

API_KEY, APP_ID = "ak_load_benchmark", "app_load"


def start_server(port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "avatarkit",
            "serve",
            "--port",
            str(port),
            "--api-key",
            API_KEY,
            "--app-id",
            APP_ID,
            "--max-per-ip",  # every session comes from this one address
            "0",
            "--max-pending-per-ip",
            "0",
            "--max-http-per-ip",
            "0",
            "--idle-timeout",
            "600",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("avatarkit serve did not start") from None
            time.sleep(0.1)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class RssSampler:
    """The server's RSS once a second on a thread: (seconds since start, MB)."""

    def __init__(self, pid: int, period: float = 1.0) -> None:
        self.pid, self.period, self.samples = pid, period, []
        self._stop = threading.Event()
        self._start = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic() - self._start, rss_mb(self.pid)))
            self._stop.wait(self.period)

    def stop(self) -> list[tuple[float, float]]:
        self._stop.set()
        self._thread.join()
        return self.samples


UTTERANCE_S = 4.0  # each session speaks this long, then pauses ``--pause`` seconds


async def step(base: str, pid: int, sessions: int, seconds: float, pause: float = 1.0) -> dict:
    cpu0, wall0, own0 = cpu_seconds(pid), time.perf_counter(), time.process_time()
    result = await run_load(
        base,
        API_KEY,
        APP_ID,
        sessions=sessions,
        seconds=seconds,
        utterance_s=UTTERANCE_S,
        pause_s=pause,
    )
    wall = time.perf_counter() - wall0
    share = (cpu_seconds(pid) - cpu0) / wall
    return {
        "result": result,
        "share": share,
        "per_core": sessions / share if share else float("inf"),
        "generator": (time.process_time() - own0) / wall,
        "load": os.getloadavg()[0],
        "duty": UTTERANCE_S / (UTTERANCE_S + pause),  # share of the time spent talking
    }


def report(sessions: int, measured: dict) -> None:
    r = measured["result"]
    ms = {q: 1000 * r.percentile(q) for q in (0.5, 0.95, 0.99, 1.0)}
    print(
        f"{sessions:4d} sessions at {100 * measured['duty']:.0f}% talk time: server CPU "
        f"{100 * measured['share']:5.1f}% -> {measured['per_core']:6.0f} sessions/core; "
        f"lateness p50 {ms[0.5]:.0f} ms, p95 {ms[0.95]:.0f} ms, p99 {ms[0.99]:.0f} ms, max "
        f"{ms[1.0]:.0f} ms; "
        f"frames {r.frames}/{r.expected_frames} in {r.utterances} utterances; errors "
        f"{len(r.errors)} "
        f"(load generator CPU {100 * measured['generator']:.0f}%, machine load "
        f"{measured['load']:.1f})",
        flush=True,
    )
    for error in r.errors[:3]:
        print("   error:", error)


def growth(samples: list[tuple[float, float]]) -> str:
    """RSS at the start and end of the second half, and its slope (MB per minute)."""
    half = [s for s in samples if s[0] >= samples[-1][0] / 2]
    if len(half) < 3:
        return "too short"
    xs = [t for t, _ in half]
    ys = [m for _, m in half]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )
    return f"second half {ys[0]:.1f} -> {ys[-1]:.1f} MB, slope {60 * slope:+.2f} MB/min"


BLAS_PROBE = """
import sys, threading, time
sys.path.insert(0, {root!r})
import numpy  # loaded first, as in an app that embeds the server: the env is too late now
from avatarkit.testing import speech_like_pcm as speech
from avatarkit.motion import create_stream
from avatarkit.server.blas import blas_threads, limit_blas_threads
if {limit}:
    limit_blas_threads(1)  # what EmbeddedServer.start() does
pcm = speech(10.0)
def one(times):
    stream = create_stream(16000, 30)
    t = time.perf_counter()
    stream.push(pcm)
    stream.finish()
    times.append(time.perf_counter() - t)
one([])
for sessions in (1, 2, 4):
    times = []
    threads = [
        threading.Thread(target=lambda: [one(times) for _ in range(3)]) for _ in range(sessions)
    ]
    start = time.perf_counter()
    [t.start() for t in threads]; [t.join() for t in threads]
    wall = time.perf_counter() - start
    print(f"  BLAS threads {{blas_threads()}}: {{sessions}} concurrent sessions "
          f"pushing 10 s chunks: {{1000 * sum(times) / len(times):.0f}} ms per chunk, "
          f"{{wall:.2f}} s wall for {{3 * sessions}} chunks")
"""


def blas_check() -> None:
    """The model in an app that loaded numpy first: numpy's default BLAS threads vs one."""
    root = str(Path(__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    for limit in (False, True):
        print(
            "one BLAS thread (EmbeddedServer default):"
            if limit
            else "numpy's default BLAS threads:",
            flush=True,
        )
        subprocess.run(
            [sys.executable, "-c", BLAS_PROBE.format(root=root, limit=limit)], env=env, check=True
        )


async def heap_check(rounds: int = 60) -> None:
    """Python heap growth (tracemalloc) over many sessions against an in-process server:
    5 sessions per round, 3 one-second utterances each, after a warm-up."""
    import gc
    import tracemalloc

    import websockets

    from avatarkit.proto import wire_pb2 as pb
    from avatarkit.protocol import decode_envelope, encode_audio, encode_configure
    from avatarkit.server import EmbeddedServer
    from avatarkit.testing import speech_like_pcm as speech

    server = EmbeddedServer(max_connections_per_ip=0).start()
    pcm = speech(1.0)

    async def run(n: int) -> None:
        for _ in range(n):
            for _ in range(5):
                headers = {"X-App-ID": server.app_id, "X-Session-Key": server.issue_token()}
                async with websockets.connect(
                    f"ws://127.0.0.1:{server.port}/v2/driveningress/websocket?id=ava",
                    additional_headers=headers,
                ) as ws:
                    await ws.send(encode_configure(16000))
                    await ws.recv()
                    for u in range(3):
                        await ws.send(encode_audio(f"u{u}", pcm, end=True))
                        while not (
                            e := decode_envelope(await ws.recv())
                        ).server_response_animation.end:
                            assert e.type == pb.MESSAGE_SERVER_RESPONSE_ANIMATION
        while server.active_sessions:
            await asyncio.sleep(0.01)
        gc.collect()

    try:
        await run(20)  # warm-up: model, caches, pools
        tracemalloc.start()
        await run(20)
        before = tracemalloc.take_snapshot()
        await run(rounds)
        after = tracemalloc.take_snapshot()
        growth = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
        print(
            f"Python heap growth over {5 * rounds} sessions / {15 * rounds} utterances: "
            f"{growth / 1024:+.1f} KB "
            f"({growth / (5 * rounds):+.0f} B per session)"
        )
    finally:
        server.stop()


async def main(args: argparse.Namespace) -> None:
    if args.blas:
        blas_check()
        return
    if args.heap:
        await heap_check()
        return
    port = pick_free_port("127.0.0.1")
    base = f"http://127.0.0.1:{port}"
    server = start_server(port)
    sampler = RssSampler(server.pid)
    try:
        print(
            f"avatarkit serve pid {server.pid} on {base}; {os.cpu_count()} cores on this machine; "
            f"RSS at start {rss_mb(server.pid):.1f} MB",
            flush=True,
        )
        await run_load(base, API_KEY, APP_ID, sessions=2, seconds=2)  # warm-up: model loaded
        if args.soak:
            sessions = args.steps[0]
            print(f"soak: {sessions} sessions for {args.soak:.0f} s", flush=True)
            chunk = 60.0
            started = time.monotonic()
            while (left := args.soak - (time.monotonic() - started)) > 1:
                measured = await step(base, server.pid, sessions, min(chunk, left), args.pause)
                print(
                    f"[{time.monotonic() - started:5.0f} s] RSS {rss_mb(server.pid):.1f} MB; ",
                    end="",
                )
                report(sessions, measured)
        else:
            for sessions in args.steps:
                measured = await step(base, server.pid, sessions, args.seconds, args.pause)
                report(sessions, measured)
                print(f"      RSS now {rss_mb(server.pid):.1f} MB", flush=True)
        await asyncio.sleep(2)  # sessions closed: the server should be back to idle
        import aiohttp

        async with aiohttp.ClientSession() as http, http.get(base + "/v1/health") as resp:
            print(f"after the run the server holds {(await resp.json())['sessions']} sessions")
        samples = sampler.stop()
        peak = max(m for _, m in samples)
        print(
            f"server RSS: start {samples[0][1]:.1f} MB, peak {peak:.1f} MB, end "
            f"{samples[-1][1]:.1f} MB; "
            f"{growth(samples)}"
        )
        if args.rss_csv:
            Path(args.rss_csv).write_text(
                "seconds,rss_mb\n" + "".join(f"{t:.1f},{m:.1f}\n" for t, m in samples)
            )
    finally:
        sampler.stop()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--steps", type=int, nargs="+", default=[10, 25, 50], help="concurrent sessions per step"
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each step")
    parser.add_argument(
        "--soak",
        type=float,
        default=0.0,
        metavar="S",
        help="opt-in soak: run the first step's sessions for S seconds (600 = 10 minutes)",
    )
    parser.add_argument(
        "--pause",
        type=float,
        default=1.0,
        help="seconds of silence after each 4 s utterance (0: talking all the time)",
    )
    parser.add_argument("--rss-csv", default="", help="write the RSS samples to this CSV")
    parser.add_argument(
        "--blas", action="store_true", help="only compare BLAS thread settings for embedded use"
    )
    parser.add_argument(
        "--heap",
        action="store_true",
        help="only measure Python heap growth per session (tracemalloc)",
    )
    asyncio.run(main(parser.parse_args()))
