"""Multi-avatar demo: four avatars side by side chat, lines overlapping.

    python -m scenes.multi [--windowed | --fullscreen | --headless] [--avatar ID|PATH]
                           [--seconds S] [--out DIR]

Each avatar has its own view, controller and Motion Server session; their voices share
one mixer, each panned by its position on screen. Listeners glance at whoever speaks.
``--avatar`` puts another avatar (a bundled id, or your .glb/.vrm file or avatar folder) in
Ava's seat: it speaks her lines, scaled and placed so its head sits where hers does.
Keys: SPACE = start the conversation over, F1 / H = HUD, ESC = quit.
Without a display it runs headless and writes ``multi.mp4`` + ``multi.png``.
"""

from __future__ import annotations

import math
import sys
from collections import deque
from dataclasses import dataclass

import numpy as np

from avatarkit import AvatarView
from avatarkit.controller import ConversationState
from avatarkit.package import Framing
from engine import Component
from engine.events import KEY_DOWN, Event
from engine.ui import Text
from scenes._runtime import Stage, load_lines, parse_options, play_scene
from scenes._widgets import ConnectionBanner, Hud

PROG = "python -m scenes.multi"
CAST = ("ava", "kai", "mei", "noor")  # left to right
SPACING = 0.52  # metres between avatars (they are about 0.4 m wide)
PAN_WIDTH = 0.8  # the outermost avatars sit this far towards one speaker (-1..1)
GLANCE_DEPTH = 0.9  # metres: listeners look at a point this far in front of the speaker's face
HEADLESS_SECONDS = 10.0
PNG_AT = 7.5  # Noor answers while Mei finishes: two voices at once
REPEAT_PAUSE_S = 3.0
NAME_HEIGHT = 0.56  # metres: name labels sit just above the heads
CAPTION_MIN_S = 0.5  # a caption shows at least this long (its stream starts a frame later)


@dataclass(frozen=True)
class Cue:
    at: float  # seconds from the start of the conversation
    speaker: str  # avatar id
    line: str  # line id in lines.json


# Lines start before the previous one ends: overlapping speech on separate streams.
SCRIPT = (
    Cue(0.3, "ava", "conv_ava_1"),
    Cue(3.2, "kai", "conv_ben_1"),
    Cue(5.9, "mei", "conv_cleo_1"),
    Cue(6.8, "noor", "kiosk_photo"),
    Cue(10.6, "ava", "conv_ava_2"),
    Cue(14.2, "kai", "conv_ben_2"),
)


