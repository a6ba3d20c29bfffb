"""One offline render's scene: the avatar speaking a WAV, ready to be stepped frame by frame.

``open_session`` starts an embedded Motion Server on loopback, an offline ``App`` and an
``AvatarView``, sends the whole WAV over Direct Mode and returns once all of its motion
has arrived. From then on everything is a pure function of the frame index: time is
virtual (``RenderSession.tick`` advances the audio device by exactly one video frame of
samples), the idle animation is a function of time and a seed, and the motion is the
model's deterministic output. That is what lets ``avatarkit render`` hand some frames to
helper processes (``render_workers``) that open the same session and pose the same faces.
Everything here runs on the calling thread, which becomes the render thread.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from avatarkit.cli.common import open_avatar, read_wav
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.motion.wav import SpeechAudio

if TYPE_CHECKING:
    from avatarkit.view import AvatarView
    from engine import App
    from engine.audio import VirtualDevice

log = logging.getLogger(__name__)

SEND_CHUNK_S = 0.2  # seconds of audio per websocket message
MOTION_WAIT_S = 60.0  # give up waiting for motion after this long (then audio only)


@dataclass(frozen=True)
class RenderJob:
    """What every process of one render needs to pose the same frames (picklable)."""

    avatar_id: str  # a bundled id or a path (``open_avatar``)
    audio_path: Path
    size: tuple[int, int] = (640, 360)
    fps: int = 30
    idle: bool = True
    model: str = "lipsync"  # avatarkit.motion.create_stream's; "envelope" only when named
    background: str = "scene"  # "transparent": alpha 0 around the avatar
    quality: str = "auto"  # engine.render.quality: auto, low, medium, high
    samples: int | None = None  # MSAA samples overriding the quality's
    alpha: bool = False  # frames read back as RGBA (a video with alpha), else RGB


def video_frames(audio: SpeechAudio, fps: int) -> int:
    """Video frames for speech: its length rounded up to a frame (the last may show the tail)."""
    return math.ceil(len(audio.pcm) * fps / audio.sample_rate)


@dataclass
class RenderSession:
    app: App
    device: VirtualDevice
    view: AvatarView
    frames: int  # video frames: the audio's length, rounded up to a frame
    fps: int
    sample_rate: int
    quality: str  # the render quality used (its name, or name + samples)

    def tick(self, index: int, draw: bool = True) -> np.ndarray:
        """Frame ``index``: pose it (and draw it, or only advance the scene), then play its
        samples on the virtual device; returns them as float32 (samples, 2). The face is
        sampled at the audio clock: the samples played before this frame."""
        if draw:
            self.app.step()
        else:
            self.app.advance()
        return self.device.advance(self.device.frames_for_video_frame(index, self.fps))


@contextmanager
def open_session(
    job: RenderJob,
    on_app: Callable[[App], None] | None = None,
    audio: SpeechAudio | None = None,
) -> Iterator[RenderSession]:
    """The scene of ``job`` with all its motion received; ``on_app(app)`` runs as soon as
    the App exists (``render_video`` starts its helper processes there). ``audio``: the
    job's WAV as the caller already read it (else it is read here)."""
    from avatarkit.sdk import AvatarSDK, Configuration
    from avatarkit.server.embedded import EmbeddedServer
    from avatarkit.view import AvatarView
    from engine import App
    from engine.audio import Mixer, VirtualDevice
    from engine.clock import HeadlessClock

    if audio is None:
        audio = read_wav(Path(job.audio_path))
    pcm, rate = audio.pcm.astype("<i2").tobytes(), audio.sample_rate
    frames = video_frames(audio, job.fps)
    avatar = open_avatar(job.avatar_id)
    mixer = Mixer(rate)
    device = VirtualDevice(mixer).start()
    # Virtual time from this render's own device: App.headless's default clock follows the
    # wall clock while *any* real-time device in the process plays (a kiosk, a test's null
    # device), and the video would then depend on machine speed.
    clock = HeadlessClock(job.fps, realtime=lambda: device.realtime)
    try:
        # A file or folder given as --avatar is served (and so may be driven) by its path.
        server = EmbeddedServer(avatars=avatar.source_path, motion_model=job.model)
        with (
            server,
            App.headless(size=job.size, fps=job.fps, quality=job.quality, clock=clock) as app,
        ):
            if job.samples is not None:
                app.set_quality(app.quality.with_samples(job.samples))
            if on_app is not None:
                on_app(app)
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
                    idle=job.idle,
                    background="transparent" if job.background == "transparent" else "scene",
                )
            )
            view.frame(app.scene.camera)
            _speak(app, view, pcm, rate)
            quality = app.quality.name
            if job.samples is not None:
                quality += f", {app.quality.samples}x MSAA"
            yield RenderSession(app, device, view, frames, job.fps, rate, quality)
            view.dispose()
    finally:
        AvatarSDK.cleanup()
        device.stop()


def _speak(app: App, view: AvatarView, pcm: bytes, rate: int) -> None:
    """Send the whole utterance and wait for all of its motion; a refusal is raised."""
    from avatarkit.controller import ConnectionState

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
    _wait_for_motion(controller, len(pcm) / 2 / rate)
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
