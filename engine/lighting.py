"""Three-point lighting (key / fill / rim) and a soft background gradient.

Colours are linear RGB; the renderer shades in linear space and encodes sRGB on output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class DirectionalLight:
    """Light travelling *along* ``direction`` (from the light towards the scene)."""

    direction: tuple[float, float, float]
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    intensity: float = 1.0

    def shader_direction(self) -> np.ndarray:
        """Unit vector from the surface towards the light."""
        d = -np.asarray(self.direction, dtype=np.float32)
        return d / max(float(np.linalg.norm(d)), 1e-8)


def _key() -> DirectionalLight:
    return DirectionalLight((0.65, -0.5, -0.55), (1.0, 0.96, 0.9), 1.5)


def _fill() -> DirectionalLight:
    return DirectionalLight((-0.75, -0.1, -0.6), (0.8, 0.88, 1.0), 0.35)


def _rim() -> DirectionalLight:
    return DirectionalLight((0.2, -0.35, 0.9), (1.0, 1.0, 1.0), 1.6)


@dataclass
class Lighting:
    """What the built-in lit shader uses. Defaults: a flattering portrait setup."""

    key: DirectionalLight = field(default_factory=_key)
    fill: DirectionalLight = field(default_factory=_fill)
    rim: DirectionalLight = field(default_factory=_rim)
    ambient: tuple[float, float, float] = (0.05, 0.05, 0.06)
    # Background: vertical gradient (top, bottom) in linear RGB, or None for a flat
    # ``clear_color`` (its alpha makes transparent backgrounds possible).
    background: tuple[tuple[float, float, float], tuple[float, float, float]] | None = (
        (0.30, 0.36, 0.45),
        (0.06, 0.07, 0.09),
    )
    clear_color: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)
    exposure: float = 1.0

    def lights(self) -> list[DirectionalLight]:
        return [self.key, self.fill, self.rim]
