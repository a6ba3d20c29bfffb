"""2D overlay drawn over the 3D scene: text, panels and progress bars (HUD, captions,
loading screens, messages). Knows nothing about avatars.

Widgets are plain data; an ``Overlay`` component lays them out with ``pygame.font`` into
one RGBA texture (re-drawn only when a widget changed) and draws it as a screen-space
quad on the render thread. Add the overlay's entity last so it draws over everything::

    overlay = app.scene.create_entity("ui").add_component(Overlay())
    fps = overlay.add(Text("", anchor="top-left"))
    fps.text = "60 fps"  # picked up at the next frame
"""

from __future__ import annotations

from engine.ui.overlay import Overlay
from engine.ui.widgets import ProgressBar, Text, Widget

__all__ = ["Overlay", "ProgressBar", "Text", "Widget"]