class Conversation(Component):
    """Plays the script, pans each voice, and turns listeners towards the speaker."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.lines = load_lines()
        guest = stage.options.avatar or CAST[0]
        avatars = stage.load_avatars([guest, *CAST[1:]])
        self.views: dict[str, AvatarView] = {}  # by seat: the script's speaker ids
        self.captions: dict[str, Text] = {}
        self.spoken: deque[tuple[str, str]] = deque(maxlen=64)  # recent (avatar id, line id)
        scale = stage.ui_scale
        n = len(avatars)
        self._frame_row(stage, n)
        for i, (seat, avatar) in enumerate(zip(CAST, avatars, strict=True)):
            x = (i - (n - 1) / 2) * SPACING
            view = stage.add_view(avatar, seat, position=(x, 0.0, 0.0), seed=i + 1)
            if seat != guest:  # a guest in this seat, in any unit: fit it to the row
                fit_to_seat(view, avatars[1].framing)
            self.views[seat] = view
            screen_x, head_y = stage.project((x, NAME_HEIGHT, 0.0))
            view.controller.set_pan(PAN_WIDTH * screen_x)  # the voice comes from where the face is
            px = round(screen_x * stage.app.size[0] / 2)
            label_y = round((1 - head_y) * stage.app.size[1] / 2)
            stage.overlay.add(
                Text(
                    avatar.name,
                    anchor="top",
                    offset=(px, label_y),
                    size=round(26 * scale),
                    background=None,
                )
            )
            self.captions[seat] = stage.overlay.add(
                Text(
                    anchor="bottom",
                    offset=(px, round(20 * scale)),
                    size=round(19 * scale),
                    align="center",
                    max_width=0.92 / n,
                    visible=False,
                )
            )
        self.hud = Hud(stage.overlay, stage.views, stage.server, scale=scale, app=stage.app)
        self.banner = ConnectionBanner(stage.overlay, stage.views, scale=scale)
        entity = stage.app.scene.create_entity("conversation", parent=stage.world)
        for component in (self.hud, self.banner, self):
            entity.add_component(component)
        self.restart()

    @staticmethod
    def _frame_row(stage: Stage, n: int) -> None:
        """Camera straight on, the row filling the frame's width, heads in the upper half."""
        camera = stage.app.scene.camera
        camera.fov_y = 24
        half_width = n / 2 * SPACING + 0.02
        half_fov_x = math.atan(math.tan(math.radians(camera.fov_y) / 2) * stage.app.aspect)
        distance = half_width / math.tan(half_fov_x)
        camera.look_at((0.0, 0.3, distance), (0.0, 0.3, 0.0))
        camera.near, camera.far = distance / 20, distance * 4

    def restart(self) -> None:
        self._t = 0.0
        self._caption_since: dict[str, float] = {}
        self._cue = 0
        for view in self.views.values():
            view.controller.interrupt()

    def speaking(self) -> list[str]:
        return [
            aid
            for aid, v in self.views.items()
            if v.controller.conversation_state == ConversationState.PLAYING
        ]

    def update(self, dt: float) -> None:
        self._t += dt
        while self._cue < len(SCRIPT) and SCRIPT[self._cue].at <= self._t:
            cue = SCRIPT[self._cue]
            line = self.lines[cue.line]
            self._cue += 1
            if self.stage.try_speak(self.views[cue.speaker], line, interrupt=False) is None:
                continue
            self.captions[cue.speaker].text = line.text
            self.captions[cue.speaker].visible = True
            self._caption_since[cue.speaker] = self._t
            self.spoken.append((cue.speaker, cue.line))
        if (
            self._cue == len(SCRIPT)
            and not self.speaking()
            and self._t > SCRIPT[-1].at + REPEAT_PAUSE_S
        ):
            self.restart()  # loop the conversation (windowed runs until closed)
        self._direct_gazes()

    def _direct_gazes(self) -> None:
        speakers = self.speaking()
        for aid, view in self.views.items():
            state = view.controller.conversation_state
            if (
                state == ConversationState.IDLE
                and self._t - self._caption_since.get(aid, 0.0) > CAPTION_MIN_S
            ):
                self.captions[aid].visible = False
            others = [s for s in speakers if s != aid]
            if not others:
                view.look_at(None)  # idle gaze (or the speaker's own)
                continue
            # In front of the speaker's face, not at it: side by side, a glance, not a stare.
            speaker = self.views[others[-1]]
            face = speaker.entity.world_matrix() @ np.append(
                speaker.avatar.framing.head_center, 1.0
            )
            view.look_at_point(face[:3] + (0.0, 0.0, GLANCE_DEPTH))

    def on_event(self, event: Event) -> bool:
        if event.type == KEY_DOWN and event.key == "space":
            self.restart()
            return True
        if event.type == KEY_DOWN and event.key == "escape":
            self.stage.app.stop()
            return True
        return False


def fit_to_seat(view: AvatarView, reference: Framing) -> None:
    """Scale and move a guest so its head is the size and at the place of a bundled
    avatar's (``reference``): its framing's camera distance measures its head, in any unit."""
    framing = view.avatar.framing
    scale = reference.camera_distance / framing.camera_distance
    transform = view.entity.transform
    transform.scale = np.full(3, scale, np.float32)
    head_offset = np.subtract(reference.head_center, np.multiply(framing.head_center, scale))
    transform.translation = transform.translation + head_offset.astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv, PROG, __doc__.splitlines()[0], HEADLESS_SECONDS, avatar=CAST[0])

    return play_scene(
        PROG, options, "AvatarKit multi-avatar demo", Conversation, name="multi", png_at=PNG_AT
    )


if __name__ == "__main__":
    sys.exit(main())
