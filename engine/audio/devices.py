"""Output devices: each one pulls frames from a mixer at its own pace.

- ``PyAudioDevice``: a real sound card through PortAudio (when one exists).
- ``NullDevice``: no sound card; consumes samples at exactly the real-time rate, so every
  clock downstream behaves as with a real device.
- ``VirtualDevice``: offline rendering; advanced explicitly (one video frame of samples at
  a time), so output is sample-accurate and deterministic.

A device that loses its hardware hands the mixer to a ``NullDevice`` and tells the mixer's
``on_device_lost`` listeners, so playback clocks keep running.

Threads: ``start``/``stop`` come from the app, ``report_lost`` from a watchdog or device
thread; ``_lifecycle_lock`` makes them take turns, so a device is stopped once, falls back
at most once, and never after the app stopped it. A device still playing at interpreter exit
is stopped by an ``atexit`` hook. Stopping a lost device also stops its
fallback, so no pacing thread outlives the app's cleanup.

Over 400 lines on purpose: the three devices share one lifecycle (``AudioDevice``) and
the fallback from one kind to another; most of the length is PortAudio's device choice.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import os
import threading
import weakref
from collections.abc import Iterator
from typing import Any, Self

import numpy as np

from engine.audio.mixer import CHANNELS, Mixer
from engine.audio.resample import StreamResampler
from engine.errors import INVALID_ARGUMENT, EngineError

log = logging.getLogger(__name__)

# Stable codes (the same strings as avatarkit's ErrorCode members of those names).
PLAYBACK_START_FAILED = "playbackStartFailed"
AUDIO_DEVICE_LOST = "audioDeviceLost"

NULL_DEVICE_PERIOD = 0.01  # seconds between NullDevice pulls (a typical device period)
# Seconds per PortAudio callback (rounded up to a power-of-two block). PortAudio keeps two
# blocks queued, so this also sets how long the callback thread may wait for the GIL
# before the card underruns; 30 ms rides out the frame loop's Python work.
PYAUDIO_PERIOD = 0.03
WATCHDOG_PERIOD = 0.5  # seconds between checks that the PortAudio stream is still alive


_playing: weakref.WeakSet[AudioDevice] = weakref.WeakSet()  # started, not yet stopped


def _stop_all() -> None:
    """At interpreter exit, stop every device still playing (an app that never called
    ``stop()`` or ``AvatarSDK.cleanup()``): while Python is still whole. A PortAudio
    callback thread still running into the interpreter's teardown can crash the process
    (the real-audio test player exited with SIGSEGV after its last line, now and then)."""
    for device in list(_playing):
        device.stop()


atexit.register(_stop_all)


def realtime_device_playing() -> bool:
    """True while a device that plays in real time (a sound card, the null device) runs:
    a frame loop should then follow the wall clock (``engine.clock.HeadlessClock``)."""
    # Asked every frame: an empty set (no audio, most renders) is answered without a walk.
    return bool(_playing) and any(device.realtime for device in list(_playing))


class AudioDevice:
    """Base: owns one mixer while started."""

    def __init__(self, mixer: Mixer) -> None:
        self.mixer = mixer
        self.running = False
        # Re-entrant: report_lost() stops the device while holding it.
        self._lifecycle_lock = threading.RLock()
        self._fallback: AudioDevice | None = None  # the NullDevice that took over when lost

    @property
    def latency(self) -> float:
        """Seconds between a sample leaving the mixer and being heard."""
        return self.mixer.latency

    realtime = True  # plays continuously between pulls (the mixer interpolates its clock)

    def start(self) -> Self:
        self.mixer.device = self
        self.mixer.realtime = self.realtime
        self.mixer.restart_clock()  # this device's pulls place the clock afresh
        self.running = True
        _playing.add(self)
        return self

    def stop(self) -> None:
        """Stop playing (idempotent, any thread); also stops the fallback if it was lost."""
        with self._lifecycle_lock:
            self.running = False
            _playing.discard(self)
            fallback, self._fallback = self._fallback, None
            self._release()
        if fallback is not None:
            fallback.stop()

    def _release(self) -> None:
        """Free what ``start`` acquired (called with ``_lifecycle_lock`` held)."""

    def report_lost(self, error: Exception) -> None:
        """The hardware went away: fall back to a NullDevice and notify the mixer's listeners.

        Does nothing when the device is no longer running (stopped, or already lost)."""
        with self._lifecycle_lock:
            if not self.running:
                return
            log.warning("audio device lost (%s); falling back to the null device", error)
            self.stop()
            self.mixer.latency_frames = 0
            self._fallback = NullDevice(self.mixer).start()
        # Outside the lock: a listener may stop this device (or the fallback) itself.
        self.mixer.device_lost(EngineError(AUDIO_DEVICE_LOST, str(error)))

    def __enter__(self) -> Self:
        return self.start() if not self.running else self

    def __exit__(self, *exc: object) -> None:
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

    def start(self) -> Self:
        with self._lifecycle_lock:
            super().start()
            self._stop = threading.Event()  # per thread: a stale one never wakes a new one
            self._thread = threading.Thread(
                target=self._run, args=(self._stop,), name="audio-null-device", daemon=True
            )
            self._thread.start()
        return self

    def _release(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2)  # one period at most: the pacer waits on the event

    def _run(self, stop: threading.Event) -> None:
        # Like a sound card, keep one period queued ahead; our frame f "plays" at
        # started + f/rate. Mixer frames go on from any device before us (a fallback).
        mixer, rate = self.mixer, self.mixer.sample_rate
        started, done, origin = mixer.clock(), 0, mixer.frames_mixed
        ahead = int(self.period * rate)
        while not stop.wait(self.period):
            now = mixer.clock()
            due = int((now - started) * rate) + ahead
            if due > done:
                mixer.mix(due - done)
                done = due
            mixer.mark_playing(origin + int((now - started) * rate), now)


def default_block(rate: int, period: float = PYAUDIO_PERIOD) -> int:
    """Frames per callback for ``period`` seconds at ``rate``, rounded up to a power of 2."""
    return 1 << math.ceil(math.log2(max(1.0, rate * period)))


def safe_block(block: int | None, rate: int) -> int:
    """``block`` doubled until it covers ``PYAUDIO_PERIOD``: the callback is Python, and a
    shorter period (256 frames at 48 kHz is 5 ms, the GIL's own switch interval) cannot be
    met while the frame loop runs, so such a card gets whole multiples of its block."""
    if not block:
        return default_block(rate)
    if block < 1:
        raise EngineError(INVALID_ARGUMENT, f"audio block must be positive, got {block}")
    safe = int(block)
    while safe < rate * PYAUDIO_PERIOD:
        safe *= 2
    if safe != block:
        log.info(
            "audio block %d raised to %d frames (%.0f ms) at %d Hz",
            block,
            safe,
            1000 * safe / rate,
            rate,
        )
    return safe


def output_devices() -> list[dict]:
    """The sound outputs PortAudio sees: ``index``, ``name``, ``rate`` (its default),
    ``default`` (True for the system default). Empty without PyAudio or a sound server."""
    try:
        import pyaudio
    except ImportError:
        return []
    with _quiet_stderr():
        pa = pyaudio.PyAudio()
    try:
        try:
            default = pa.get_default_output_device_info()["index"]
        except OSError:
            default = None
        infos = (pa.get_device_info_by_index(i) for i in range(pa.get_device_count()))
        return [
            {
                "index": i["index"],
                "name": i["name"],
                "rate": int(i["defaultSampleRate"]),
                "default": i["index"] == default,
            }
            for i in infos
            if i["maxOutputChannels"] >= CHANNELS
        ]
    finally:
        pa.terminate()


class PyAudioDevice(AudioDevice):
    """A PortAudio output stream pulling from the mixer in its callback.

    ``output``: a device index or (part of) a device name (``output_devices()`` lists
    them); None = the system default. ``rate``: the card's rate; None = the mixer's when
    the card takes it, else the card's default. A card rate other than the mixer's is
    converted here (``StreamResampler``), exact in time, so the audio clock stays true.
    ``block``: frames per callback (None: ``PYAUDIO_PERIOD`` seconds' worth; smaller
    requests are raised to a multiple that covers it, see ``safe_block``).
    """

    def __init__(
        self,
        mixer: Mixer,
        block: int | None = None,
        rate: int | None = None,
        output: int | str | None = None,
    ) -> None:
        super().__init__(mixer)
        self.block = block
        self.rate = rate
        self.output = output
        self.underruns = 0  # callbacks PortAudio flagged as late (the card ran dry)
        self._pa = None
        self._stream = None
        self._resampler: StreamResampler | None = None
        self._origin = 0  # mixer frame that resampler input frame 0 is
        self._watchdog = threading.Event()

    def start(self) -> Self:
        try:
            import pyaudio
        except ImportError as exc:
            raise EngineError(PLAYBACK_START_FAILED, "pyaudio is not installed") from exc
        with _quiet_stderr():  # PortAudio prints every backend it probes (ALSA, JACK...)
            pa = pyaudio.PyAudio()
        try:
            index = _find_output(pa, self.output)
            rate = self.rate or _pick_rate(pa, index, self.mixer.sample_rate)
            block = safe_block(self.block, rate)
            stream = pa.open(
                format=pyaudio.paFloat32,
                channels=CHANNELS,
                rate=rate,
                output=True,
                output_device_index=index,
                frames_per_buffer=block,
                stream_callback=self._callback,
                start=False,
            )
        except (OSError, ValueError) as exc:
            pa.terminate()
            raise EngineError(PLAYBACK_START_FAILED, f"no audio output device: {exc}") from exc
        self.rate, self.block = rate, block
        if rate != self.mixer.sample_rate:
            self._resampler = StreamResampler(self.mixer.sample_rate, rate)
            self._origin = self.mixer.frames_mixed
        with self._lifecycle_lock:
            self._pa, self._stream = pa, stream
            self.mixer.latency_frames = int(stream.get_output_latency() * self.mixer.sample_rate)
            super().start()
            stream.start_stream()
            self._watchdog = threading.Event()  # per watchdog, like NullDevice's event
            threading.Thread(
                target=self._watch, args=(self._watchdog,), name="audio-watchdog", daemon=True
            ).start()
        return self

    def _callback(
        self, _in: bytes | None, frame_count: int, _time_info: dict, status: int
    ) -> tuple[bytes, int]:
        import pyaudio

        if status & pyaudio.paOutputUnderflow:
            self.underruns += 1
        resampler = self._resampler
        if resampler is None:
            return self.mixer.mix(frame_count).tobytes(), pyaudio.paContinue
        now = self.mixer.clock()
        need = resampler.input_needed(frame_count)
        if need:
            resampler.push(self.mixer.mix(need))
        # The mixer frame under this block's first sample starts playing now (the mixer
        # subtracts the stream latency), not the first frame just mixed.
        self.mixer.mark_playing(self._origin + resampler.position(), now)
        return resampler.pull(frame_count).tobytes(), pyaudio.paContinue

    def _watch(self, stopped: threading.Event) -> None:
        while not stopped.wait(WATCHDOG_PERIOD):
            with self._lifecycle_lock:  # stop() cannot close the stream under our check
                if not self.running or self._stream is None:
                    return
                try:
                    alive, why = self._stream.is_active(), "PortAudio stream stopped"
                except Exception as exc:  # a dying PortAudio raises: that is a loss too
                    alive, why = False, f"PortAudio stream failed: {exc}"
            if not alive:
                self.report_lost(OSError(why))
                return

    def _release(self) -> None:
        self._watchdog.set()
        stream, pa, self._stream, self._pa = self._stream, self._pa, None, None
        if stream is not None:
            try:
                stream.stop_stream()
                stream.close()
            except OSError:
                pass  # the device is already gone
            pa.terminate()


def _find_output(pa: Any, output: int | str | None) -> int:
    """PortAudio's index of the requested output (see ``PyAudioDevice``)."""
    if output is None:
        return pa.get_default_output_device_info()["index"]  # OSError when there is none
    infos = [pa.get_device_info_by_index(i) for i in range(pa.get_device_count())]
    outputs = [i for i in infos if i["maxOutputChannels"] >= CHANNELS]
    if isinstance(output, int) or str(output).isdigit():
        matches = [i for i in outputs if i["index"] == int(output)]
    else:
        want = str(output).lower()
        matches = [i for i in outputs if i["name"].lower() == want] or [
            i for i in outputs if want in i["name"].lower()
        ]
    if not matches:
        names = ", ".join(repr(i["name"]) for i in outputs) or "none"
        raise ValueError(f"no output device {output!r} (outputs: {names})")
    return matches[0]["index"]


def _pick_rate(pa: Any, index: int, wanted: int) -> int:
    """``wanted`` when the card plays it, else the card's own default rate."""
    import pyaudio

    try:
        pa.is_format_supported(
            wanted, output_device=index, output_channels=CHANNELS, output_format=pyaudio.paFloat32
        )
        return wanted
    except ValueError:
        return int(pa.get_device_info_by_index(index)["defaultSampleRate"])


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
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


def open_device(
    mixer: Mixer,
    kind: str = "auto",
    *,
    output: int | str | None = None,
    rate: int | None = None,
    block: int | None = None,
) -> AudioDevice:
    """Start an output device for ``mixer``: ``auto`` (a sound card, else null), ``pyaudio``,
    ``null`` or ``virtual``. ``output``/``rate``/``block`` choose the card (``PyAudioDevice``)."""
    if kind == "virtual":
        return VirtualDevice(mixer).start()
    if kind == "null":
        return NullDevice(mixer).start()
    if kind not in ("auto", "pyaudio"):
        raise EngineError(INVALID_ARGUMENT, f"unknown audio device kind {kind!r}")
    try:
        return PyAudioDevice(mixer, block=block, rate=rate, output=output).start()
    except EngineError as exc:
        if kind == "pyaudio":
            raise
        log.info("%s; using the null audio device", exc.message)
        return NullDevice(mixer).start()
