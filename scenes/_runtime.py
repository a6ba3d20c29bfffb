"""What every scene shares: options, the embedded Motion Server, the SDK, avatar loading
with progress, speaking bundled lines, and the frame loop (windowed, or headless with a
virtual clock recording an MP4 and a PNG).

Built only from the public ``engine`` and ``avatarkit`` APIs, in the order of the
product's lifecycle: initialize, load, render (views), authenticate, connect & speak.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avatarkit import (
    AvatarKitError,
    AvatarManager,
    AvatarSDK,
    AvatarView,
    Configuration,
    ErrorCode,
    LogLevel,
)
from avatarkit.avatar import MODEL_SUFFIXES, Avatar, derive
from avatarkit.cli import video_size
from avatarkit.controller import ConnectionState
from avatarkit.package import ID_RE, MANIFEST_NAME
from avatarkit.paths import AVATARS_DIR, SPEECH_DIR
from avatarkit.server.embedded import EmbeddedServer
from engine import App, EngineError, VideoWriter, save_png
from engine.audio import Mixer, VirtualDevice
from engine.render.quality import QUALITY_NAMES
from engine.ui import Overlay, ProgressBar

log = logging.getLogger("scenes")

SAMPLE_RATE = 16000  # the bundled speech's rate
SEND_CHUNK_S = 0.2  # seconds of audio per send(): how a live app streams speech
MOTION_SLACK_MS = 80.0  # motion may end this much short of its audio (last partial frame)
MOTION_WAIT_S = 10.0  # headless: longest wait for an utterance's motion before going on
MOTION_STALL_S = 2.0  # headless: ... or for the next motion frame (the connection dropped)
CONNECT_WAIT_S = 3.0  # longest wait for one avatar's handshake at start-up
RECONNECT_ATTEMPTS = 6  # then the scene's own watchdog retries every few seconds
RECONNECT_BACKOFF_S = 0.25


# -- options ------------------------------------------------------------------------


@dataclass
class SceneOptions:
    headless: bool = True
    seconds: float | None = 8.0  # None: until the window closes
    out: Path = Path("out")
    size: tuple[int, int] = (1280, 720)
    fps: int = 30
    avatar: str | None = None  # scenes with one avatar: which bundled one
    fullscreen: bool = False  # windowed runs: cover the desktop (``size`` is then ignored)
    quality: str = "auto"  # engine.render.quality; a window's auto adapts to its frame rate


def has_display() -> bool:
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def parse_options(
    argv: list[str] | None,
    prog: str,
    description: str,
    headless_seconds: float,
    avatar: str | None = None,
    fullscreen: bool = False,
) -> SceneOptions:
    """The flags every scene takes; ``avatar``: the default of an ``--avatar`` flag (if any);
    ``fullscreen``: whether a display run covers the screen unless ``--windowed`` is given."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    mode = parser.add_mutually_exclusive_group()
    default = "full screen" if fullscreen else "a window"
    mode.add_argument(
        "--headless", action="store_true", help="render off-screen (virtual clock), write MP4 + PNG"
    )
    mode.add_argument(
        "--windowed",
        action="store_true",
        help=f"open a window ({default} is the default with a display)",
    )
    mode.add_argument(
        "--fullscreen", action="store_true", help="cover the whole screen (--size is ignored)"
    )
    parser.add_argument(
        "--seconds",
        type=positive(float),
        default=None,
        help=f"how long to run (headless default {headless_seconds:g})",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("out"), help="headless output folder (default ./out)"
    )
    parser.add_argument(
        "--size", default="1280x720", type=video_size, help="WIDTHxHEIGHT (default 1280x720)"
    )
    parser.add_argument("--fps", type=positive(int), default=30)
    parser.add_argument(
        "--quality",
        choices=QUALITY_NAMES,
        default="auto",
        help="render quality (default auto: in a window on a CPU rasteriser it drops the edge "
        "anti-aliasing while frames miss 30 fps; a named one stays fixed)",
    )
    if avatar is not None:
        parser.add_argument(
            "--avatar",
            default=avatar,
            help=f"bundled avatar id (default {avatar}), or a .glb/.gltf/.vrm file or "
            "avatar folder",
        )
    args = parser.parse_args(argv)
    headless = args.headless or (not args.windowed and not has_display())
    seconds = args.seconds if args.seconds is not None else (headless_seconds if headless else None)
    full = not headless and (args.fullscreen or (fullscreen and not args.windowed))
    return SceneOptions(
        headless,
        seconds,
        args.out,
        args.size,
        args.fps,
        getattr(args, "avatar", None),
        full,
        args.quality,
    )


