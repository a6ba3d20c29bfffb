"""Stage 3 of the lifecycle: ``AvatarView``, the engine component that shows an avatar.

Mounting a loaded ``Avatar`` creates its render resources and its ``AvatarController``.
Every frame the view ticks the controller (render thread) and applies the face it returns:
ARKit weights through the avatar's blendshape map to GPU morph targets, head rotation to
the head node. ``on_first_rendering`` fires once, after the first frame really drawn.

On top of speech and idle the app can layer its own face: an expression
(``set_expression``) and a gaze target (``look_at``), both faded and followed smoothly
on the render thread where the view composes the frame's ``FacePose``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from avatarkit.arkit import ARKIT_INDEX, NUM_BLENDSHAPES
from avatarkit.callbacks import call_app
from avatarkit.controller import AvatarController, FacePose
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.idle import apply_gaze
from avatarkit.sdk import AvatarSDK
from engine import Component, ModelRenderer, Schedule
from engine.transform import quat_from_euler, quat_multiply

if TYPE_CHECKING:
    from avatarkit.avatar import Avatar
    from engine import Camera, Frame
    from engine.audio import Mixer

log = logging.getLogger(__name__)

FRAME_RATE_WINDOW = 2.0  # seconds per on_frame_rate_info report
EXPRESSION_FADE_S = 0.25  # default seconds to fade an expression in or out
LOOK_HEAD_SHARE = 0.3  # default share of a look the head turns (the eyes do the rest)
LOOK_LIMIT = (1.2, 0.7)  # radians of yaw, pitch a look is clamped to (no looking behind)
EYE_FOLLOW = 18.0  # 1/s: eyes reach a new target in about 0.15 s (exponential)
HEAD_FOLLOW = 5.0  # 1/s: the head follows more slowly, about 0.5 s
_EYE_LOOKS = [i for name, i in ARKIT_INDEX.items() if name.startswith("eyeLook")]


class AvatarView(Component):
    """Add to an entity: ``scene.create_entity("host").add_component(AvatarView(avatar))``.

    ``mixer``: the audio mixer to play through (default: the SDK's process-wide one).
    ``idle``: play idle animation when no speech plays (``False`` keeps the face still).
    ``set_expression`` / ``look_at`` layer the app's own face over speech and idle.
    Use as a context manager, or call ``dispose()``; the scene also disposes it.
    """

    def __init__(
        self, avatar: Avatar, *, mixer: Mixer | None = None, idle: bool = True, seed: int = 0
    ) -> None:
        AvatarSDK.require_initialized()
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
        self._first_drawn = False
        self._disposed = False
        self._head_nodes = self._find_head_nodes()
        for index in self._head_nodes:
            self.model.nodes[index].to_trs()  # a glTF matrix would override the turn
        self._rest = [self.model.nodes[i].rotation.copy() for i in self._head_nodes]
        self._expression = _ExpressionLayer()
        self._look = _LookLayer()

    def attach(self) -> None:
        self.model.entity = self.entity

    def update(self, dt: float) -> None:
        if self._disposed:
            return  # still on its entity after dispose(): it shows nothing, holds nothing
        scene = self.entity.scene if self.entity is not None else None
        pose = self.controller.tick(dt, scene.present_lead if scene is not None else 0.0)
        self._expression.apply(pose, dt)
        self._look.apply(pose, dt)
        self.pose = pose  # what is drawn: speech and idle plus the app's overrides
        self._apply(pose)
        if self.on_frame_rate_info is not None:
            self._frames += 1
            self._time += dt
            self._timers.advance(self._time)

    def render(self, frame: Frame) -> None:
        if not self._disposed:  # rendering would upload the asset again, never released
            self.model.render(frame)

    def post_render(self, frame: Frame) -> None:
        if not self._first_drawn and not self._disposed:
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

    # -- app overrides (any thread: each call hands over one immutable target) -----------

    def set_expression(
        self, weights: Mapping[str, float] | None, fade_s: float = EXPRESSION_FADE_S
    ) -> None:
        """Hold an expression over speech and idle: ARKit name -> weight (0..1), each
        channel shown at least at that weight; ``None`` fades it out. A new expression
        cross-fades from whatever shows now, over ``fade_s`` seconds; the same one again
        changes nothing."""
        fade = _finite(fade_s, "fade_s")
        if fade < 0:
            raise AvatarKitError(ErrorCode.INVALID_REQUEST, f"fade_s {fade_s} is negative")
        target = np.zeros(NUM_BLENDSHAPES, np.float32)
        for name, value in (weights or {}).items():
            if name not in ARKIT_INDEX:
                raise AvatarKitError(
                    ErrorCode.INVALID_REQUEST, f"{name!r} is not an ARKit blendshape name"
                )
            w = _finite(value, name)
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
        yaw, pitch, share = _finite(yaw, "yaw"), _finite(pitch, "pitch"), _finite(head, "head")
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

    def __enter__(self) -> AvatarView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()

    # -- internals ----------------------------------------------------------------------

    def _apply(self, pose: FacePose) -> None:
        self.model.set_weights(self.avatar.target_weights(pose.weights, self.model.target_names))
        turn = quat_from_euler(*(float(a) for a in pose.head))
        for index, rest in zip(self._head_nodes, self._rest, strict=True):
            self.model.nodes[index].rotation = quat_multiply(rest, turn)

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


def _finite(value: float, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise AvatarKitError(
            ErrorCode.INVALID_REQUEST, f"{what} must be a number, got {value!r}"
        ) from None
    if not math.isfinite(number):
        raise AvatarKitError(ErrorCode.INVALID_REQUEST, f"{what} must be finite, got {value!r}")
    return number


def _smoothstep(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3 - 2 * x)


class _ExpressionLayer:
    """Cross-fades between expression targets; each channel shows at least its weight."""

    def __init__(self) -> None:
        self.target: tuple[np.ndarray, float] | None = None  # set by set_expression (any thread)
        self._seen: tuple[np.ndarray, float] | None = None
        self._from = np.zeros(NUM_BLENDSHAPES, np.float32)
        self._to = self._from
        self._now = self._from
        self._progress = 1.0  # of the current fade
        self._fade = 0.0

    def apply(self, pose: FacePose, dt: float) -> None:
        target = self.target
        if target is not None and target is not self._seen:  # a new request: fade from now
            self._seen = target
            self._from, (self._to, self._fade) = self._now, target
            self._progress = 0.0
        if self._progress < 1.0:
            self._progress = 1.0 if self._fade <= 0 else min(1.0, self._progress + dt / self._fade)
            self._now = self._from + (self._to - self._from) * _smoothstep(self._progress)
        if self._now.any():
            np.maximum(pose.weights, self._now, out=pose.weights)

    def shown(self) -> dict[str, float]:
        return {name: float(self._now[i]) for name, i in ARKIT_INDEX.items() if self._now[i] > 0}


class _LookLayer:
    """Eyes and head follow a look target; released, the head returns and the eyes hand
    back to the underlying (idle or speech) gaze."""

    def __init__(self) -> None:
        self.target: tuple[float, float, float] | None = None  # yaw, pitch, head share
        self._eyes = np.zeros(2, np.float32)  # yaw, pitch the eyes add (look convention)
        self._head = np.zeros(2, np.float32)  # yaw, pitch the head node adds
        self._weight = 0.0  # how much the eyes follow us rather than the face's own gaze

    def apply(self, pose: FacePose, dt: float) -> None:
        target = self.target
        eye_k, head_k = 1.0 - math.exp(-EYE_FOLLOW * dt), 1.0 - math.exp(-HEAD_FOLLOW * dt)
        if target is not None:
            yaw, pitch, share = target
            look = np.array([yaw, pitch], np.float32)
            self._eyes += (look * (1 - share) - self._eyes) * eye_k
            self._head += (look * share - self._head) * head_k
            self._weight += (1.0 - self._weight) * eye_k
        else:
            self._head -= self._head * head_k
            self._weight -= self._weight * eye_k
        if self._weight > 1e-3:
            # Eye gaze yaw is ARKit's (+ towards the avatar's own right): mirror ours.
            eyes = FacePose(
                pose.weights.copy(), gaze=np.array([-self._eyes[0], self._eyes[1]], np.float32)
            )
            apply_gaze(eyes)
            w = self._weight
            pose.weights[_EYE_LOOKS] += (eyes.weights[_EYE_LOOKS] - pose.weights[_EYE_LOOKS]) * w
            pose.gaze += (eyes.gaze - pose.gaze) * w
        if np.abs(self._head).max() > 1e-5:
            pose.head[0] -= self._head[1]  # head pitch + nods down; ours + looks up
            pose.head[1] += self._head[0]
