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
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avatarkit.cli import video_size
from avatarkit.cli.common import check_output, open_avatar, output_with_suffix, read_wav
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.motion.stream import SUPPORTED_FPS
from engine.render.quality import QUALITY_NAMES

log = logging.getLogger(__name__)

SEND_CHUNK_S = 0.2  # seconds of audio per websocket message
MOTION_WAIT_S = 60.0  # give up waiting for motion after this long (then audio only)


DESCRIPTION = """Render an avatar speaking a WAV file to an MP4 (H.264 + AAC), off-screen.

The whole product path runs on this machine: an embedded Motion Server, Direct Mode over
the real protocol, the avatar in an engine scene. The video is exactly as long as the
audio and does not depend on machine speed (time is virtual)."""

EXAMPLES = """examples:
  avatarkit render --audio assets/speech/greeting.wav -o out/greeting.mp4
  avatarkit render --avatar mei --audio speech.wav -o mei.mp4 --size 1280x720 --fps 60
  avatarkit render --avatar my_avatar.vrm --audio speech.wav -o mine.mp4
  avatarkit render --audio speech.wav -o still.mp4 --idle off
  avatarkit render --audio speech.wav -o alpha.webm --background transparent  # or .mov
  avatarkit render --audio speech.wav -o best.mp4 --quality high   # 4x MSAA, slower on a CPU"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "render",
        help="render an avatar speaking a WAV file to MP4 (headless)",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--avatar",
        default="ava",
        help="bundled avatar id (see `avatarkit avatars`) or a .glb/.gltf/.vrm file or avatar "
        "folder (default: ava)",
    )
    p.add_argument(
        "--audio",
        required=True,
        type=Path,
        help="speech WAV: 8/16/24/32-bit integer or 32-bit float PCM, any channel count "
        "(downmixed)",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        type=Path,
        help="the MP4 to write (.mp4 is added if there is no extension); with "
        "--background transparent a .webm (VP9 with alpha) or .mov (ProRes 4444)",
    )
    p.add_argument(
        "--size",
        default="640x360",
        type=video_size,
        help="WIDTHxHEIGHT, even numbers (default 640x360)",
    )
    p.add_argument(
        "--fps",
        default=30,
        type=int,
        choices=SUPPORTED_FPS,
        help=f"video frame rate, one of {', '.join(map(str, SUPPORTED_FPS))} (default 30)",
    )
    p.add_argument(
        "--idle",
        default="on",
        choices=("on", "off"),
        help="idle animation (blinks, breathing) around speech (default on)",
    )
    p.add_argument(
        "--background",
        default="scene",
        choices=("scene", "transparent"),
        help="scene: the lit gradient (default); transparent: alpha 0 around the avatar, "
        "for compositing (needs -o .webm or .mov)",
    )
    p.add_argument(
        "--quality",
        default="auto",
        choices=QUALITY_NAMES,
        help="anti-aliasing: low (none), medium (FXAA edge pass), high (4x MSAA); auto: "
        "medium on a software rasteriser, high on a GPU (default auto)",
    )
    p.add_argument(
        "--samples",
        type=int,
        choices=(0, 2, 4, 8),
        help="MSAA samples per pixel, overriding the quality's (0 = off)",
    )
    p.set_defaults(func=run)


ALPHA_SUFFIXES = (".webm", ".mov")


def run(args: argparse.Namespace) -> int:
    from avatarkit.cli.progress import Progress

    if args.background == "transparent":
        output = args.output if args.output.suffix else args.output.with_suffix(".webm")
        if output.suffix.lower() not in ALPHA_SUFFIXES:
            raise AvatarKitError(
                ErrorCode.INVALID_REQUEST,
                f"{output}: a transparent background needs a video with alpha: "
                "name it .webm (VP9) or .mov (ProRes 4444)",
            )
    else:
        output = output_with_suffix(args.output, ".mp4")
    bar = Progress(output.name, final_line=False)  # the result line below is the final line
    result = render_video(
        args.avatar,
        args.audio,
        output,
        args.size,
        args.fps,
        args.idle == "on",
        progress=bar.update,
        model=args.model,
        background=args.background,
        quality=args.quality,
        samples=args.samples,
    )
    bar.finish("completed")
    print(
        f"{result.path}: {result.frames} frames, {result.duration:.3f} s, "
        f"{result.seconds:.1f} s to render ({result.duration / result.seconds:.2f}x real time, "
        f"quality {result.quality})"
    )
    return 0


@dataclass(frozen=True)
class RenderResult:
    path: Path
    frames: int
    duration: float  # seconds of video (== audio, to one frame)
    seconds: float  # wall time spent
    quality: str = ""  # the render quality used (its name, or name+samples)


def render_video(
    avatar_id: str,  # a bundled id or a path (``open_avatar``)
    audio_path: Path,
    output: Path,
    size: tuple[int, int] = (640, 360),
    fps: int = 30,
    idle: bool = True,
    progress: Callable[[float], None] | None = None,
    model: str = "lipsync",  # avatarkit.motion.create_stream's; "envelope" only when named
    background: str = "scene",  # "transparent": RGBA frames into a .webm / .mov with alpha
    quality: str = "auto",  # engine.render.quality: auto, low, medium, high
    samples: int | None = None,  # MSAA samples overriding the quality's
) -> RenderResult:
    """``progress(fraction)`` after each video frame (e.g. a terminal progress bar).

    The loop keeps both cores busy: the rasteriser draws frame k+1 while the encoder
    thread converts and encodes frame k (``VideoWriter(threaded=True)``), and frames come
    back through pixel buffers that do not stall the GPU (``FrameReader``)."""
    from avatarkit.controller import ConnectionState
    from avatarkit.sdk import AvatarSDK, Configuration
    from avatarkit.server.embedded import EmbeddedServer
    from avatarkit.view import AvatarView
    from engine import App, VideoWriter, straight_alpha
    from engine.audio import Mixer, VirtualDevice
    from engine.render.readback import FrameReader

    started = time.perf_counter()
    audio = read_wav(Path(audio_path))
    pcm, rate = audio.pcm.astype("<i2").tobytes(), audio.sample_rate
    check_output(Path(output))  # fail now, not after the whole render
    audio_samples = len(pcm) // 2
    frames = math.ceil(audio_samples * fps / rate)  # the last frame may show the audio's tail
    avatar = open_avatar(avatar_id)
    mixer = Mixer(rate)
    device = VirtualDevice(mixer).start()
    try:
        # A file or folder given as --avatar is served (and so may be driven) by its path.
        server = EmbeddedServer(avatars=avatar.source_path, motion_model=model)
        with server, App.headless(size=size, fps=fps, quality=quality) as app:
            if samples is not None:
                app.set_quality(app.quality.with_samples(samples))
            # The App's flush per node stays on (software rasteriser): it overlaps the
            # render thread's vertex work with rasterisation; with host morphs that beats
            # the tile reload each flush costs llvmpipe (10 s at 640x360: 6.3 -> 5.6 s).
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
                AvatarView(
                    avatar,
                    mixer=mixer,
                    idle=idle,
                    background="transparent" if background == "transparent" else "scene",
                )
            )
            view.frame(app.scene.camera)
            controller = view.controller
            refusals: list[AvatarKitError] = []
            controller.on_error = refusals.append  # why a connection failed, if it does
            controller.start()
            step = int(SEND_CHUNK_S * rate) * 2
            try:
                for i in range(0, len(pcm), step):
                    controller.send(pcm[i : i + step], end=i + step >= len(pcm))
            except AvatarKitError:
                # A refusal can land while we are still sending: send() then says only
                # "not connected"; the refusal itself is raised below.
                if controller.connection_state != ConnectionState.FAILED:
                    raise
            _wait_for_motion(controller, audio_samples / rate)
            if controller.connection_state == ConnectionState.FAILED:
                app.step()  # the controller hands its errors to on_error on its tick
                raise (
                    refusals[-1]
                    if refusals
                    else AvatarKitError(
                        ErrorCode.CONNECTION_FAILED, "could not reach the embedded Motion Server"
                    )
                )
            # Everything is here: a render slower than real time must not sit on an idle
            # session until the server's idle timeout closes it (and warns).
            controller.disconnect()
            used_quality = app.quality.name
            if samples is not None:
                used_quality += f", {app.quality.samples}x MSAA"
            with VideoWriter(output, size, fps=fps, sample_rate=rate, threaded=True) as writer:
                with app.ctx:  # GL calls need it current (set_quality released it)
                    reader = FrameReader(app.ctx, size, alpha=writer.alpha)

                def emit(ready: np.ndarray) -> None:  # a video with alpha takes straight RGBA
                    writer.write_frame(straight_alpha(ready) if writer.alpha else ready)

                for k in range(frames):
                    app.step()  # the face is sampled at the audio clock: samples played so far
                    with app.ctx:
                        ready = reader.push(app.target.resolved)
                    if ready is not None:
                        emit(ready)
                    heard = device.advance(device.frames_for_video_frame(k, fps))
                    writer.write_audio(
                        np.clip(np.round(heard[:, 0] * 32768), -32768, 32767).astype("<i2")
                    )
                    if progress is not None:
                        progress((k + 1) / frames)
                with app.ctx:
                    for ready in reader.drain():
                        emit(ready)
                    reader.release()
            view.dispose()
    finally:
        AvatarSDK.cleanup()
    return RenderResult(
        Path(output), frames, frames / fps, time.perf_counter() - started, used_quality
    )


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
