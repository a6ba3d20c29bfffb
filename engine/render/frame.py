"""What a component's ``render(frame)`` / ``post_render(frame)`` receives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import moderngl

    from engine.lighting import Lighting
    from engine.render.renderer import Renderer
    from engine.render.target import RenderTarget


@dataclass
class Frame:
    ctx: moderngl.Context
    renderer: Renderer
    size: tuple[int, int]
    index: int  # 0 for the first frame
    time: float  # clock time of this frame, seconds
    view: np.ndarray  # 4x4 world -> camera
    projection: np.ndarray  # 4x4 camera -> clip
    camera_position: np.ndarray
    lighting: Lighting
    target: RenderTarget | None = None  # where this frame is drawn (read it after present)

    @property
    def view_projection(self) -> np.ndarray:
        return self.projection @ self.view
