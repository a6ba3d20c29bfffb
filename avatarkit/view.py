"""Stage 3 of the lifecycle: ``AvatarView``, the engine component that shows an avatar.

Mounting a loaded ``Avatar`` creates its render resources and its ``AvatarController``.
Every frame the view ticks the controller (render thread) and applies the face it returns:
ARKit weights through the avatar's blendshape map to GPU morph targets, head rotation to
the head node, or on a skinned avatar to its neck and head bones, and gaze to its eye
bones (``avatarkit.bones``). ``on_first_rendering`` fires once, after the first frame really drawn.

On top of speech and idle the app can layer its own face: an expression
(``set_expression``) and a gaze target (``look_at``), both faded and followed smoothly
on the render thread where the view composes the frame's ``FacePose``.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Literal

import numpy as np

from avatarkit.arkit import ARKIT_INDEX, NUM_BLENDSHAPES
from avatarkit.bones import BoneRig, jaw_opens_by_bone
from avatarkit.callbacks import call_app
from avatarkit.controller import AvatarController, FacePose
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.node_constraints import NodeConstraints
from avatarkit.sdk import AvatarSDK
from avatarkit.spring_bones import SpringBones
from avatarkit.view_layers import ExpressionLayer, LookLayer, finite
from engine import Component, ModelRenderer, Schedule, png_bytes, straight_alpha
from engine.transform import quat_from_euler, quat_multiply

if TYPE_CHECKING:
    from avatarkit.avatar import Avatar
    from engine import Camera, Frame
    from engine.audio import Mixer
    from engine.render.target import RenderTarget

log = logging.getLogger(__name__)

FRAME_RATE_WINDOW = 2.0  # seconds per on_frame_rate_info report
EXPRESSION_FADE_S = 0.25  # default seconds to fade an expression in or out
LOOK_HEAD_SHARE = 0.3  # default share of a look the head turns (the eyes do the rest)
LOOK_LIMIT = (1.2, 0.7)  # radians of yaw, pitch a look is clamped to (no looking behind)
_JAW = ARKIT_INDEX["jawOpen"]
EXPORT_WAIT_S = 5.0  # export_bitmap() from another thread waits this long for a frame
MAX_SCALE = 10.0  # set_transform(scale=...) upper bound
Background = Literal["scene", "transparent"]


class AvatarView(Component):
    """Add to an entity: ``scene.create_entity("host").add_component(AvatarView(avatar))``.

    ``mixer``: the audio mixer to play through (default: the SDK's process-wide one).
    ``idle``: play idle animation when no speech plays (``False`` keeps the face still).
    ``set_expression`` / ``look_at`` layer the app's own face over speech and idle.
    ``background``: ``"scene"`` (the scene's lighting background) or ``"transparent"``
    (the frame is cleared to alpha 0: ``export_bitmap()`` and RGBA reads give the avatar
    alone, for compositing over an app's own UI or video).
    Use as a context manager, or call ``dispose()``; the scene also disposes it.
    """

    def __init__(
        self,
        avatar: Avatar,
        *,
        mixer: Mixer | None = None,
        idle: bool = True,
        seed: int = 0,
        background: Background = "scene",
    ) -> None:
        self._quality = AvatarSDK.require_initialized().render_quality
        if background not in ("scene", "transparent"):
            raise AvatarKitError(
                ErrorCode.INVALID_REQUEST,
                f"background {background!r}: 'scene' or 'transparent'",
            )
        self.background: Background = background
        self.avatar = avatar
        self.model = ModelRenderer(avatar.asset)  # CPU arrays shared by every view of it
        self.controller = AvatarController(
            avatar.id, mixer or AvatarSDK.audio_mixer(), idle=idle, seed=seed
        )
        self.on_first_rendering: Callable[[], None] | None = None
        self.on_frame_rate_info: Callable[[float], None] | None = None  # rolling fps, every 2 s
        self._frames = 0  # frames since the last frame-rate report
        self._time = 0.0  # seconds of frames seen (the view's own clock)
        self._timers = Schedule()
        self._timers.schedule_interval(self._report_frame_rate, FRAME_RATE_WINDOW)
        self.pose = FacePose()
        self._drawing = False  # this frame's update posed the face: render() draws it
        self._paused_dt = 0.0  # frame time the overrides missed while rendering was paused
        self._first_drawn = False
        self._disposed = False
        # A skinned avatar turns its head, neck and eye bones; anything else a node.
        self._bones = BoneRig.find(self.model.nodes, self.model.asset)
        self._jaw_by_bone = jaw_opens_by_bone(self._bones, self.avatar.available_channels)
        self._constraints = NodeConstraints.of(self.model.asset, self.model.nodes)
        self._springs = SpringBones.of(self.model.asset, self.model.nodes)  # hair, cloth
        self._head_nodes = [] if self._bones is not None else self._find_head_nodes()
        for index in self._head_nodes:
            self.model.nodes[index].to_trs()  # a glTF matrix would override the turn
        self._rest = [self.model.nodes[i].rotation.copy() for i in self._head_nodes]
        self._expression = ExpressionLayer()
        self._look = LookLayer()
        self._transform = (0.0, 0.0, 1.0)
        self._target: RenderTarget | None = None  # of the last frame drawn (render thread)
        self._render_thread: int | None = None
        self._exports: list[Future[np.ndarray]] = []  # export_bitmap() calls from elsewhere
        self._exports_lock = threading.Lock()

    def attach(self) -> None:
        self.model.entity = self.entity

    def update(self, dt: float) -> None:
        if self._disposed:
            return  # still on its entity after dispose(): it shows nothing, holds nothing
        scene = self.entity.scene if self.entity is not None else None
        if scene is not None and self._quality is not None:
            scene.render_quality = self._quality  # the App switches before this frame
        if scene is not None and self.background == "transparent":
            # The frame is the view's surface: cleared to alpha 0, no gradient behind.
            scene.lighting.background = None
            scene.lighting.clear_color = (0.0, 0.0, 0.0, 0.0)
        # Ticked even while rendering is paused: it feeds the audio out and takes in motion.
        pose = self.controller.tick(dt, scene.present_lead if scene is not None else 0.0)
        self._drawing = self.controller.is_rendering
        if self._drawing:
            layer_dt, self._paused_dt = dt + self._paused_dt, 0.0  # fades catch up on resume
            self._expression.apply(pose, layer_dt)
            self._look.apply(pose, layer_dt)
            self.pose = pose  # what is drawn: speech and idle plus the app's overrides
            self._apply(pose, layer_dt)
            if self.on_frame_rate_info is not None:
                self._frames += 1  # the rate of frames drawn: 0 while paused
        else:
            self._paused_dt += dt
        if self.on_frame_rate_info is not None:
            self._time += dt
            self._timers.advance(self._time)

    def render(self, frame: Frame) -> None:
        # Disposed: rendering would upload the asset again, never released.
        if self._drawing and not self._disposed:
            self.model.render(frame)

    def post_render(self, frame: Frame) -> None:
        self._target, self._render_thread = frame.target, threading.get_ident()
        if self._exports:
            with self._exports_lock:
                waiting, self._exports = self._exports, []
            for future in waiting:
                try:
                    future.set_result(self._read_frame())
                except Exception as exc:  # handed to the caller's thread, raised there
                    future.set_exception(exc)
        if self._drawing and self.model.uploaded and not self._first_drawn and not self._disposed:
            self._first_drawn = True
            call_app(self.on_first_rendering, what="on_first_rendering")
            call_app(self.controller.on_first_rendering, what="on_first_rendering")

    def frame(self, camera: Camera, distance_scale: float = 1.0) -> None:
        """Point ``camera`` at the avatar's face using its framing hints (a head shot)."""
        framing = self.avatar.framing
        head = np.array(framing.head_center, np.float32)
        if self.entity is not None:
            head = (self.entity.world_matrix() @ np.append(head, 1.0))[:3]
        distance = framing.camera_distance * distance_scale
        camera.look_at(head + [0.0, 0.0, distance], head)
        # A model in centimetres (or millimetres) sits 100x further away: widen the depth
        # range to it (a model in metres keeps the camera's own near and far planes).
        camera.near = max(camera.near, distance / 100)
        camera.far = max(camera.far, distance * 20)

    # -- the picture -----------------------------------------------------------------------

    def export_bitmap(self) -> bytes:
        """The current frame as PNG bytes: RGB, or straight-alpha RGBA for a transparent
        background. The pixels are read on the render thread: called there, from the last
        frame drawn; from another thread, from the next frame (waits up to 5 s). The
        frame is the whole App's, other entities included; PNG encoding runs in the caller."""
        if self._disposed:
            raise AvatarKitError(ErrorCode.INVALID_REQUEST, "export_bitmap() after dispose()")
        if self._render_thread is None:
            raise AvatarKitError(
                ErrorCode.INVALID_REQUEST, "export_bitmap(): no frame rendered yet (step the App)"
            )
        if threading.get_ident() == self._render_thread:
            pixels = self._read_frame()
        else:
            future: Future[np.ndarray] = Future()
            with self._exports_lock:
                self._exports.append(future)
            try:
                pixels = future.result(EXPORT_WAIT_S)
            except FutureTimeout:
                with self._exports_lock:
                    if future in self._exports:
                        self._exports.remove(future)
                raise AvatarKitError(
                    ErrorCode.INVALID_REQUEST,
                    f"export_bitmap(): no frame rendered within {EXPORT_WAIT_S:g} s "
                    "(is the App's loop running?)",
                ) from None
        return png_bytes(pixels)

    def _read_frame(self) -> np.ndarray:
        target = self._target
        if target is None:
            raise AvatarKitError(ErrorCode.INVALID_REQUEST, "export_bitmap(): no render target")
        with target.ctx:
            if self.background == "transparent":
                return straight_alpha(target.read(alpha=True))
            return target.read()

    def set_transform(self, x: float = 0.0, y: float = 0.0, scale: float = 1.0) -> None:
        """Move and scale the avatar within the view, after the camera's projection: ``x``,
        ``y`` in -1..1 (1 moves it by half the view: from the centre to the right / top
        edge), ``scale`` > 0 about the view's centre. (0, 0, 1) is as the camera sees it.
        Any thread; the next frame draws it."""
        x, y, scale = finite(x, "x"), finite(y, "y"), finite(scale, "scale")
        if not (-1.0 <= x <= 1.0 and -1.0 <= y <= 1.0):
            raise AvatarKitError(ErrorCode.INVALID_REQUEST, f"x, y ({x}, {y}) not in -1..1")
        if not 0.0 < scale <= MAX_SCALE:
            raise AvatarKitError(
                ErrorCode.INVALID_REQUEST, f"scale {scale} not in (0, {MAX_SCALE:g}]"
            )
        self._transform = (x, y, scale)
        if (x, y, scale) == (0.0, 0.0, 1.0):
            self.model.screen_transform = None
            return
        screen = np.diag([scale, scale, 1.0, 1.0]).astype(np.float32)
        screen[0, 3], screen[1, 3] = x, y  # times clip w: an offset in normalised coordinates
        self.model.screen_transform = screen

    @property
    def transform(self) -> tuple[float, float, float]:
        """The avatar's (x, y, scale) in the view (``set_transform``)."""
        return self._transform

    # -- app overrides (any thread: each call hands over one immutable target) -----------

    def set_expression(
        self, weights: Mapping[str, float] | None, fade_s: float = EXPRESSION_FADE_S
    ) -> None:
        """Hold an expression over speech and idle: ARKit name -> weight (0..1), each
        channel shown at least at that weight; ``None`` fades it out. A new expression
        cross-fades from whatever shows now, over ``fade_s`` seconds; the same one again
        changes nothing."""
        fade = finite(fade_s, "fade_s")
        if fade < 0:
            raise AvatarKitError(ErrorCode.INVALID_REQUEST, f"fade_s {fade_s} is negative")
        target = np.zeros(NUM_BLENDSHAPES, np.float32)
        for name, value in (weights or {}).items():
            if name not in ARKIT_INDEX:
                raise AvatarKitError(
                    ErrorCode.INVALID_REQUEST, f"{name!r} is not an ARKit blendshape name"
                )
            w = finite(value, name)
            if not 0.0 <= w <= 1.0:
                raise AvatarKitError(
                    ErrorCode.INVALID_REQUEST, f"{name} weight {value} not in 0..1"
                )
            target[ARKIT_INDEX[name]] = w
        current = self._expression.target
        if current is not None and np.array_equal(current[0], target):
            return  # the same expression again (apps may set it every frame): keep fading
        self._expression.target = (target, fade)

    @property
    def expression(self) -> dict[str, float]:
        """The expression layer as shown at the last frame (fades included), non-zero channels."""
        return self._expression.shown()

    def look_at(
        self, yaw: float | None, pitch: float = 0.0, *, head: float = LOOK_HEAD_SHARE
    ) -> None:
        """Look towards (``yaw``, ``pitch``) radians from straight ahead in the avatar's own
        frame (yaw + turns to its +X side, screen right when it faces the camera; pitch +
        looks up), or ``look_at(None)`` to hand the gaze back to idle and speech. The eyes
        (eyeLook* channels) do ``1 - head`` of the turn, the head node ``head`` of it; both
        follow smoothly, and speech head motion stays on top. Angles are clamped to
        ``LOOK_LIMIT``."""
        if yaw is None:
            self._look.target = None
            return
        yaw, pitch, share = finite(yaw, "yaw"), finite(pitch, "pitch"), finite(head, "head")
        if not 0.0 <= share <= 1.0:
            raise AvatarKitError(ErrorCode.INVALID_REQUEST, f"head share {head} not in 0..1")
        yaw = max(-LOOK_LIMIT[0], min(LOOK_LIMIT[0], yaw))
        pitch = max(-LOOK_LIMIT[1], min(LOOK_LIMIT[1], pitch))
        self._look.target = (yaw, pitch, share)

    def look_at_point(
        self, point: Sequence[float] | None, *, head: float = LOOK_HEAD_SHARE
    ) -> None:
        """``look_at`` a world-space point (e.g. another avatar's head); None releases.
        Render thread: reads the entity's transform now (call again when things move)."""
        if point is None:
            self.look_at(None)
            return
        if self.entity is None:
            raise AvatarKitError(
                ErrorCode.INVALID_REQUEST, "look_at_point() before the view is on an entity"
            )
        local = np.linalg.inv(self.entity.world_matrix()) @ np.append(
            np.asarray(point, np.float64), 1.0
        )
        d = local[:3] - np.asarray(self.avatar.framing.head_center, np.float64)
        self.look_at(math.atan2(d[0], d[2]), math.atan2(d[1], math.hypot(d[0], d[2])), head=head)

    @property
    def look(self) -> tuple[float, float] | None:
        """The current look target (yaw, pitch) after clamping, or None."""
        target = self._look.target
        return None if target is None else target[:2]

    def dispose(self) -> None:
        """Close the controller's connection and release the GL resources (idempotent;
        render thread). A disposed view left on its entity draws nothing from then on."""
        if self._disposed:
            return
        self._disposed = True
        self.controller.dispose()
        self.model.dispose()
        with self._exports_lock:
            waiting, self._exports = self._exports, []
        for future in waiting:
            future.set_exception(AvatarKitError(ErrorCode.INVALID_REQUEST, "the view was disposed"))

    def __enter__(self) -> AvatarView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()

    # -- internals ----------------------------------------------------------------------

    def _apply(self, pose: FacePose, dt: float) -> None:
        self.avatar.show(self.model, pose.weights)
        turn = quat_from_euler(*(float(a) for a in pose.head))
        for index, rest in zip(self._head_nodes, self._rest, strict=True):
            self.model.nodes[index].rotation = quat_multiply(rest, turn)
        if self._bones is not None:
            jaw = float(pose.weights[_JAW]) if self._jaw_by_bone else None
            self._bones.apply(self.model.nodes, pose.head, pose.gaze, jaw)
        if self._constraints is not None:  # nodes that follow the bones just posed
            self._constraints.apply(self.model.nodes, self.model.world_matrices)
        if self._springs is not None:  # after the head moved: the hair follows it
            place = self.entity.world_matrix() if self.entity is not None else None
            self._springs.step(self.model.nodes, self.model.world_matrices(), dt, place)

    def _report_frame_rate(self, elapsed: float) -> None:
        frames, self._frames = self._frames, 0
        call_app(self.on_frame_rate_info, frames / elapsed, what="on_frame_rate_info")

    def _find_head_nodes(self) -> list[int]:
        """The node the head pose turns: the avatar's ``head_node`` hint, else the roots."""
        asset = self.model.asset
        name = getattr(self.avatar, "head_node", None)
        if name:
            found = [i for i, node in enumerate(asset.nodes) if node.name == name]
            if found:
                return found
            log.warning("avatar %s: head node %r not in the model", self.avatar.id, name)
        return [i for i, parent in asset.walk() if parent is None]
