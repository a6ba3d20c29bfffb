"""A window where there is no display fails at once with ``noDisplay``, never opens unseen."""

from __future__ import annotations

import time

import pytest

from engine import App, EngineError
from engine.backends.window import display_available


@pytest.fixture
def no_display(monkeypatch):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("sys.platform", "linux")


def test_window_without_a_display_is_a_coded_error(no_display):
    started = time.monotonic()
    with pytest.raises(EngineError) as info:
        App.window(title="nobody sees this")
    assert info.value.code == "noDisplay"
    assert "App.headless()" in info.value.message and "xvfb-run" in info.value.message
    assert time.monotonic() - started < 5  # fails fast, does not hang


def test_an_explicit_sdl_driver_is_the_users_choice(no_display, monkeypatch):
    assert not display_available()
    monkeypatch.setenv("SDL_VIDEODRIVER", "offscreen")
    assert display_available()
    monkeypatch.delenv("SDL_VIDEODRIVER")
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert display_available()


def test_the_code_is_an_avatarkit_code_too():
    from avatarkit.errors import ErrorCode

    assert ErrorCode("noDisplay") is ErrorCode.NO_DISPLAY