def local_avatar(spec: str | None) -> Avatar | None:
    """The avatar of a ``--avatar`` that names a file or folder, else None (a bundled id,
    which wins over a folder of its name, or nothing there: the load reports that)."""
    if spec is None:
        return None
    path = Path(spec).expanduser()
    looks_like_path = path.suffix.lower() in MODEL_SUFFIXES or not ID_RE.match(spec)
    if not looks_like_path and (AVATARS_DIR / spec / MANIFEST_NAME).is_file():
        return None
    return derive(path) if path.exists() else None


def positive(kind: type) -> Callable[[str], float]:
    """An argparse type: a number of ``kind`` above zero (else a usage error, not a traceback)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not value > 0:  # also rejects NaN
            raise argparse.ArgumentTypeError(f"must be above zero, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


# -- bundled speech -----------------------------------------------------------------


@dataclass(frozen=True)
class Word:
    text: str
    start: float
    end: float


@dataclass(frozen=True)
class Line:
    """One bundled utterance: its text, word timings (may be empty) and PCM s16le audio."""

    id: str
    group: str
    speaker: str
    text: str
    words: tuple[Word, ...]
    pcm: bytes = field(repr=False)

    @property
    def duration(self) -> float:
        return len(self.pcm) / 2 / SAMPLE_RATE


def load_lines(folder: Path = SPEECH_DIR) -> dict[str, Line]:
    """``assets/speech/lines.json`` with its WAVs, by line id."""
    index = folder / "lines.json"
    try:
        entries = json.loads(index.read_text())["lines"]
    except (OSError, ValueError, KeyError) as exc:
        raise AvatarKitError(
            ErrorCode.INVALID_REQUEST, f"bundled speech missing or unreadable: {index} ({exc})"
        ) from exc
    lines = {}
    for entry in entries:
        words = tuple(
            Word(w["text"], float(w["start"]), float(w["end"])) for w in entry.get("words", ())
        )
        lines[entry["id"]] = Line(
            entry["id"],
            entry.get("group", ""),
            entry.get("speaker", ""),
            entry["text"],
            words,
            _read_wav(folder / entry["file"]),
        )
    return lines


def _read_wav(path: Path) -> bytes:
    try:
        with wave.open(str(path), "rb") as wav:
            if (
                wav.getsampwidth() != 2
                or wav.getnchannels() != 1
                or wav.getframerate() != SAMPLE_RATE
            ):
                raise AvatarKitError(
                    ErrorCode.INVALID_AUDIO, f"{path}: need 16-bit mono {SAMPLE_RATE} Hz PCM"
                )
            return wav.readframes(wav.getnframes())
    except (OSError, wave.Error, EOFError) as exc:
        raise AvatarKitError(ErrorCode.INVALID_AUDIO, f"{path}: {exc}") from exc


# -- the stage: server, SDK, app, overlay ---------------------------------------------


class TerminalProgress:
    """A one-line progress bar on stderr (just the final line when stderr is not a terminal)."""

    WIDTH = 30

    def show(self, label: str, progress: float) -> None:
        stream = sys.stderr  # looked up each time: tests and tools redirect it
        filled = round(self.WIDTH * progress)
        bar = f"{label:<28} [{'#' * filled}{'.' * (self.WIDTH - filled)}] {progress:4.0%}"
        if stream.isatty():
            stream.write("\r" + bar + ("\n" if progress >= 1 else ""))
        elif progress >= 1:
            stream.write(bar + "\n")
        stream.flush()


class Stage:
    """One scene's world: an embedded Motion Server on loopback, the SDK configured for it,
    an App (window or headless), a ``world`` entity for 3D content and an overlay on top.

    Headless, audio goes to a ``VirtualDevice`` advanced exactly one video frame of samples
    per frame, so recordings are sample-accurate; ``speak`` waits (bounded) until the
    utterance's motion has arrived, as a virtual clock never waits by itself.
    """

    def __init__(self, options: SceneOptions, title: str = "AvatarKit") -> None:
        self.options = options
        self.progress = TerminalProgress()
        # A file or folder given as --avatar is opened now: the server must accept its id.
        self._local = local_avatar(options.avatar)
        self._served = () if self._local is None else (self._local.source_path,)
        self.server = EmbeddedServer(avatars=self._served).start()
        self._server_identity = (self.server.port, self.server.api_key, self.server.app_id)
        self.device: VirtualDevice | None = None
        try:
            if options.headless:
                self.app = App.headless(options.size, fps=options.fps, quality=options.quality)
                self.mixer = Mixer(SAMPLE_RATE)
                self.device = VirtualDevice(self.mixer).start()
                self.app.add_frame_listener(self._after_frame)
            else:
                self.app = App.window(
                    options.size,
                    title=title,
                    fps=options.fps,
                    fullscreen=options.fullscreen,
                    quality=options.quality,
                )
                self.mixer = None  # the SDK's process-wide mixer on the sound card
        except BaseException:
            self.server.stop()
            raise
        AvatarSDK.initialize(
            self.server.app_id,
            Configuration(
                ingress_url=self.server.ingress_url,
                console_url=self.server.console_url,
                sample_rate=SAMPLE_RATE,
                audio_device="virtual" if options.headless else "auto",
                token_provider=self._fresh_token,
                reconnect_attempts=RECONNECT_ATTEMPTS,
                reconnect_backoff_s=RECONNECT_BACKOFF_S,
                log_level=LogLevel.ERROR,  # outages are shown on screen, once, not logged per retry
            ),
        )
        scene = self.app.scene
        self.world = scene.create_entity("world")
        self.overlay = scene.create_entity("ui").add_component(
            Overlay()
        )  # after world: drawn on top
        self.views: list[AvatarView] = []
        self.loading = ProgressBar(label="Loading", anchor="center", visible=False)
        self.overlay.add(self.loading)
        self._recording: _Recording | None = None
        self._audio_frames = 0  # video frames the virtual audio device has played
        self._loading_frame = False  # a loading screen being shown: not part of the film
        self._closed = False

    # -- lifecycle stages 2-5 ---------------------------------------------------------

    def load_avatars(self, ids: list[str]) -> list:
        """Load bundled avatars (or the file or folder ``--avatar`` named), showing
        progress on screen and in the terminal."""
        manager = AvatarManager(str(AVATARS_DIR))
        avatars = []
        self.loading.visible = True
        for n, avatar_id in enumerate(ids):
            if self._local is not None and avatar_id == self.options.avatar:
                avatars.append(self._local)  # opened (and measured) by the constructor
                continue

            def report(p, n: int = n, avatar_id: str = avatar_id) -> None:
                self._show_loading(avatar_id, (n + 0.8 * p.progress) / len(ids))

            self._show_loading(avatar_id, n / len(ids))
            avatar = manager.load_blocking(avatar_id, on_progress=report)
            avatars.append(avatar)
            self._show_loading(avatar_id, (n + 1) / len(ids))
        self.loading.visible = False
        return avatars

    def add_view(
        self, avatar, name: str | None = None, position=(0.0, 0.0, 0.0), seed: int = 0
    ) -> AvatarView:
        """Mount ``avatar`` in the world (idle plays at once) and connect its controller."""
        entity = self.app.scene.create_entity(name or avatar.id, parent=self.world)
        entity.transform.translation = np.array(position, np.float32)
        view = entity.add_component(
            AvatarView(avatar, mixer=self.mixer or AvatarSDK.audio_mixer(), seed=seed)
        )
        self.connect(view)
        self.views.append(view)
        return view

    def connect(self, view: AvatarView) -> None:
        """Stages 4-5: a session token for this connection, then ``start()``.

        Tokens are single-use, so each avatar gets its own, and we wait (briefly) for the
        handshake so the next avatar's token cannot be taken by this one.
        """
        AvatarSDK.set_session_token(self.server.issue_token())
        view.controller.start()
        deadline = time.monotonic() + CONNECT_WAIT_S
        while (
            view.controller.connection_state == ConnectionState.CONNECTING
            and time.monotonic() < deadline
        ):
            time.sleep(0.002)

    @property
    def ui_scale(self) -> float:
        """Overlay sizes are designed for 720p; scale them with the frame height."""
        return max(0.7, self.app.size[1] / 720)

    def frame_portrait(
        self, view: AvatarView, distance_scale: float = 1.5, lift: float = 0.05
    ) -> None:
        """A head-and-shoulders shot with the face above centre (room for captions)."""
        camera = self.app.scene.camera
        view.frame(camera, distance_scale)
        drop = lift * float(np.linalg.norm(camera.position - camera.target))
        camera.look_at(camera.position - [0, drop, 0], camera.target - [0, drop, 0])

    def project(self, point) -> tuple[float, float]:
        """A world point's position on screen in normalized coordinates (-1..1, y up)."""
        camera = self.app.scene.camera
        clip = (
            camera.projection_matrix(self.app.aspect)
            @ camera.view_matrix()
            @ np.append(np.asarray(point, np.float32), 1.0)
        )
        return float(clip[0] / clip[3]), float(clip[1] / clip[3])

    def speak(self, view: AvatarView, line: Line, interrupt: bool = True) -> str:
        """Stream ``line``'s audio to the avatar's Motion Server session; returns the
        conversation id. Raises ``AvatarKitError`` (``connectionClosed``) when the avatar is
        not connected at all (while reconnecting, speech is queued by the SDK)."""
        controller = view.controller
        if interrupt:
            controller.interrupt()
        step = int(SEND_CHUNK_S * SAMPLE_RATE) * 2
        pcm, cid = line.pcm, ""
        for i in range(0, len(pcm), step):
            cid = controller.send(pcm[i : i + step], end=i + step >= len(pcm))
        if self.options.headless:
            self._await_motion(view)
        return cid

    def try_speak(self, view: AvatarView, line: Line, interrupt: bool = True) -> str | None:
        """``speak``, but a refusal (no connection at all) is logged and returns None: a
        scene keeps running, idling, while the connection watchdog brings it back."""
        try:
            return self.speak(view, line, interrupt)
        except AvatarKitError as exc:
            log.warning(
                "%s cannot speak %s: [%s] %s", view.avatar.id, line.id, exc.code, exc.message
            )
            return None

    # -- the Motion Server (operators restart it; the kiosk must survive that) -------

    def restart_server(self) -> None:
        """Stop the Motion Server and start a new one on the same port and credentials."""
        port, api_key, app_id = self._server_identity
        self.server.stop(timeout=5)
        self.server = EmbeddedServer(
            port=port, api_key=api_key, app_id=app_id, avatars=self._served
        ).start()

    def stop_server(self) -> None:
        self.server.stop(timeout=5)

    def _fresh_token(self) -> str:
        """The SDK's token provider (network thread): what a backend's token endpoint does."""
        return self.server.issue_token()  # connectionFailed between stop and start: retried

    # -- frames -------------------------------------------------------------------

    @property
    def time(self) -> float:
        return self.app.clock.time

    def step(self) -> None:
        self.app.step()

    def run(self, seconds: float | None = None) -> int:
        """Run frames until ``seconds`` pass (None: until the window closes or ``stop``)."""
        return self.app.run(seconds)

    def _after_frame(self, app: App, _frame) -> None:
        """Headless, after each frame: record it, and let the virtual audio device play
        exactly this frame's samples (the audio clock)."""
        if self._loading_frame:
            return
        recording = (
            self._recording if self._recording is not None and self._recording.open else None
        )
        if recording is not None:
            recording.add_frame(app.read_pixels())
        heard = self.device.advance(
            self.device.frames_for_video_frame(self._audio_frames, self.options.fps)
        )
        self._audio_frames += 1
        if recording is not None:
            recording.add_audio(heard)

    def record(self, name: str, png_at: float | None = None) -> _Recording:
        """Headless: write every following frame (and its audio) to ``out/<name>.mp4`` and
        the frame at ``png_at`` seconds from now (default: the last one) to ``out/<name>.png``."""
        self._recording = _Recording(self, name, png_at)
        return self._recording

    def _await_motion(self, view: AvatarView) -> None:
        """Headless: hold the (virtual) clock until the motion of what ``view`` was sent has
        arrived, or stops arriving (the connection dropped), so frames never lack it."""
        controller = view.controller
        deadline = time.monotonic() + MOTION_WAIT_S
        last, last_change = -1.0, time.monotonic()
        while (
            controller.connection_state == ConnectionState.CONNECTED and time.monotonic() < deadline
        ):
            health = controller.buffered()
            if health.motion_ms + MOTION_SLACK_MS >= health.audio_ms:
                return
            if health.motion_ms != last:
                last, last_change = health.motion_ms, time.monotonic()
            elif time.monotonic() - last_change > MOTION_STALL_S:
                return
            time.sleep(0.002)

    def _show_loading(self, avatar_id: str, progress: float) -> None:
        self.loading.label = f"Loading {avatar_id}  {progress:.0%}"
        self.loading.progress = progress
        self.progress.show(f"loading avatar {avatar_id}", progress)
        self._loading_frame = True  # show it on screen; the frame is not recorded
        try:
            self.app.step()
        finally:
            self._loading_frame = False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._recording is not None:
                self._recording.close()  # idempotent
            for view in self.views:
                view.dispose()
            self.app.close()
        finally:
            self.server.stop(timeout=5)
            AvatarSDK.cleanup()

    def __enter__(self) -> Stage:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Recording:
    """Writes each headless frame's picture and the exact stereo audio heard during it."""

    def __init__(self, stage: Stage, name: str, png_at: float | None) -> None:
        if stage.device is None:
            raise AvatarKitError(
                ErrorCode.INVALID_REQUEST, "recording needs the headless (virtual audio) stage"
            )
        out = stage.options.out
        self.mp4 = out / f"{name}.mp4"
        self.png = out / f"{name}.png"
        self.frames = 0
        self._png_frame = None if png_at is None else round(png_at * stage.options.fps)
        try:  # --out pointing at a file or a read-only place: one readable line, not a traceback
            out.mkdir(parents=True, exist_ok=True)
            self._writer = VideoWriter(
                self.mp4, stage.app.size, fps=stage.options.fps, sample_rate=SAMPLE_RATE, channels=2
            )
        except OSError as exc:
            raise AvatarKitError(
                ErrorCode.INVALID_REQUEST, f"cannot write {self.mp4}: {exc.strerror or exc}"
            ) from exc
        self.open = True
        self._still: np.ndarray | None = None

    def add_frame(self, pixels: np.ndarray) -> None:
        self._writer.write_frame(pixels)
        if self._still is None or self.frames <= (
            self._png_frame if self._png_frame is not None else self.frames
        ):
            self._still = pixels  # the frame at png_at, or the last one if the run is shorter
        self.frames += 1

    def add_audio(self, stereo: np.ndarray) -> None:
        pcm = np.clip(np.round(stereo * 32768), -32768, 32767).astype("<i2")
        self._writer.write_audio(pcm.reshape(-1))  # interleaved stereo: the pan is audible

    def close(self) -> None:
        if not self.open:
            return
        self.open = False
        self._writer.close()
        if self._still is not None:
            save_png(self._still, self.png)


