"""Capture: frames to PNG, and an MP4 writer (H.264 + AAC via PyAV) fed from the loop.

``VideoWriter`` timestamps video by frame count and audio by sample count, both from
zero, so a video fed one frame plus ``sample_rate / fps`` samples per frame has audio
and picture aligned sample-exactly (AAC's own 1024-sample framing aside).
"""

from __future__ import annotations

import queue
import threading
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np

from engine import errors
from engine.errors import EngineError

if TYPE_CHECKING:
    import av
    from av.audio.stream import AudioStream
    from av.video.stream import VideoStream

H264_ENCODERS = ("libx264", "libopenh264", "h264")  # first one PyAV's FFmpeg has
# Containers with an alpha channel, by suffix: (video codec, pixel format, options, audio codec).
ALPHA_FORMATS = {
    ".webm": ("libvpx-vp9", "yuva420p", {"crf": "30", "b": "0", "row-mt": "1"}, "libopus"),
    ".mov": ("prores_ks", "yuva444p10le", {"profile": "4"}, "pcm_s16le"),  # ProRes 4444
}
ENCODE_QUEUE = 4  # frames waiting for the encoder thread before write_frame blocks


def read_pixels(
    framebuffer, size: tuple[int, int] | None = None, alpha: bool = False
) -> np.ndarray:
    """Read a moderngl framebuffer as HxWx3 (or x4) uint8, top row first."""
    components = 4 if alpha else 3
    w, h = size or framebuffer.size
    data = framebuffer.read(viewport=(0, 0, w, h), components=components, alignment=1)
    return np.frombuffer(data, np.uint8).reshape(h, w, components)[::-1].copy()


def straight_alpha(rgba: np.ndarray) -> np.ndarray:
    """Premultiplied RGBA (what a frame cleared to transparent holds: edges and blended
    surfaces are scaled by their coverage) as straight RGBA, what PNG and video expect."""
    alpha = rgba[..., 3:4].astype(np.float32)
    rgb = rgba[..., :3].astype(np.float32) * 255.0 / np.maximum(alpha, 1.0)
    out = rgba.copy()
    out[..., :3] = np.where(alpha > 0, np.clip(np.round(rgb), 0, 255), 0).astype(np.uint8)
    return out


def png_bytes(pixels: np.ndarray) -> bytes:
    """HxWx3 (RGB) or HxWx4 (straight RGBA) uint8 as PNG file bytes."""
    import io

    from PIL import Image

    out = io.BytesIO()
    mode = "RGBA" if pixels.shape[2] == 4 else "RGB"
    Image.fromarray(np.ascontiguousarray(pixels), mode).save(out, "PNG")
    return out.getvalue()


def save_png(pixels: np.ndarray, path: str | Path) -> Path:
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "RGBA" if pixels.shape[2] == 4 else "RGB"
    Image.fromarray(np.ascontiguousarray(pixels), mode).save(path)
    return path


def _h264_codec() -> str:
    import av

    for name in H264_ENCODERS:
        try:
            av.codec.Codec(name, "w")
            return name
        except Exception:
            continue
    raise EngineError(errors.CAPTURE_FAILED, "PyAV's FFmpeg has no H.264 encoder")


