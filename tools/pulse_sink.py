"""A real sound server for tests and benchmarks: a private PulseAudio daemon with one null
sink, ALSA's default device routed to it (as on a desktop), and a recorder of the sink's
monitor, so what PyAudio/PortAudio really played can be compared with what was meant.

    with PulseNullSink() as pulse:
        with pulse.record() as rec:
            subprocess.run([...], env=pulse.env())   # anything that plays to "default"
        pcm = rec.samples                           # int16 mono at RECORD_RATE

Plus the measures the tests assert on (active speech, envelope correlation, gaps).
Needs Debian's ``pulseaudio``, ``pulseaudio-utils`` and ``libasound2-plugins``.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

RECORD_RATE = 16000
WINDOW = 0.01  # seconds per envelope window
ACTIVE_RMS = 200  # int16 RMS above which a window counts as sound (the measure)
START_TIMEOUT = 15.0


def missing() -> str | None:
    """Why a PulseNullSink cannot run here (a missing program), or None."""
    for program in ("pulseaudio", "parec", "pactl"):
        if shutil.which(program) is None:
            return f"{program} is not installed (Debian: pulseaudio pulseaudio-utils)"
    if not any(Path(d).glob("**/libasound_module_pcm_pulse.so") for d in ("/usr/lib",)):
        return "ALSA's PulseAudio plugin is not installed (Debian: libasound2-plugins)"
    return None


class PulseNullSink:
    """Start with ``start()`` (or ``with``); ``env()`` is what a player process needs."""

    def __init__(self, sink_rate: int = 48000) -> None:
        self.sink_rate = sink_rate
        self._dir: tempfile.TemporaryDirectory | None = None
        self._daemon: subprocess.Popen | None = None

    @property
    def root(self) -> Path:
        assert self._dir is not None, "not started"
        return Path(self._dir.name)

    @property
    def socket(self) -> Path:
        return self.root / "pulse.sock"

    def env(self) -> dict[str, str]:
        """The environment of a process that should play here: its ALSA default is this
        server (a private HOME holds the ``.asoundrc``), nothing of the user's is touched."""
        env = dict(os.environ)
        env.update(
            PULSE_SERVER=f"unix:{self.socket}",
            HOME=str(self.root),
            XDG_RUNTIME_DIR=str(self.root / "run"),
            PULSE_RUNTIME_PATH=str(self.root / "run"),
        )
        return env

    def start(self) -> PulseNullSink:
        self._dir = tempfile.TemporaryDirectory(prefix="avatarkit-pulse-")
        (self.root / "run").mkdir(mode=0o700)
        config = self.root / "server.pa"
        config.write_text(
            f"load-module module-native-protocol-unix auth-anonymous=1 socket={self.socket}\n"
            f"load-module module-null-sink sink_name=out rate={self.sink_rate}\n"
            "set-default-sink out\n"
        )
        (self.root / ".asoundrc").write_text(
            "pcm.!default { type pulse }\nctl.!default { type pulse }\n"
        )
        self._daemon = subprocess.Popen(
            [
                "pulseaudio",
                "-n",
                "-F",
                str(config),
                "--exit-idle-time=-1",
                "--daemonize=no",
                "--use-pid-file=no",
                "--system=no",
                "--log-target=stderr",
                "--log-level=error",
            ],
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while subprocess.run(["pactl", "info"], env=self.env(), capture_output=True).returncode:
            if self._daemon.poll() is not None or time.monotonic() > deadline:
                err = (
                    self._daemon.stderr.read().decode(errors="replace")
                    if self._daemon.stderr
                    else ""
                )
                self.stop()
                raise RuntimeError(f"PulseAudio did not start: {err.strip()[-500:]}")
            time.sleep(0.05)
        return self

    def record(self, channels: int = 1) -> Recording:
        return Recording(self, channels)

    def stop(self) -> None:
        if self._daemon is not None:
            self._daemon.terminate()
            try:
                self._daemon.wait(5)
            except subprocess.TimeoutExpired:
                self._daemon.kill()
                self._daemon.wait()
            if self._daemon.stderr:
                self._daemon.stderr.close()
            self._daemon = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> PulseNullSink:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class Recording:
    """``parec`` of the sink's monitor while the ``with`` block runs; ``samples`` after
    (int16, shape (n,) mono or (n, 2) stereo), ``sample_time(n)`` when sample ``n`` passed
    the sink on ``time.monotonic()``, and ``rate``: the sink's own sample rate on that
    clock (``sink_clock``).
    """

    CHUNK = 320  # bytes read at a time: 10 ms of mono int16 at RECORD_RATE

    def __init__(self, pulse: PulseNullSink, channels: int = 1) -> None:
        self._pulse = pulse
        self.channels = channels
        self._proc: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        self._chunks: list[bytes] = []
        self._arrivals: list[tuple[float, int]] = []  # (time.monotonic(), samples so far)
        self._origin = math.inf  # time.monotonic() of sample 0 at the sink
        self.rate = float(RECORD_RATE)
        self.samples = np.zeros(0, np.int16)

    def sample_time(self, n: float) -> float:
        return self._origin + n / self.rate

    def __enter__(self) -> Recording:
        self._proc = subprocess.Popen(
            [
                "parec",
                "-d",
                "out.monitor",
                f"--rate={RECORD_RATE}",
                f"--channels={self.channels}",
                "--format=s16le",
                "--latency-msec=10",
            ],
            env=self._pulse.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._reader = threading.Thread(target=self._read, name="parec-reader", daemon=True)
        self._reader.start()
        time.sleep(0.2)  # parec connected and streaming before anything plays
        return self

    def _read(self) -> None:
        fd, frame_bytes, total = self._proc.stdout.fileno(), 2 * self.channels, 0
        while chunk := os.read(fd, self.CHUNK * self.channels):
            now = time.monotonic()
            self._chunks.append(chunk)
            total += len(chunk)
            self._arrivals.append((now, total // frame_bytes))

    def __exit__(self, *exc) -> None:
        time.sleep(0.3)  # the tail of the last sound reaches the monitor
        self._proc.terminate()
        self._proc.wait(5)
        self._reader.join(5)
        self._proc.stdout.close()
        if self._arrivals:
            times, counts = np.array(self._arrivals).T
            self._origin, self.rate = sink_clock(times, counts)
        samples = np.frombuffer(b"".join(self._chunks), dtype="<i2")
        if self.channels > 1:
            samples = samples[: len(samples) // self.channels * self.channels]
            samples = samples.reshape(-1, self.channels)
        self.samples = samples


def sink_clock(
    times: np.ndarray, counts: np.ndarray, nominal: float = RECORD_RATE, window: float = 2.0
) -> tuple[float, float]:
    """``(origin, rate)``: sample ``n`` passed the sink at ``origin + n / rate`` seconds, from
    a stream's chunk arrivals (``times``, and the ``counts`` of samples received by then).

    A chunk reaches us after its last sample left the sink, so the sink's line lies under
    every ``(count, time)`` point, close to the earliest arrivals. Its slope is the sink's
    own rate, which is not the nominal one on ``time.monotonic()``: PulseAudio's null sink
    runs about 60 ppm fast, a sound card's crystal is off by tens of ppm (and a player
    following the device's pulls runs with it). Assuming the nominal rate would stamp a
    10-minute recording's start 36 ms off. The line is fitted through the earliest arrival
    of each ``window`` seconds, then lowered under every point; recordings under four
    windows long keep the nominal rate.
    """
    lag = times - counts / nominal  # arrival minus nominal time of the samples received
    slope = 0.0  # seconds per sample beyond 1 / nominal
    if times[-1] - times[0] >= 4 * window:
        bins = ((times - times[0]) // window).astype(int)
        earliest = [np.flatnonzero(bins == b)[np.argmin(lag[bins == b])] for b in np.unique(bins)]
        slope = float(np.polyfit(counts[earliest], lag[earliest], 1)[0])
    origin = float(np.min(lag - slope * counts))
    return origin, 1.0 / (1.0 / nominal + slope)


# -- measures --------------------------------------------------------------------------


def envelope(pcm: np.ndarray, rate: int = RECORD_RATE) -> np.ndarray:
    """RMS of each ``WINDOW``-second window of int16 mono samples."""
    w = int(rate * WINDOW)
    n = len(pcm) // w
    x = np.asarray(pcm[: n * w], np.float64).reshape(n, w)
    return np.sqrt((x**2).mean(axis=1))


def active_seconds(pcm: np.ndarray, rate: int = RECORD_RATE) -> float:
    """Seconds of windows louder than ``ACTIVE_RMS``."""
    return float((envelope(pcm, rate) > ACTIVE_RMS).sum() * WINDOW)


def longest_gap(pcm: np.ndarray, rate: int = RECORD_RATE) -> float:
    """Longest run of quiet windows between the first and the last active one (s)."""
    active = np.flatnonzero(envelope(pcm, rate) > ACTIVE_RMS)
    if len(active) < 2:
        return 0.0
    return float((np.diff(active).max() - 1) * WINDOW)


def align(recorded: np.ndarray, source: np.ndarray, rate: int = RECORD_RATE) -> tuple[int, float]:
    """Where ``source`` begins in ``recorded`` (in windows) and the envelope correlation
    there: the best normalised correlation over every placement."""
    rec, src = envelope(recorded, rate), envelope(source, rate)
    if len(rec) < len(src):
        rec = np.concatenate([rec, np.zeros(len(src) - len(rec))])
    best, best_at = -1.0, 0
    for at in range(len(rec) - len(src) + 1):
        seg = rec[at : at + len(src)]
        if seg.std() == 0 or src.std() == 0:
            continue
        r = float(np.corrcoef(seg, src)[0, 1])
        if r > best:
            best, best_at = r, at
    return best_at, best
