"""The interface every backend implements. The App only talks to this."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import moderngl

    from engine.events import Event
    from engine.render.target import RenderTarget


class Backend(Protocol):
    ctx: moderngl.Context
    size: tuple[int, int]
    interactive: bool  # True when a person is watching (real-time clock by default)

    def poll_events(self) -> list[Event]:
        """Input since the last call (empty for headless)."""

    def present(self, target: RenderTarget) -> None:
        """Show the resolved frame and return once it is complete on the GPU."""

    def close(self) -> None: ...