def encoder_frame(image: np.ndarray, layout: str, pix_fmt: str) -> av.VideoFrame:
    """``image`` (HxWxC uint8, ``layout`` rgb24 or rgba) converted to the encoder's
    ``pix_fmt`` by one swscale thread, in a frame PyAV allocated, its line padding zeroed.

    The same frames should make the same video (render tests compare them). Threaded
    swscale (PyAV's default: a thread per CPU) gave a different yuva444p10le picture (the
    .mov path) in 12 of 60 conversions of one image; one thread: 0 of 60, and the faster
    conversion on two busy cores (720p yuv420p: 7.3 ms against 8.8). Handed to x264 as the
    converter returned it, the same 97 frames made a different first frame in 7 of 400
    encodes (CPUs busy); copied into a frame of its own: 2 of 800 (docs/engine.md)."""
    import av

    converted = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=layout).reformat(
        format=pix_fmt, threads=1
    )
    frame = av.VideoFrame(image.shape[1], image.shape[0], pix_fmt)
    sample = 2 if any(c.bits > 8 for c in frame.format.components) else 1  # bytes (planar)
    for given, wanted in zip(converted.planes, frame.planes, strict=True):
        rows = np.frombuffer(memoryview(given), np.uint8).reshape(-1, given.line_size)
        out = np.frombuffer(memoryview(wanted), np.uint8).reshape(-1, wanted.line_size)
        width = wanted.width * sample  # the picture; the rest of a line is padding, zeroed
        out[:, width:] = 0
        out[:, :width] = rows[: len(out), :width]
    return frame


