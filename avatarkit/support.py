"""``AvatarSDK.support()``: can this machine show avatars, and fast enough?

Three answers, as the platform SDKs give them: ``supported``; ``renderNotSupported`` (no
EGL/OpenGL 3.3 context can be made); ``insufficientPerformance`` (it renders, but a short
probe of a bundled avatar at the asked size and quality takes more than half the frame
budget: the rest of a frame belongs to the app, the audio callback and the motion). At
``auto`` a frame that misses is probed again at the quality a live window then drops to
(``engine.render.adaptive``): the answer is whether the window keeps its frame rate. A
software rasteriser at 720p is the usual case of the last one.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine import App, ModelRenderer

MIN_GL = (3, 3)
BUDGET_SHARE = 0.5  # of 1/fps that the probe's frame may take
PROBE_FRAMES = 12
UPLOAD_FRAMES = 1000  # at most, before the probe: until the model is drawn
WARMUP_FRAMES = 3  # the first frames upload the avatar and compile shaders


class SupportStatus(StrEnum):
    SUPPORTED = "supported"
    RENDER_NOT_SUPPORTED = "renderNotSupported"
    INSUFFICIENT_PERFORMANCE = "insufficientPerformance"


@dataclass(frozen=True)
class SupportReport:
    status: SupportStatus
    reason: str  # for people: what decided it
    gl_version: tuple[int, int] | None = None
    renderer: str = ""  # GL_RENDERER, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)"
    software: bool = False  # a software rasteriser
    quality: str = ""  # the render quality probed (resolved: low/medium/geometric/high)
    frame_ms: float | None = None  # median probe frame time
    budget_ms: float | None = None  # the most a frame may take for a "supported"

    @property
    def supported(self) -> bool:
        return self.status is SupportStatus.SUPPORTED


def check_support(
    size: tuple[int, int] = (1280, 720),
    fps: float = 30.0,
    quality: str | None = None,
    avatar_id: str = "ava",
) -> SupportReport:
    """Make a headless context, read the GL version and renderer, and time a few frames of
    a bundled avatar at ``size`` and ``quality`` (None: auto). Takes about a second on a
    software rasteriser; the context is released before it returns."""
    from avatarkit.manager import AvatarManager
    from avatarkit.paths import AVATARS_DIR
    from engine import App, ModelRenderer
    from engine.errors import RENDER_NOT_SUPPORTED, EngineError

    try:
        # As a live window would render (adaptive: ``auto`` resolves as it does live,
        # ``medium`` on a software rasteriser; too few frames here for it to switch).
        app = App.headless(size, fps=fps, quality=quality or "auto", adaptive=True)
    except EngineError as exc:
        if exc.code != RENDER_NOT_SUPPORTED:
            raise
        return SupportReport(SupportStatus.RENDER_NOT_SUPPORTED, exc.message)
    with app:
        version = divmod(app.ctx.version_code, 100)
        major, minor = version[0], version[1] // 10
        renderer = str(app.ctx.info.get("GL_RENDERER", ""))
        found = dict(
            gl_version=(major, minor),
            renderer=renderer,
            software=app.software,
            quality=app.quality.name,
        )
        if (major, minor) < MIN_GL:
            return SupportReport(
                SupportStatus.RENDER_NOT_SUPPORTED,
                f"OpenGL {major}.{minor}; {MIN_GL[0]}.{MIN_GL[1]} is required",
                **found,  # type: ignore[arg-type]
            )
        avatar = AvatarManager(str(AVATARS_DIR)).load_blocking(avatar_id)
        entity = app.scene.create_entity("probe")
        model = entity.add_component(ModelRenderer(avatar.asset))
        framing = avatar.framing
        head = framing.head_center
        app.scene.camera.look_at((head[0], head[1], head[2] + framing.camera_distance), tuple(head))
        frame_ms = _probe(app, model)
        budget_ms = 1000.0 / fps * BUDGET_SHARE
        note = ""
        ladder = app.adaptive
        if frame_ms > budget_ms and ladder is not None and ladder.current is not ladder.levels[-1]:
            # A live window at auto steps down while its frames miss their rate (to no
            # post pass): what counts is whether it keeps the rate there.
            lower = ladder.levels[-1]
            note = (
                f" ({ladder.current.name} took {frame_ms:.1f} ms, so a live window drops to "
                f"{lower.name})"
            )
            found["quality"] = app.set_quality(lower).name
            frame_ms = _probe(app, model)
    if frame_ms > budget_ms:
        return SupportReport(
            SupportStatus.INSUFFICIENT_PERFORMANCE,
            f"a frame at {size[0]}x{size[1]} ({found['quality']} quality) takes "
            f"{frame_ms:.1f} ms on {renderer}; {fps:g} fps leaves it {budget_ms:.1f} ms{note}",
            frame_ms=frame_ms,
            budget_ms=budget_ms,
            **found,  # type: ignore[arg-type]
        )
    return SupportReport(
        SupportStatus.SUPPORTED,
        f"{frame_ms:.1f} ms per frame of {budget_ms:.1f} ms at {fps:g} fps on {renderer}{note}",
        frame_ms=frame_ms,
        budget_ms=budget_ms,
        **found,  # type: ignore[arg-type]
    )


def _probe(app: App, model: ModelRenderer) -> float:
    """Median milliseconds of ``PROBE_FRAMES`` frames of a speaking face (after
    ``WARMUP_FRAMES``: the first upload and compile)."""
    jaw = model.target_names.index("jawOpen") if "jawOpen" in model.target_names else None
    for _ in range(UPLOAD_FRAMES):  # an App on a real-time clock uploads it aside
        if model.uploaded:
            break
        app.step()
    times = []
    for k in range(WARMUP_FRAMES + PROBE_FRAMES):
        if jaw is not None:  # a speaking face: the morph weights change every frame
            model.weights[jaw] = 0.5 + 0.5 * ((k % 6) / 5)
        started = time.perf_counter()
        app.step()
        if k >= WARMUP_FRAMES:
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)
