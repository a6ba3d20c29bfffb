"""``avatarkit render``: a WAV file in, an MP4 of the avatar speaking it out (headless).

The whole product path runs: an embedded Motion Server on loopback, Direct Mode over the
real protocol, an ``AvatarView`` in an engine scene rendered with EGL. Time is virtual:
every video frame advances the audio device by exactly one frame of samples, so the
video is sample-accurate, deterministic and exactly as long as the audio (to a frame).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avatarkit.cli import video_size
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.motion.stream import SUPPORTED_FPS, SUPPORTED_SAMPLE_RATES

log = logging.getLogger(__name__)

SEND_CHUNK_S = 0.2  # seconds of audio per websocket message
MOTION_WAIT_S = 60.0  # give up waiting for motion after this long (then audio only)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "render", help="render an avatar speaking a WAV file to MP4 (headless)"
    )
    p.add_argument("--avatar", default="ava", help="bundled avatar id (default: ava)")
    p.add_argument(
        "--audio", required=True, type=Path, help="speech: 16-bit PCM WAV, mono or stereo"
    )
    p.add_argument("-o", "--output", required=True, type=Path, help="the MP4 to write")
    p.add_argument("--size", default="640x360", type=video_size, help="WIDTHxHEIGHT (default 640x360)")
    p.add_argument("--fps", default=30, type=int, choices=SUPPORTED_FPS)
    p.add_argument(
        "--idle", default="on", choices=("on", "off"), help="idle animation between speech"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = render_video(
        args.avatar, args.audio, args.output, args.size, args.fps, args.idle == "on", args.model
    )
    print(
        f"{result.path}: {result.frames} frames, {result.duration:.3f} s, {result.seconds:.1f} s to render"
    )
    return 0


@dataclass(frozen=True)
class RenderResult:
    path: Path
    frames: int
    duration: float  # seconds of video (== audio, to one frame)
    seconds: float  # wall time spent


def read_wav(path: Path) -> tuple[bytes, int]:
    """Mono PCM s16le and its rate; stereo is averaged. Clear errors for anything else."""
    try:
        with wave.open(str(path), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            data = wav.readframes(wav.getnframes())
    except FileNotFoundError as exc:
        raise AvatarKitError(ErrorCode.INVALID_AUDIO, f"no such file: {path}") from exc
    except (wave.Error, EOFError) as exc:
        raise AvatarKitError(
            ErrorCode.INVALID_AUDIO, f"{path}: not a PCM WAV file ({exc})"
        ) from exc
    if width != 2:
        raise AvatarKitError(
            ErrorCode.INVALID_AUDIO, f"{path}: {8 * width}-bit samples; 16-bit PCM needed"
        )
    if rate not in SUPPORTED_SAMPLE_RATES:
        raise AvatarKitError(
            ErrorCode.UNSUPPORTED_SAMPLE_RATE,
            f"{path}: {rate} Hz; supported {SUPPORTED_SAMPLE_RATES}",
        )
    samples = np.frombuffer(data, "<i2").reshape(-1, channels)
    if not len(samples):
        raise AvatarKitError(ErrorCode.NO_AUDIO, f"{path}: no audio")
    mono = samples[:, 0] if channels == 1 else samples.mean(axis=1).round().astype("<i2")
    return mono.astype("<i2").tobytes(), rate


def check_output(path: Path) -> None:
    """Make sure ``path`` can be written (its folder created): a readable error if not."""
    if path.is_dir():
        raise AvatarKitError(ErrorCode.INVALID_REQUEST, f"{path} is a directory; name the file to write")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise AvatarKitError(ErrorCode.INVALID_REQUEST, f"cannot create the folder {path.parent}: a file is in the way") from exc
    except OSError as exc:
        raise AvatarKitError(ErrorCode.INVALID_REQUEST, f"cannot create the folder {path.parent}: {exc.strerror or exc}") from exc
    if not os.access(path.parent, os.W_OK):
        raise AvatarKitError(ErrorCode.INVALID_REQUEST, f"cannot write in {path.parent}")


def render_video(
    avatar_id: str,
    audio_path: Path,
    output: Path,
    size: tuple[int, int] = (640, 360),
    fps: int = 30,
    idle: bool = True,
    model: str = "lipsync",  # avatarkit.motion.create_stream's; "envelope" only when named
) -> RenderResult:
    from avatarkit.controller import ConnectionState
    from avatarkit.manager import AvatarManager
    from avatarkit.paths import AVATARS_DIR
    from avatarkit.sdk import AvatarSDK, Configuration
    from avatarkit.server.embedded import EmbeddedServer
    from avatarkit.view import AvatarView
    from engine import App, VideoWriter
    from engine.audio import Mixer, VirtualDevice

    started = time.perf_counter()
    pcm, rate = read_wav(Path(audio_path))
    check_output(Path(output))  # fail now, not after the whole render
    samples = len(pcm) // 2
    frames = math.ceil(samples * fps / rate)  # the last frame may show the audio's tail
    avatar = AvatarManager(str(AVATARS_DIR)).load_blocking(avatar_id)
    mixer = Mixer(rate)
    device = VirtualDevice(mixer).start()
    try:
        with EmbeddedServer(motion_model=model) as server, App.headless(size=size, fps=fps) as app:
            AvatarSDK.initialize(
                server.app_id,
                Configuration(
                    ingress_url=server.ingress_url,
                    console_url=server.console_url,
                    sample_rate=rate,
                    audio_device="virtual",
                ),
            )
            AvatarSDK.set_session_token(server.issue_token())
            view = app.scene.create_entity(avatar.id).add_component(
                AvatarView(avatar, mixer=mixer, idle=idle)
            )
            view.frame(app.scene.camera)
            controller = view.controller
            controller.start()
            step = int(SEND_CHUNK_S * rate) * 2
            for i in range(0, len(pcm), step):
                controller.send(pcm[i : i + step], end=i + step >= len(pcm))
            _wait_for_motion(controller, samples / rate)
            if controller.connection_state == ConnectionState.FAILED:
                raise AvatarKitError(
                    ErrorCode.CONNECTION_FAILED, "could not reach the embedded Motion Server"
                )
            with VideoWriter(output, size, fps=fps, sample_rate=rate) as writer:
                for k in range(frames):
                    app.step()  # the face is sampled at the audio clock: samples played so far
                    writer.write_frame(app.read_pixels())
                    heard = device.advance(device.frames_for_video_frame(k, fps))
                    writer.write_audio(
                        np.clip(np.round(heard[:, 0] * 32768), -32768, 32767).astype("<i2")
                    )
            view.dispose()
    finally:
        AvatarSDK.cleanup()
    return RenderResult(Path(output), frames, frames / fps, time.perf_counter() - started)


def _wait_for_motion(controller, seconds: float) -> None:
    """Render only once the whole utterance's motion is here: a virtual clock never waits,
    so the face is never short of motion and the output does not depend on timing."""
    deadline = time.monotonic() + MOTION_WAIT_S
    while time.monotonic() < deadline:
        health = controller.buffered()
        if health.motion_ms >= seconds * 1000 - 1e-6 or controller.connection_state == "failed":
            return
        time.sleep(0.005)
    log.warning("motion incomplete after %.0f s; the rest plays with a still face", MOTION_WAIT_S)