class VideoWriter:
    """Write RGB frames and s16le PCM to an MP4 (H.264 video, AAC audio), or RGBA frames
    to a video with alpha: ``.webm`` (VP9 with alpha, Opus) or ``.mov`` (ProRes 4444, PCM).

    ``sample_rate=None`` writes video only. Use as a context manager or call ``close()``;
    on close, audio shorter than the video is padded with silence. ``threaded``: encode
    on a thread of its own (``write_*`` queue the data, at most ``ENCODE_QUEUE`` frames
    ahead, so do not change an array once written; an encoder error is raised by the
    next call or by ``close()``).
    """

    def __init__(
        self,
        path: str | Path,
        size: tuple[int, int],
        fps: float = 30.0,
        sample_rate: int | None = 48000,
        channels: int = 1,
        crf: int = 20,
        threaded: bool = False,
    ) -> None:
        import av

        w, h = int(size[0]), int(size[1])
        if w % 2 or h % 2 or w <= 0 or h <= 0:
            raise EngineError(
                errors.INVALID_ARGUMENT, f"H.264 needs an even, positive frame size, got {w}x{h}"
            )
        if channels not in (1, 2):
            raise EngineError(errors.INVALID_ARGUMENT, f"channels must be 1 or 2, got {channels}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.size = (w, h)
        self.fps = Fraction(fps).limit_denominator(1001)
        self.sample_rate = sample_rate
        self.channels = channels
        self.frames = 0
        self.samples = 0  # audio samples (per channel) written so far
        alpha_format = ALPHA_FORMATS.get(self.path.suffix.lower())
        self.alpha = alpha_format is not None  # write_frame takes straight RGBA
        if alpha_format is None:
            codec, pix_fmt, audio_codec = _h264_codec(), "yuv420p", "aac"
            # No B-frames: each frame shows its own instant. A B-frame is predicted from the
            # next P-frame too, and the next mouth shape ghosted into the frame before it
            # (a visible change one frame early on a render test); costs ~12% in size.
            options = {"crf": str(crf), "preset": "veryfast", "bf": "0"}
        else:
            codec, pix_fmt, options, audio_codec = alpha_format
        self._container = av.open(str(self.path), "w")
        # The encoder's name is chosen at run time: tell the checker it is a video stream.
        self._video = cast("VideoStream", self._container.add_stream(codec, rate=self.fps))
        self._video.width, self._video.height = w, h
        self._video.pix_fmt = self._pix_fmt = pix_fmt
        self._video.time_base = 1 / self.fps
        self._video.options = dict(options)
        self._audio = None
        self._rate = 0  # the audio stream's sample rate, when there is one
        if sample_rate:
            self._rate = int(sample_rate)
            layout = "mono" if channels == 1 else "stereo"
            # Opus runs at 48 kHz: PyAV resamples the PCM on the way in.
            rate = 48000 if audio_codec == "libopus" else int(sample_rate)
            self._audio = cast(
                "AudioStream", self._container.add_stream(audio_codec, rate=rate, layout=layout)
            )
            self._audio.time_base = Fraction(1, rate)
        self._closed = False
        self._queue: queue.Queue | None = None
        self._error: BaseException | None = None
        if threaded:
            self._queue = queue.Queue(ENCODE_QUEUE)
            self._thread = threading.Thread(target=self._encode_loop, name="video-encoder")
            self._thread.start()

    def write_frame(self, rgb: np.ndarray) -> None:
        """One video frame: HxWx3 (or x4) uint8, top row first (as ``read_pixels`` gives);
        a writer with alpha takes HxWx4 straight RGBA (``straight_alpha``)."""

        if rgb.shape[0] != self.size[1] or rgb.shape[1] != self.size[0]:
            raise EngineError(
                errors.INVALID_ARGUMENT,
                f"frame is {rgb.shape[1]}x{rgb.shape[0]}, writer is {self.size[0]}x{self.size[1]}",
            )
        if self.alpha and rgb.shape[2] != 4:
            raise EngineError(errors.INVALID_ARGUMENT, "a video with alpha takes RGBA frames")
        self._submit(self._encode_video, rgb, self.frames)
        self.frames += 1

    def _encode_video(self, rgb: np.ndarray, pts: int) -> None:
        if self.alpha:
            frame = encoder_frame(rgb, "rgba", self._pix_fmt)
        else:
            frame = encoder_frame(rgb[:, :, :3], "rgb24", self._pix_fmt)
        frame.pts = pts
        self._mux(self._video.encode(frame))

    def write_audio(self, pcm: bytes | np.ndarray) -> None:
        """s16le PCM (interleaved when stereo), any length: bytes or an int16 array."""

        if self._audio is None:
            raise EngineError(
                errors.INVALID_ARGUMENT, "this writer has no audio stream (sample_rate=None)"
            )
        samples = (
            np.frombuffer(pcm, np.int16)
            if isinstance(pcm, bytes | bytearray | memoryview)
            else np.asarray(pcm, np.int16)
        )
        if samples.size % self.channels:
            raise EngineError(
                errors.INVALID_ARGUMENT, "PCM length is not a whole number of sample frames"
            )
        if samples.size == 0:
            return
        self._submit(self._encode_audio, samples, self.samples)
        self.samples += samples.size // self.channels

    def _encode_audio(self, samples: np.ndarray, pts: int) -> None:
        import av

        frame = av.AudioFrame.from_ndarray(
            samples.reshape(1, -1), format="s16", layout="mono" if self.channels == 1 else "stereo"
        )
        frame.sample_rate = self._rate
        frame.pts = pts
        assert self._audio is not None
        self._mux(self._audio.encode(frame))

    def _submit(self, encode, data: np.ndarray, pts: int) -> None:
        if self._queue is None:
            encode(data, pts)
            return
        self._raise_encoder_error()
        self._queue.put((encode, data, pts))

    def _encode_loop(self) -> None:
        assert self._queue is not None
        while (item := self._queue.get()) is not None:
            if self._error is None:  # after an error, drain without encoding
                encode, data, pts = item
                try:
                    encode(data, pts)
                except BaseException as exc:
                    self._error = exc

    def _raise_encoder_error(self) -> None:
        if self._error is not None:
            raise EngineError(
                errors.CAPTURE_FAILED, f"encoding {self.path.name} failed: {self._error}"
            ) from self._error

    @property
    def duration(self) -> float:
        return float(self.frames / self.fps)

    def _mux(self, packets) -> None:
        for packet in packets:
            self._container.mux(packet)

    def close(self) -> Path:
        if self._closed:
            return self.path
        self._closed = True
        try:
            if self._queue is not None:
                self._queue.put(None)
                self._thread.join()
                self._queue = None  # the padding and flushes below run here
                self._raise_encoder_error()
            if self._audio is not None:
                missing = round(self.duration * self._rate) - self.samples
                if missing > 0:
                    self.write_audio(np.zeros(missing * self.channels, np.int16))
                self._mux(self._audio.encode(None))
            self._mux(self._video.encode(None))
        finally:
            self._container.close()
        return self.path

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
