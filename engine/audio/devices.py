"""Output devices: each one pulls frames from a mixer at its own pace.

- ``PyAudioDevice``: a real sound card through PortAudio (when one exists).
- ``NullDevice``: no sound card; consumes samples at exactly the real-time rate, so every
  clock downstream behaves as with a real device.
- ``VirtualDevice``: offline rendering; advanced explicitly (one video frame of samples at
  a time), so output is sample-accurate and deterministic.

A device that loses its hardware hands the mixer to a ``NullDevice`` and tells the mixer's
``on_device_lost`` listeners, so playback clocks keep running.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading

import numpy as np

from engine.audio.mixer import CHANNELS, Mixer
from engine.errors import INVALID_ARGUMENT, EngineError

log = logging.getLogger(__name__)

# Stable codes (the same strings as avatarkit's ErrorCode members of those names).
PLAYBACK_START_FAILED = "playbackStartFailed"
AUDIO_DEVICE_LOST = "audioDeviceLost"

NULL_DEVICE_PERIOD = 0.01  # seconds between NullDevice pulls (a typical device period)
PYAUDIO_BLOCK = 512  # frames per PortAudio callback
WATCHDOG_PERIOD = 0.5  # seconds between checks that the PortAudio stream is still alive


class AudioDevice:
    """Base: owns one mixer while started."""

    def __init__(self, mixer: Mixer) -> None:
        self.mixer = mixer
        self.running = False

    @property
    def latency(self) -> float:
        """Seconds between a sample leaving the mixer and being heard."""
        return self.mixer.latency

    realtime = True  # plays continuously between pulls (the mixer interpolates its clock)

    def start(self) -> AudioDevice:
        self.mixer.device = self
        self.mixer.realtime = self.realtime
        self.running = True
        return self

    def stop(self) -> None:
        self.running = False

    def report_lost(self, error: Exception) -> None:
        """The hardware went away: fall back to a NullDevice and notify the mixer's listeners."""
        log.warning("audio device lost (%s); falling back to the null device", error)
        self.stop()
        self.mixer.latency_frames = 0
        NullDevice(self.mixer).start()
        self.mixer.device_lost(EngineError(AUDIO_DEVICE_LOST, str(error)))

    def __enter__(self) -> AudioDevice:
        return self.start() if not self.running else self

    def __exit__(self, *exc) -> None:
        self.stop()


class VirtualDevice(AudioDevice):
    """Advanced by the caller; no latency, no thread."""

    realtime = False

    def advance(self, frames: int) -> np.ndarray:
        """Consume exactly ``frames`` frames now; returns them as float32 (frames, 2)."""
        return self.mixer.mix(frames)

    def frames_for_video_frame(self, index: int, fps: int) -> int:
        """Samples in video frame ``index``: exact integer boundaries, so no drift ever."""
        rate = self.mixer.sample_rate
        return (index + 1) * rate // fps - index * rate // fps


class NullDevice(AudioDevice):
    """Discards audio, paced by the real-time clock in small periods like a real device."""

    def __init__(self, mixer: Mixer, period: float = NULL_DEVICE_PERIOD) -> None:
        super().__init__(mixer)
        self.period = period
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> NullDevice:
        super().start()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="audio-null-device", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        super().stop()
        self._stop.set()
        if self._thread and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)

    def _run(self) -> None:
        # Like a sound card, keep one period queued ahead; our frame f "plays" at
        # started + f/rate. Mixer frames go on from any device before us (a fallback).
        mixer, rate = self.mixer, self.mixer.sample_rate
        started, done, origin = mixer.clock(), 0, mixer.frames_mixed
        ahead = int(self.period * rate)
        while not self._stop.wait(self.period):
            now = mixer.clock()
            due = int((now - started) * rate) + ahead
            if due > done:
                mixer.mix(due - done)
                done = due
            mixer.mark_playing(origin + int((now - started) * rate), now)


class PyAudioDevice(AudioDevice):
    """A PortAudio output stream pulling from the mixer in its callback."""

    def __init__(self, mixer: Mixer, block: int = PYAUDIO_BLOCK) -> None:
        super().__init__(mixer)
        self.block = block
        self._pa = None
        self._stream = None
        self._watchdog = threading.Event()

    def start(self) -> PyAudioDevice:
        try:
            import pyaudio
        except ImportError as exc:
            raise EngineError(PLAYBACK_START_FAILED, "pyaudio is not installed") from exc
        with _quiet_stderr():  # PortAudio prints every backend it probes (ALSA, JACK...)
            pa = pyaudio.PyAudio()
        try:
            pa.get_default_output_device_info()
            stream = pa.open(
                format=pyaudio.paFloat32,
                channels=CHANNELS,
                rate=self.mixer.sample_rate,
                output=True,
                frames_per_buffer=self.block,
                stream_callback=self._callback,
            )
        except (OSError, ValueError) as exc:
            pa.terminate()
            raise EngineError(PLAYBACK_START_FAILED, f"no audio output device: {exc}") from exc
        self._pa, self._stream = pa, stream
        self.mixer.latency_frames = int(stream.get_output_latency() * self.mixer.sample_rate)
        super().start()
        self._watchdog.clear()
        threading.Thread(target=self._watch, name="audio-watchdog", daemon=True).start()
        return self

    def _callback(self, _in, frame_count, _time_info, _status):
        import pyaudio

        return self.mixer.mix(frame_count).tobytes(), pyaudio.paContinue

    def _watch(self) -> None:
        while not self._watchdog.wait(WATCHDOG_PERIOD):
            if self.running and not self._stream.is_active():
                self.report_lost(OSError("PortAudio stream stopped"))
                return

    def stop(self) -> None:
        super().stop()
        self._watchdog.set()
        if self._stream is not None:
            try:
                self._stream.stop_stream()
                self._stream.close()
            except OSError:
                pass  # the device is already gone
            self._pa.terminate()
            self._stream = self._pa = None


@contextlib.contextmanager
def _quiet_stderr():
    """Silence C-level writes to stderr (fd 2) for the duration."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def open_device(mixer: Mixer, kind: str = "auto") -> AudioDevice:
    """Start an output device for ``mixer``: ``auto`` (a sound card, else null), ``pyaudio``,
    ``null`` or ``virtual``."""
    if kind == "virtual":
        return VirtualDevice(mixer).start()
    if kind == "null":
        return NullDevice(mixer).start()
    if kind not in ("auto", "pyaudio"):
        raise EngineError(INVALID_ARGUMENT, f"unknown audio device kind {kind!r}")
    try:
        return PyAudioDevice(mixer).start()
    except EngineError as exc:
        if kind == "pyaudio":
            raise
        log.info("%s; using the null audio device", exc.message)
        return NullDevice(mixer).start()
