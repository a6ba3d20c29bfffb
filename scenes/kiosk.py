"""Kiosk: a guide avatar greets you, idles, and answers on a key press or click.

    python -m scenes.kiosk [--windowed | --fullscreen | --headless]
                           [--avatar ID|PATH] [--seconds S] [--out DIR]

With a display it covers the whole screen (``--windowed``: a window of ``--size``).

Keys: SPACE / ENTER / click = next topic, 1-8 = a topic, F1 / H = HUD, F5 = restart the
Motion Server (operator drill: the kiosk reconnects and keeps idling), ESC = quit.
Without a display it runs headless for a few seconds and writes ``kiosk.mp4`` + ``kiosk.png``.
"""

from __future__ import annotations

import logging
import sys
from collections import deque

from avatarkit import AvatarKitError
from engine import Component
from engine.events import KEY_DOWN, MOUSE_DOWN, Event
from engine.ui import Text
from scenes._runtime import Stage, load_lines, parse_options, play_scene
from scenes._widgets import Captions, ConnectionBanner, Hud

log = logging.getLogger("scenes.kiosk")

PROG = "python -m scenes.kiosk"
AVATAR = "ava"
HEADLESS_SECONDS = 12.0  # the greeting, a pause, then a visitor's question (SPACE)
VISITOR_ASKS_AT = 6.6  # headless: when the scripted visitor presses SPACE
PNG_AT = 2.2  # seconds into the greeting: mid-sentence, mouth moving, caption on
HINT = (
    "SPACE or click: ask me something\n1-8: pick a topic   F1: HUD\nF5: restart server   ESC: quit"
)
ADVANCE_KEYS = ("space", "return", "enter")
SPOKEN_MEMORY = 64  # recent line ids kept (bounded: kiosks run for days)


class Kiosk(Component):
    """The kiosk's behaviour: greet once, then speak the next (or chosen) topic on input."""

    def __init__(self, stage: Stage, avatar_id: str = AVATAR) -> None:
        self.stage = stage
        lines = load_lines()
        self.greeting = lines["greeting"]
        self.topics = [line for line in lines.values() if line.group == "kiosk"]
        (avatar,) = stage.load_avatars([avatar_id])
        self.view = stage.add_view(avatar, "guide")
        stage.frame_portrait(self.view)
        overlay = stage.overlay
        self.captions = Captions(overlay, self.view, scale=stage.ui_scale)
        self.hud = Hud(overlay, stage.views, stage.server, scale=stage.ui_scale, app=stage.app)
        self.banner = ConnectionBanner(overlay, stage.views, scale=stage.ui_scale)
        overlay.add(
            Text(
                HINT,
                anchor="top-right",
                offset=(12, 8),
                size=round(16 * stage.ui_scale),
                background=None,
                color=(255, 255, 255, 190),
                align="right",
            )
        )
        self.spoken: deque[str] = deque(maxlen=SPOKEN_MEMORY)  # recent line ids, in order
        self._next = 0
        entity = stage.app.scene.create_entity("kiosk", parent=stage.world)
        for component in (self.captions, self.hud, self.banner, self):
            entity.add_component(component)
        self.say(self.greeting)

    def say(self, line) -> bool:
        """Speak ``line`` with captions; False (and a note on screen) when it cannot."""
        try:
            cid = self.stage.speak(self.view, line)
        except AvatarKitError as exc:
            log.warning("cannot speak %s: [%s] %s", line.id, exc.code, exc.message)
            self.banner.notify(f"The guide cannot speak right now ({exc.code})")
            return False
        self.captions.show(line, cid)
        self.spoken.append(line.id)
        return True

    def next_topic(self) -> None:
        self.say(self.topics[self._next % len(self.topics)])
        self._next += 1

    def restart_server(self) -> None:
        """Operator drill: restart the Motion Server; the kiosk reconnects by itself."""
        try:
            self.stage.restart_server()
        except (OSError, TimeoutError) as exc:  # e.g. the port was taken meanwhile
            log.warning("Motion Server restart failed: %s", exc)
            self.banner.notify(f"Motion Server restart failed: {exc}")
        self.hud.server = self.stage.server

    def on_event(self, event: Event) -> bool:
        if event.type == MOUSE_DOWN:
            self.next_topic()
            return True
        if event.type != KEY_DOWN:
            return False
        if event.key in ADVANCE_KEYS:
            self.next_topic()
        elif event.key and event.key.isdigit() and 1 <= int(event.key) <= len(self.topics):
            self.say(self.topics[int(event.key) - 1])
        elif event.key == "f5":
            self.restart_server()
        elif event.key == "escape":
            self.stage.app.stop()
        else:
            return False
        return True


class ScriptedVisitor(Component):
    """Headless demo: a visitor presses SPACE once, through the same input path as a key."""

    def __init__(self, app, at: float = VISITOR_ASKS_AT) -> None:
        self.app = app
        self.at = at

    def attach(self) -> None:
        self.app.schedule.schedule_once(self._ask, self.at)  # ``at`` s from now, on the frame clock

    def _ask(self, _elapsed: float) -> None:
        self.app.post_event(Event(KEY_DOWN, key="space"))


def main(argv: list[str] | None = None) -> int:
    options = parse_options(
        argv, PROG, __doc__.splitlines()[0], HEADLESS_SECONDS, avatar=AVATAR, fullscreen=True
    )

    def build(stage: Stage) -> None:
        kiosk = Kiosk(stage, options.avatar)
        if options.headless:
            kiosk.entity.add_component(ScriptedVisitor(stage.app))

    return play_scene(PROG, options, "AvatarKit kiosk", build, name="kiosk", png_at=PNG_AT)


if __name__ == "__main__":
    sys.exit(main())
