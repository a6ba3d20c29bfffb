"""The App: a GL backend, a clock, a scene, and the frame loop.

One frame (``step``): tick the clock, dispatch input, ``scene.update(dt)``, render the
scene into the off-screen target, present (headless: wait for the GPU; window: blit and
swap), then ``post_render`` hooks and frame listeners (capture). ``advance`` runs the
update half alone. Everything here runs on
the thread that created the App: the render thread.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from engine import events
from engine.backends.base import Backend
from engine.capture import save_png
from engine.clock import Clock, HeadlessClock, ManualClock, RealtimeClock, Schedule
from engine.events import Event
from engine.load_gc import LoadTimeGC
from engine.render.adaptive import LIVE_LADDER, MIN_LIVE_FPS, AdaptiveQuality
from engine.render.frame import Frame
from engine.render.gpu_wait import wait_for_gpu
from engine.render.quality import QUALITIES, Quality, resolve_quality
from engine.render.renderer import Renderer
from engine.render.target import RenderTarget, TargetPasses
from engine.scene import Scene
from engine.stats import FrameStats

log = logging.getLogger(__name__)

PRESENT_LEAD_SMOOTHING = 0.2  # per frame: follows a change of load within ~5 frames

SOFTWARE_RENDERERS = ("llvmpipe", "softpipe", "swiftshader", "lavapipe")
EventHandler = Callable[[Event], bool | None]
FrameListener = Callable[["App", Frame], None]


class App:
    def __init__(
        self,
        backend: Backend,
        clock: Clock | None = None,
        scene: Scene | None = None,
        samples: int | None = 4,
        quality: str | Quality | None = None,
        adaptive: bool | None = None,
    ) -> None:
        """``quality``: a named render quality (``engine.render.quality``: auto, low,
        medium, geometric, high: MSAA samples, the post anti-aliasing pass and the edge
        lines); it wins over
        ``samples``. Without one, ``samples`` MSAA samples (0 = off) and no post pass;
        ``samples=None`` means ``quality="auto"``: 4x MSAA on a GPU, the post pass alone
        on a software rasteriser, where 4x MSAA costs about 3x the frame time.
        ``adaptive``: whether ``auto`` on a software rasteriser drops the post pass while
        frames miss a live frame rate (``engine.render.adaptive``); None: in a window."""
        self.backend = backend
        self.ctx = backend.ctx
        # A software rasteriser renders inside the GL calls, holding the GIL (see gpu_wait).
        self.software = any(
            name in self.ctx.info["GL_RENDERER"].lower() for name in SOFTWARE_RENDERERS
        )
        if quality is None and samples is None:
            quality = "auto"
        # Quality auto in a live window on a software rasteriser trades the post pass for
        # the frame rate when frames miss their budget (engine.render.adaptive);
        # ``adaptive`` True asks for it headless too (real-time clocks only, always).
        self._adapts = (adaptive if adaptive is not None else backend.interactive) and (
            self.software
        )
        self.quality = (
            resolve_quality(quality, self.software, self._adapts)
            if quality is not None
            else Quality("custom", int(samples or 0), post_aa=False)
        )
        self.clock: Clock = clock or (
            RealtimeClock(60.0) if backend.interactive else ManualClock(30.0)
        )
        self.scene = scene or Scene()
        # Timers of the frame loop: run each frame at the clock's time, before the update.
        self.schedule = Schedule(self.clock.time)
        self.renderer = Renderer(self.ctx)
        self.renderer.flush_per_node = self.software
        self.renderer.host_morphs = self.software  # numpy beats llvmpipe's vertex gathers
        self.renderer.rigid_skin = self.software  # and a matrix a joint beats its gathers
        self.renderer.host_mipmaps = self.software  # and numpy its mipmap blit's compile
        self._passes: TargetPasses | None = None  # shared by the targets a live App switches
        self.target = RenderTarget(
            self.ctx,
            backend.size,
            self.quality.samples,
            self.quality.post_aa,
            self.quality.edge_lines,
        )
        self.frame_index = 0  # frames completed
        self.stats = FrameStats()  # rolling real frame rate (``app.stats.fps``)
        self.running = False
        self._events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._event_handlers: list[EventHandler] = []
        self._frame_listeners: list[FrameListener] = []
        self._closed = False
        self._warned_clock = False
        self._quality_request: str | None = None  # the scene's render_quality last applied
        self.adaptive: AdaptiveQuality | None = None
        self._set_adaptive(quality == "auto")
        # Full garbage collections after loads, not mid-speech (``app.load_gc.enabled``).
        self.load_gc = LoadTimeGC()

    @classmethod
    def headless(
        cls,
        size: tuple[int, int] = (1280, 720),
        fps: float = 30.0,
        samples: int | None = 4,
        clock: Clock | None = None,
        quality: str | Quality | None = None,
        adaptive: bool = False,
    ) -> App:
        """Off-screen EGL rendering. The default clock matches the audio (``HeadlessClock``):
        virtual, exactly ``1/fps`` per frame, unless a real-time audio device (sound card
        or null device) plays, then the wall clock. MSAA 4x by default: offline quality
        first; ``quality`` names another (see ``App``)."""
        from engine.audio.devices import realtime_device_playing
        from engine.backends.headless import HeadlessBackend

        clock = clock or HeadlessClock(fps, realtime_device_playing)
        backend = HeadlessBackend(size)
        return cls(backend, clock, samples=samples, quality=quality, adaptive=adaptive)

    @classmethod
    def window(
        cls,
        size: tuple[int, int] = (1280, 720),
        title: str = "engine",
        fps: float = 60.0,
        samples: int | None = None,
        clock: Clock | None = None,
        vsync: bool = True,
        fullscreen: bool = False,
        quality: str | Quality | None = None,
    ) -> App:
        """A pygame window with a real-time clock paced at ``fps`` (quality automatic).
        ``fullscreen``: cover the desktop at its size instead (``size`` is then ignored;
        ``app.size`` tells the real one, ``app.backend.mode`` how it opened)."""
        from engine.backends.window import WindowBackend

        return cls(
            WindowBackend(size, title, vsync, fullscreen),
            clock or RealtimeClock(fps),
            samples=samples,
            quality=quality,
        )

    def set_quality(self, quality: str | Quality) -> Quality:
        """Switch to another render quality (a name or a ``Quality``) from the next frame:
        the off-screen target is rebuilt. Render thread only; returns the one in force."""
        with self.ctx:
            self._set_adaptive(quality == "auto")
            return self._switch_quality(quality)

    def _set_adaptive(self, auto: bool) -> None:
        """Adapt from now on if ``auto`` was asked for where it applies (a software
        rasteriser, live), else not."""
        self.adaptive = None
        if not (auto and self._adapts):
            return
        ladder = [QUALITIES[name] for name in LIVE_LADDER]
        start = ladder.index(resolve_quality("auto", self.software, live=True))
        # The rate to keep: 30 fps, or the clock's own where it paces slower on purpose.
        fps = min(MIN_LIVE_FPS, float(getattr(self.clock, "fps", MIN_LIVE_FPS)))
        self.adaptive = AdaptiveQuality(*ladder, min_fps=fps, start=start)
        if any(q.edge_lines for q in ladder):
            # A step up to the lines must not stall a frame the sound plays on.
            self.renderer.prepare_edges()
            if self._passes is None:
                self._passes = TargetPasses(self.ctx)
                self._passes.warm()

    def _switch_quality(self, quality: str | Quality) -> Quality:
        # With our context current (a nested ``with ctx`` would leave none current on exit).
        resolved = resolve_quality(quality, self.software, self._adapts)
        if resolved != self.quality:
            size = self.target.size
            self.target.release()
            self.target = RenderTarget(
                self.ctx,
                size,
                resolved.samples,
                resolved.post_aa,
                resolved.edge_lines,
                self._passes,
            )
            self.quality = resolved
        return self.quality

    @property
    def size(self) -> tuple[int, int]:
        return self.target.size

    @property
    def aspect(self) -> float:
        return self.size[0] / self.size[1]

    # -- input -----------------------------------------------------------------
    def post_event(self, event: Event) -> None:
        """Queue an event as if it came from the window (thread-safe; tests use this)."""
        self._events.put(event)

    def add_event_handler(self, handler: EventHandler) -> None:
        """``handler(event)`` sees events before the scene; return True to consume one."""
        self._event_handlers.append(handler)

    def _dispatch_events(self) -> None:
        for event in self.backend.poll_events():
            self._events.put(event)
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return
            if any(handler(event) for handler in self._event_handlers):
                continue
            if self.scene.dispatch_event(event):
                continue
            if event.type == events.QUIT:
                self.running = False

    # -- frames ----------------------------------------------------------------
    def add_frame_listener(self, listener: FrameListener) -> None:
        """``listener(app, frame)`` after each completed frame (e.g. write it to a video)."""
        self._frame_listeners.append(listener)

    def remove_frame_listener(self, listener: FrameListener) -> None:
        self._frame_listeners.remove(listener)

    def step(self) -> Frame:
        """Run exactly one frame and return it."""
        # Make our context current: another App (or a plain moderngl context) in this
        # process may have made its own current since our last frame.
        with self.ctx:
            started = time.perf_counter()
            posed_at = self._update()
            frame = self._render()
            work_s = time.perf_counter() - started
            self.backend.present(self.target)
            self._measure_present_lead(time.perf_counter() - posed_at)
            self.scene.post_render(frame)
            for listener in list(self._frame_listeners):
                listener(self, frame)
            self._adapt(work_s)  # after the frame is out: a switch rebuilds the target
        self.frame_index += 1
        self.stats.tick()
        return frame

    def advance(self) -> None:
        """Run one frame's update without drawing it: the clock, the schedule and the scene
        move exactly as ``step()`` moves them (controllers tick, audio plays on), and
        nothing is drawn, presented or handed to frame listeners. A process that renders
        only some frames of a video (``avatarkit render --workers``) keeps its scene in
        step with the others this way."""
        with self.ctx:
            self._update()
        self.frame_index += 1

    def _update(self) -> float:
        """The frame's update half; returns when the scene was posed (perf_counter)."""
        dt = self.clock.tick()
        scene = self.scene
        self.load_gc.before_frame(scene.structure_version, self._realtime(), scene.removals)
        self._dispatch_events()
        self.schedule.advance(self.clock.time)
        posed_at = time.perf_counter()
        self.scene.update(dt)
        self._apply_quality_request()
        return posed_at

    def _apply_quality_request(self) -> None:
        wanted = self.scene.render_quality
        if wanted is not None and wanted != self._quality_request:
            self._quality_request = wanted  # once per new request, not per frame
            self._set_adaptive(wanted == "auto")
            self._switch_quality(wanted)

    def _adapt(self, work_s: float) -> None:
        """Feed the adaptive quality this frame's work (real time only); switch if it says."""
        if self.adaptive is None or not self._realtime():
            return
        chosen = self.adaptive.observe(work_s, time.perf_counter())
        if chosen is not None:
            log.info(
                "render quality auto: %s (frames took %.1f ms, the budget is %.1f ms)",
                chosen.name,
                1000 * work_s,
                1000 * self.adaptive.budget_s,
            )
            with self.ctx:  # a listener's own ``with app.ctx`` may have left none current
                self._switch_quality(chosen)

    def _measure_present_lead(self, seconds: float) -> None:
        """Smooth the update-to-present time into ``scene.present_lead`` (real time only)."""
        if not self._realtime():
            self.scene.present_lead = 0.0
        elif self.scene.present_lead == 0.0:
            self.scene.present_lead = seconds
        else:
            self.scene.present_lead += PRESENT_LEAD_SMOOTHING * (seconds - self.scene.present_lead)

    def _realtime(self) -> bool:
        """Whether this frame follows the wall clock (as the clock's last tick decided)."""
        return bool(getattr(self.clock, "realtime", isinstance(self.clock, RealtimeClock)))

    def _render(self) -> Frame:
        scene = self.scene
        camera = scene.camera
        frame = Frame(
            ctx=self.ctx,
            renderer=self.renderer,
            size=self.size,
            index=self.frame_index,
            time=self.clock.time,
            view=camera.view_matrix(),
            projection=camera.projection_matrix(self.aspect),
            camera_position=camera.position.copy(),
            lighting=scene.lighting,
            target=self.target,
        )
        self.target.begin(scene.lighting.clear_color)
        self.renderer.track_region = self.target.post_aa is not None
        self.renderer.capture_edges = self.target.edge_lines is not None
        self.renderer.upload_aside = self._realtime()  # no stall in a live frame loop
        self.renderer.begin_frame(frame)
        scene.render(frame)
        if self.software:
            wait_for_gpu(self.ctx)  # rasterise with the GIL released: audio threads run
        lines = self.renderer.edge_lines() if self.renderer.capture_edges else None
        self.target.resolve(self.renderer.drawn_region, lines)
        if self.adaptive is not None:
            wait_for_gpu(self.ctx)  # the post pass's time is part of the frame's work
        return frame

    def run(self, seconds: float | None = None, frames: int | None = None) -> int:
        """Run frames until ``seconds`` of clock time or ``frames`` frames pass, or until
        ``stop()`` / a window close. Returns the number of frames run."""
        self.running = True
        self._warn_virtual_clock_with_realtime_audio()
        start_time, count = self.clock.time, 0
        paced = self.backend.interactive or getattr(self.clock, "pace_headless", False)
        pace = getattr(self.clock, "wait", None) if paced else None
        while self.running:
            if frames is not None and count >= frames:
                break
            if seconds is not None and self.clock.time - start_time >= seconds - 1e-9:
                break
            self.step()
            count += 1
            if pace is not None:
                pace()
        self.running = False
        return count

    def stop(self) -> None:
        self.running = False

    def _warn_virtual_clock_with_realtime_audio(self) -> None:
        from engine.audio.devices import realtime_device_playing

        if (
            isinstance(self.clock, ManualClock)
            and realtime_device_playing()
            and not self._warned_clock
        ):
            self._warned_clock = True
            log.warning(
                "a virtual clock (ManualClock) drives frames while a real-time audio device "
                "plays: frames race ahead of the speech. Use the default clock "
                "(App.headless()) or audio_device='virtual' for offline rendering."
            )

    # -- capture ---------------------------------------------------------------
    def read_pixels(self, alpha: bool = False) -> np.ndarray:
        """The last rendered frame as HxWx3 (or x4) uint8, top row first."""
        with self.ctx:
            return self.target.read(alpha)

    def save_png(self, path: str | Path, alpha: bool = False) -> Path:
        return save_png(self.read_pixels(alpha), path)

    # -- teardown --------------------------------------------------------------
    def close(self) -> None:
        """Dispose the scene (components release GL objects), then the context."""
        if self._closed:
            return
        self._closed = True
        with self.ctx:
            self.scene.dispose()
            self.renderer.close()
            self.target.release()
            if self._passes is not None:
                self._passes.release()
        self.backend.close()
        self.load_gc.release()

    def __enter__(self) -> App:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
