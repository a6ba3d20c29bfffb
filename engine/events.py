"""Input events, independent of pygame so tests can inject them synthetically."""

from __future__ import annotations

from dataclasses import dataclass, field

QUIT = "quit"
KEY_DOWN = "key_down"
KEY_UP = "key_up"
MOUSE_DOWN = "mouse_down"
MOUSE_UP = "mouse_up"
MOUSE_MOVE = "mouse_move"
MOUSE_WHEEL = "mouse_wheel"
RESIZE = "resize"


@dataclass(frozen=True)
class Event:
    """One input event. ``key`` is a lower-case key name ("a", "space", "escape")."""

    type: str
    key: str | None = None
    button: int | None = None
    pos: tuple[int, int] | None = None
    delta: tuple[int, int] | None = None
    size: tuple[int, int] | None = None
    mods: frozenset[str] = field(default_factory=frozenset)