# -- entry point --------------------------------------------------------------------


def run_main(prog: str, body: Callable[[], int]) -> int:
    """Run a scene's main body; failures print one readable line, not a traceback."""
    try:
        return int(body() or 0)
    except AvatarKitError as exc:
        print(f"{prog}: error [{exc.code}]: {exc.message}", file=sys.stderr)
        return 2
    except EngineError as exc:
        print(f"{prog}: error [{exc.code}]: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def play_scene(
    prog: str,
    options: SceneOptions,
    title: str,
    build: Callable[[Stage], object],
    *,
    name: str,
    png_at: float | None = None,
) -> int:
    """The body every interactive scene shares: ``build(stage)`` sets the scene up (and,
    headless, its scripted input), then it runs; headless runs are recorded to
    ``out/<name>.mp4`` + ``.png`` and their paths printed."""

    def body() -> int:
        with Stage(options, title=title) as stage:
            build(stage)
            recording = stage.record(name, png_at=png_at) if options.headless else None
            stage.run(options.seconds)
            if recording is not None:
                recording.close()
        report_outputs(prog, recording)
        return 0

    return run_main(prog, body)


def report_outputs(prog: str, recording: _Recording | None) -> None:
    if recording is not None:
        print(f"{prog}: video: {recording.mp4.resolve()} ({recording.frames} frames with audio)")
        print(f"{prog}: image: {recording.png.resolve()}")
