"""Stage 3 of the lifecycle: ``AvatarView``, the engine component that shows an avatar.

Mounting a loaded ``Avatar`` creates its render resources and its ``AvatarController``.
Every frame the view ticks the controller (render thread) and applies the face it returns:
ARKit weights through the avatar's blendshape map to GPU morph targets, head rotation to
the head node. ``on_first_rendering`` fires once, after the first frame really drawn.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from avatarkit.controller import AvatarController, FacePose
from avatarkit.sdk import AvatarSDK
from engine import Component, ModelRenderer
from engine.transform import quat_from_euler, quat_multiply

if TYPE_CHECKING:
    from avatarkit.avatar import Avatar

log = logging.getLogger(__name__)

FRAME_RATE_WINDOW = 2.0  # seconds per on_frame_rate_info report


class AvatarView(Component):
    """Add to an entity: ``scene.create_entity("host").add_component(AvatarView(avatar))``.

    ``mixer``: the audio mixer to play through (default: the SDK's process-wide one).
    ``idle``: play idle animation when no speech plays (``False`` keeps the face still).
    Use as a context manager, or call ``dispose()``; the scene also disposes it.
    """

    def __init__(self, avatar: Avatar, *, mixer=None, idle: bool = True, seed: int = 0) -> None:
        AvatarSDK.require_initialized()
        self.avatar = avatar
        self.model = ModelRenderer(avatar.asset)  # CPU arrays shared by every view of it
        self.controller = AvatarController(
            avatar.id, mixer or AvatarSDK.audio_mixer(), idle=idle, seed=seed
        )
        self.on_first_rendering: Callable[[], None] | None = None
        self.on_frame_rate_info: Callable[[float], None] | None = None  # rolling fps, every 2 s
        self._fps_window: list[float] = []
        self.pose = FacePose()
        self._first_drawn = False
        self._disposed = False
        self._head_nodes = self._find_head_nodes()
        self._rest = [self.model.nodes[i].rotation.copy() for i in self._head_nodes]

    def attach(self) -> None:
        self.model.entity = self.entity

    def update(self, dt: float) -> None:
        self.pose = self.controller.tick(dt)
        self._apply(self.pose)
        if self.on_frame_rate_info is not None:
            self._report_frame_rate(dt)

    def render(self, frame) -> None:
        self.model.render(frame)

    def post_render(self, frame) -> None:
        if not self._first_drawn:
            self._first_drawn = True
            for callback in (self.on_first_rendering, self.controller.on_first_rendering):
                if callback is not None:
                    callback()

    def frame(self, camera, distance_scale: float = 1.0) -> None:
        """Point ``camera`` at the avatar's face using its framing hints (a head shot)."""
        framing = self.avatar.framing
        head = np.array(framing.head_center, np.float32)
        if self.entity is not None:
            head = (self.entity.world_matrix() @ np.append(head, 1.0))[:3]
        camera.look_at(head + [0.0, 0.0, framing.camera_distance * distance_scale], head)

    def dispose(self) -> None:
        """Close the controller's connection and release the GL resources (idempotent)."""
        if self._disposed:
            return
        self._disposed = True
        self.controller.dispose()
        self.model.dispose()

    def __enter__(self) -> AvatarView:
        return self

    def __exit__(self, *exc) -> None:
        self.dispose()

    # -- internals ----------------------------------------------------------------------

    def _apply(self, pose: FacePose) -> None:
        self.model.set_weights(self.avatar.target_weights(pose.weights, self.model.target_names))
        turn = quat_from_euler(*(float(a) for a in pose.head))
        for index, rest in zip(self._head_nodes, self._rest, strict=True):
            self.model.nodes[index].rotation = quat_multiply(rest, turn)

    def _report_frame_rate(self, dt: float) -> None:
        self._fps_window.append(dt)
        elapsed = sum(self._fps_window)
        if elapsed >= FRAME_RATE_WINDOW:
            self.on_frame_rate_info(len(self._fps_window) / elapsed)
            self._fps_window.clear()

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
