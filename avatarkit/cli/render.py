"""``avatarkit render``: a WAV file in, an MP4 of the avatar speaking it out (headless).

The whole product path runs: an embedded Motion Server on loopback, Direct Mode over the
real protocol, an ``AvatarView`` in an engine scene rendered with EGL. Time is virtual:
every video frame advances the audio device by exactly one frame of samples, so the
video is sample-accurate and exactly as long as the audio (to a frame), and its frames are
the same on every run. Compare frames, not files: the same frames encoded and decoded again
have been seen to differ by a code value or two in a block, now and then (docs/engine.md).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from avatarkit.cli import video_size
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.motion.stream import SUPPORTED_FPS
from engine.render.quality import QUALITY_NAMES

if TYPE_CHECKING:
    import numpy as np

    from avatarkit.cli.render_workers import RenderHelpers
    from engine import App


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
        help="anti-aliasing: low (none), medium (FXAA edge pass), geometric (FXAA, then "
        "exact-coverage lines on silhouettes and borders), high (4x MSAA); auto: geometric "
        "on a software rasteriser, high on a GPU (default auto)",
    )
    p.add_argument(
        "--samples",
        type=int,
        choices=(0, 2, 4, 8),
        help="MSAA samples per pixel, overriding the quality's (0 = off)",
    )
    p.add_argument(
        "--workers",
        type=int,
        choices=range(1, 9),
        metavar="N",
        help="processes drawing frames (1-8); default: 2 on a software rasteriser with two "
        "or more CPUs for videos of 4 s or more (8 s on a machine with a GPU device), else 1",
    )
    p.set_defaults(func=run)


ALPHA_SUFFIXES = (".webm", ".mov")


def run(args: argparse.Namespace) -> int:
    from avatarkit.cli.common import output_with_suffix
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
        workers=args.workers,
    )
    bar.finish("completed")
    print(
        f"{result.path}: {result.frames} frames, {result.duration:.3f} s, "
        f"{result.seconds:.1f} s to render ({result.duration / result.seconds:.2f}x real time, "
        f"quality {result.quality}, {result.processes} process"
        f"{'es' if result.processes > 1 else ''})"
    )
    return 0


@dataclass(frozen=True)
class RenderResult:
    path: Path
    frames: int
    duration: float  # seconds of video (== audio, to one frame)
    seconds: float  # wall time spent
    quality: str = ""  # the render quality used (its name, or name+samples)
    processes: int = 1  # processes that drew frames (this one and its helpers)
    helper_frames: int = 0  # frames drawn by helper processes (``render_workers``)


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
    quality: str = "auto",  # engine.render.quality: auto, low, medium, geometric, high
    samples: int | None = None,  # MSAA samples overriding the quality's
    workers: int | None = None,  # processes drawing frames; None: auto (render_workers)
) -> RenderResult:
    """``progress(fraction)`` after each video frame (e.g. a terminal progress bar).

    The loop keeps the cores busy: the rasteriser draws frame k+1 while the encoder
    thread converts and encodes frame k (``VideoWriter(threaded=True)``), frames come back
    through pixel buffers that do not stall the GPU (``FrameReader``), and on a software
    rasteriser a helper process draws every other chunk of a long video
    (``render_workers``)."""
    import numpy as np

    from avatarkit.cli import render_workers
    from avatarkit.cli.common import check_output, read_wav
    from avatarkit.cli.render_session import RenderJob, open_session, video_frames
    from avatarkit.cli.render_workers import PARENT, RenderHelpers, helpers_for
    from engine import VideoWriter, straight_alpha
    from engine.capture import ALPHA_FORMATS
    from engine.render.readback import FrameReader

    started = time.perf_counter()
    alpha = Path(output).suffix.lower() in ALPHA_FORMATS  # frames read and written as RGBA
    job = RenderJob(
        avatar_id,
        Path(audio_path).resolve(),
        size,
        fps,
        idle,
        model,
        background,
        quality,
        samples,
        alpha,
    )
    check_output(Path(output))  # fail now, not after the whole render
    audio = read_wav(job.audio_path)  # once: the session takes it as read
    frames = video_frames(audio, fps)
    helpers: list[RenderHelpers] = []
    # Helpers start before our own session where their number is known now: asked for,
    # or no GPU device at all (EGL can only rasterise in software). Their start-up and
    # ours (imports, server, context: single-threaded Python both) then share the cores.
    early = workers is not None or render_workers.no_gpu_device()
    if early:
        count = helpers_for(workers, True, frames / fps, early=True)
        if count:
            helpers.append(RenderHelpers(job, frames, count))

    def start_helpers(app: App) -> None:  # they start up while we do
        if early:
            if helpers and workers is None and not app.software:  # a GPU after all
                helpers.pop().close(kill=True)  # it rasterises while we work anyway
            return
        count = helpers_for(workers, app.software, frames / fps)
        if count:
            helpers.append(RenderHelpers(job, frames, count))

    try:
        with open_session(job, on_app=start_helpers, audio=audio) as session:
            app = session.app
            with VideoWriter(
                output, size, fps=fps, sample_rate=session.sample_rate, threaded=True
            ) as writer:
                with app.ctx:  # GL calls need it current (set_quality released it)
                    reader = FrameReader(app.ctx, size, alpha=alpha)

                def emit(ready: np.ndarray) -> None:  # a video with alpha takes straight RGBA
                    writer.write_frame(straight_alpha(ready) if alpha else ready)

                helper_frames = 0
                for k in range(session.frames):
                    owner = helpers[0].owner(k) if helpers else PARENT
                    pixels = helpers[0].take(owner, k) if owner != PARENT else None
                    helper_frames += pixels is not None
                    heard = session.tick(k, draw=pixels is None)
                    with app.ctx:
                        if pixels is None:
                            ready = reader.push(app.target.resolved)
                            if ready is not None:
                                emit(ready)
                        else:  # frames this process drew before it go first
                            for ready in reader.drain():
                                emit(ready)
                            emit(pixels)
                    writer.write_audio(
                        np.clip(np.round(heard[:, 0] * 32768), -32768, 32767).astype("<i2")
                    )
                    if progress is not None:
                        progress((k + 1) / session.frames)
                with app.ctx:
                    for ready in reader.drain():
                        emit(ready)
                    reader.release()
        processes = 1
        if helpers:
            board = helpers.pop()
            board.close()
            processes += board.count
    finally:
        for board in helpers:  # left only by an error
            board.close(kill=True)
    seconds = time.perf_counter() - started
    duration = session.frames / fps
    return RenderResult(
        Path(output), session.frames, duration, seconds, session.quality, processes, helper_frames
    )
