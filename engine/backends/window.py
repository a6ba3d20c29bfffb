"""Window backend: a pygame OpenGL window with a moderngl context on it."""

from __future__ import annotations

import os
import sys

import moderngl

from engine import errors, events
from engine.errors import EngineError
from engine.events import Event
from engine.render.target import RenderTarget


class WindowBackend:
    """``fullscreen``: cover the desktop at its own size (``size`` is ignored): a real
    full-screen window where the platform gives one, else a borderless window over the
    whole desktop. ``mode`` says which one opened: "window", "fullscreen" or "borderless"."""

    interactive = True

    def __init__(
        self,
        size: tuple[int, int] = (1280, 720),
        title: str = "engine",
        vsync: bool = True,
        fullscreen: bool = False,
    ) -> None:
        from engine.quiet_pygame import import_pygame

        pygame = import_pygame()
        self._pg = pygame
        check_display()
        try:
            pygame.display.init()
        except pygame.error as exc:
            raise EngineError(
                errors.NO_DISPLAY, f"cannot open a display: {exc}; {HEADLESS_HINT}"
            ) from None
        gl = pygame.GL_CONTEXT_PROFILE_CORE
        pygame.display.gl_set_attribute(pygame.GL_CONTEXT_MAJOR_VERSION, 3)
        pygame.display.gl_set_attribute(pygame.GL_CONTEXT_MINOR_VERSION, 3)
        pygame.display.gl_set_attribute(pygame.GL_CONTEXT_PROFILE_MASK, gl)
        gl_flags = pygame.OPENGL | pygame.DOUBLEBUF
        if fullscreen:
            size = _desktop_size(pygame) or size
            modes = [
                ("fullscreen", gl_flags | pygame.FULLSCREEN),
                ("borderless", gl_flags | pygame.NOFRAME),
            ]
        else:
            modes = [("window", gl_flags)]
        self.mode = self._open(pygame, (int(size[0]), int(size[1])), modes, vsync)
        width, height = pygame.display.get_surface().get_size()
        self.size = (int(width), int(height))
        pygame.display.set_caption(title)
        self.ctx = moderngl.create_context(require=330)
        self.screen = self.ctx.detect_framebuffer()

    @staticmethod
    def _open(pygame, size: tuple[int, int], modes: list[tuple[str, int]], vsync: bool) -> str:
        """The first mode that opens; vsync is a request some drivers refuse, so each
        mode is tried with it and then without."""
        error = None
        for name, flags in modes:
            if name == "borderless":
                os.environ.setdefault(
                    "SDL_VIDEO_WINDOW_POS", "0,0"
                )  # cover the desktop from its corner
            for sync in (int(vsync), 0) if vsync else (0,):
                try:
                    pygame.display.set_mode(size, flags, vsync=sync)
                    return name
                except pygame.error as exc:
                    error = exc
        pygame.display.quit()
        raise EngineError(errors.RENDER_NOT_SUPPORTED, f"cannot open an OpenGL window: {error}")

    def poll_events(self) -> list[Event]:
        pg = self._pg
        out: list[Event] = []
        for e in pg.event.get():
            if e.type == pg.QUIT:
                out.append(Event(events.QUIT))
            elif e.type in (pg.KEYDOWN, pg.KEYUP):
                kind = events.KEY_DOWN if e.type == pg.KEYDOWN else events.KEY_UP
                out.append(Event(kind, key=pg.key.name(e.key), mods=_mods(pg, e.mod)))
            elif e.type in (pg.MOUSEBUTTONDOWN, pg.MOUSEBUTTONUP):
                kind = events.MOUSE_DOWN if e.type == pg.MOUSEBUTTONDOWN else events.MOUSE_UP
                out.append(Event(kind, button=e.button, pos=tuple(e.pos)))
            elif e.type == pg.MOUSEMOTION:
                out.append(Event(events.MOUSE_MOVE, pos=tuple(e.pos), delta=tuple(e.rel)))
            elif e.type == pg.MOUSEWHEEL:
                out.append(Event(events.MOUSE_WHEEL, delta=(e.x, e.y)))
        return out

    def present(self, target: RenderTarget) -> None:
        self.ctx.copy_framebuffer(self.screen, target.resolved)
        self._pg.display.flip()

    def close(self) -> None:
        self.ctx.release()
        self._pg.display.quit()


HEADLESS_HINT = (
    "run headless instead (App.headless(), or --headless), or under a virtual display (xvfb-run)"
)


def display_available() -> bool:
    """Whether a window can be shown. An explicit ``SDL_VIDEODRIVER`` is the user's choice
    (``dummy``/``offscreen`` in tests); otherwise Linux needs an X11 or Wayland display."""
    if os.environ.get("SDL_VIDEODRIVER") or not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def check_display() -> None:
    """Fail fast with ``noDisplay``: without a display SDL falls back to an off-screen
    driver, and the app would run forever in a window nobody can see or close."""
    if not display_available():
        raise EngineError(
            errors.NO_DISPLAY,
            f"no display to open a window on (DISPLAY is not set); {HEADLESS_HINT}",
        )


def _desktop_size(pg) -> tuple[int, int] | None:
    sizes = pg.display.get_desktop_sizes()
    return tuple(sizes[0]) if sizes and min(sizes[0]) > 0 else None


def _mods(pg, mod: int) -> frozenset[str]:
    names = {"shift": pg.KMOD_SHIFT, "ctrl": pg.KMOD_CTRL, "alt": pg.KMOD_ALT, "meta": pg.KMOD_META}
    return frozenset(name for name, bit in names.items() if mod & bit)
