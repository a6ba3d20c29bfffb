"""Headless backend: a standalone EGL context (Mesa llvmpipe works), no window."""

from __future__ import annotations

import moderngl

from engine import errors
from engine.errors import EngineError
from engine.events import Event
from engine.render.gpu_wait import wait_for_gpu
from engine.render.target import RenderTarget


class HeadlessBackend:
    interactive = False

    def __init__(self, size: tuple[int, int] = (1280, 720)) -> None:
        self.size = (int(size[0]), int(size[1]))
        try:
            self.ctx = moderngl.create_context(
                standalone=True,
                backend="egl",  # type: ignore[arg-type]  # the stub says dict; it takes a name
                require=330,
            )
        except Exception as exc:
            raise EngineError(
                errors.RENDER_NOT_SUPPORTED,
                f"cannot create a headless EGL OpenGL 3.3 context ({exc}); install libegl1 and "
                "libgl1-mesa-dri",
            ) from exc

    def poll_events(self) -> list[Event]:
        return []

    def present(self, target: RenderTarget) -> None:
        wait_for_gpu(self.ctx)  # the frame is complete when this returns (GIL released)

    def close(self) -> None:
        self.ctx.release()
