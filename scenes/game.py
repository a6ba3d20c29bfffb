"""Quiz game: a host avatar asks three questions; answer with keys 1-3 or a click.

    python -m scenes.game [--windowed | --fullscreen | --headless]
                          [--avatar ID|PATH] [--seconds S] [--out DIR]

The host's eyes follow your mouse, smiles at a right answer and frowns at a wrong one;
the score is on screen. Ten seconds per question. SPACE skips ahead / plays again, F1 / H = HUD,
ESC = quit. Without a display a scripted player runs it headless and writes
``game.mp4`` + ``game.png``.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from enum import StrEnum

from avatarkit.controller import ConversationState
from engine import Component
from engine.events import KEY_DOWN, MOUSE_DOWN, MOUSE_MOVE, Event
from engine.ui import Text
from scenes._runtime import Stage, load_lines, parse_options, play_scene
from scenes._widgets import ConnectionBanner, Hud

PROG = "python -m scenes.game"
HOST = "kai"
ANSWER_TIME_S = 10.0
REACTION_S = 2.6  # the host keeps the smile/frown this long after the verdict
LOOK_RANGE = (0.7, 0.45)  # radians of gaze yaw, pitch at the screen edges
HEADLESS_SECONDS = 14.0
PNG_AT = 7.8  # just after the scripted player's right answer: smile, score 1
IDLE = (235, 240, 250, 255)
HOVER = (255, 255, 255, 255)
RIGHT = (120, 230, 140, 255)
WRONG = (255, 120, 110, 255)
# The host's reactions: ARKit weights held over speech and idle by the view.
EXPRESSIONS: dict[str, dict[str, float]] = {
    "smile": {"mouthSmileLeft": 0.8, "mouthSmileRight": 0.8, "cheekSquintLeft": 0.4,
              "cheekSquintRight": 0.4, "eyeSquintLeft": 0.25, "eyeSquintRight": 0.25},
    "frown": {"mouthFrownLeft": 0.75, "mouthFrownRight": 0.75, "browDownLeft": 0.6,
              "browDownRight": 0.6, "browInnerUp": 0.35, "mouthPressLeft": 0.3,
              "mouthPressRight": 0.3},
    "surprise": {"browInnerUp": 0.7, "browOuterUpLeft": 0.6, "browOuterUpRight": 0.6,
                 "eyeWideLeft": 0.5, "eyeWideRight": 0.5},
}  # fmt: skip
PANEL = (10, 14, 22, 180)
HOVER_PANEL = (40, 70, 110, 210)


@dataclass(frozen=True)
class Question:
    line: str  # the host's line asking it
    prompt: str
    options: tuple[str, str, str]
    answer: int  # index into options


QUESTIONS = (
    Question(
        "quiz_q1", "Which planet is known as the red planet?", ("Venus", "Mars", "Jupiter"), 1
    ),
    Question("quiz_q2", "How many legs does a spider have?", ("Eight", "Six", "Ten"), 0),
    Question(
        "quiz_q3", "What is the largest ocean on Earth?", ("Atlantic", "Indian", "Pacific"), 2
    ),
)


class Phase(StrEnum):
    INTRO = "intro"  # the host welcomes the player
    ASKING = "asking"  # question on screen, clock running
    VERDICT = "verdict"  # right / wrong / time's up, host reacts
    FINAL = "final"  # score, press SPACE to play again


class Quiz(Component):
    """The game: phases, input, score, and the host's reactions."""

    def __init__(self, stage: Stage, host: str = HOST) -> None:
        self.stage = stage
        self.lines = load_lines()
        (avatar,) = stage.load_avatars([host])
        self.view = stage.add_view(avatar, "host", position=(-0.2, 0.0, 0.0))
        self.expression: str | None = None  # the host's current reaction (EXPRESSIONS)
        camera = stage.app.scene.camera
        self.view.frame(camera, distance_scale=2.1)
        camera.look_at(
            camera.position + [0.2, -0.06, 0], camera.target + [0.2, -0.06, 0]
        )  # host left of centre
        s = stage.ui_scale
        ui = stage.overlay
        self.title = ui.add(
            Text(
                "AvatarKit Quiz",
                anchor="top-left",
                offset=(round(24 * s), round(20 * s)),
                size=round(34 * s),
                background=None,
            )
        )
        self.score_text = ui.add(
            Text("", anchor="top-right", offset=(round(24 * s), round(20 * s)), size=round(30 * s))
        )
        self.prompt = ui.add(
            Text(
                "",
                anchor="top-right",
                offset=(round(40 * s), round(120 * s)),
                size=round(30 * s),
                max_width=0.42,
                min_width=round(520 * s),
            )
        )
        self.options = [
            ui.add(
                Text(
                    "",
                    anchor="top-right",
                    offset=(round(40 * s), round((250 + 78 * i) * s)),
                    size=round(30 * s),
                    min_width=round(520 * s),
                    padding=round(16 * s),
                )
            )
            for i in range(3)
        ]
        self.timer = ui.add(
            Text(
                "",
                anchor="top-right",
                offset=(round(40 * s), round(500 * s)),
                size=round(24 * s),
                background=None,
            )
        )
        self.verdict = ui.add(
            Text(
                "",
                anchor="top-right",
                offset=(round(40 * s), round(500 * s)),
                size=round(34 * s),
                align="center",
                min_width=round(520 * s),
                max_width=0.42,
            )
        )
        self.hud = Hud(ui, stage.views, stage.server, scale=s, app=stage.app)
        self.banner = ConnectionBanner(ui, stage.views, scale=s)
        entity = stage.app.scene.create_entity("quiz", parent=stage.world)
        for component in (self.hud, self.banner, self):
            entity.add_component(component)
        self.reset()

    # -- game flow -------------------------------------------------------------------

    def reset(self) -> None:
        self.score = 0
        self.question = -1
        self.answers: list[int | None] = []  # the player's choice per question (None: time ran out)
        self._hover: int | None = None
        self.react(None)
        self._enter(Phase.INTRO, "quiz_intro")

    def _enter(self, phase: Phase, line: str | None = None) -> None:
        self.phase = phase
        self._phase_time = 0.0
        spoken = line is not None and self.stage.try_speak(self.view, self.lines[line]) is not None
        self._line_started = not spoken  # no line (or refused): nothing to wait for
        self._refresh()

    def react(self, expression: str | None) -> None:
        """Show one of ``EXPRESSIONS`` on the host (faded in over speech), or None."""
        if expression != self.expression:
            self.expression = expression
            self.view.set_expression(EXPRESSIONS[expression] if expression else None)

    @property
    def phase_time(self) -> float:
        """Seconds since the current phase began."""
        return self._phase_time

    def _line_finished(self) -> bool:
        """The host's current line has started and ended (or there was none)."""
        state = self.view.controller.conversation_state
        if state != ConversationState.IDLE:
            self._line_started = True
        return self._line_started and state == ConversationState.IDLE

    def answer(self, choice: int | None) -> None:
        """The player picks option ``choice`` (0-2), or None when time runs out."""
        if self.phase != Phase.ASKING:
            return
        question = QUESTIONS[self.question]
        self.answers.append(choice)
        if choice is None:
            self.react("surprise")
            self.verdict.text, self.verdict.color, line = "Time's up!", WRONG, "quiz_timeout"
        elif choice == question.answer:
            self.score += 1
            self.react("smile")
            self.verdict.text, self.verdict.color, line = "Correct!", RIGHT, "quiz_correct"
        else:
            self.react("frown")
            self.verdict.text, self.verdict.color, line = (
                f"Not quite: it's {question.options[question.answer]}",
                WRONG,
                "quiz_wrong",
            )
        self._enter(Phase.VERDICT, line)

    def update(self, dt: float) -> None:
        self._phase_time += dt
        if self.phase == Phase.INTRO and self._line_finished():
            self._next_question()
        elif self.phase == Phase.ASKING:
            if self._phase_time >= ANSWER_TIME_S:
                self.answer(None)
            else:
                self.timer.text = f"{ANSWER_TIME_S - self._phase_time:4.1f} s"
        elif self.phase == Phase.VERDICT:
            if self._phase_time >= REACTION_S:
                self.react(None)
            if self._line_finished() and self._phase_time >= REACTION_S:
                self._next_question()
        self._refresh()

    def _next_question(self) -> None:
        self.question += 1
        if self.question >= len(QUESTIONS):
            self.react("smile" if self.score >= 2 else None)
            self._enter(Phase.FINAL, "quiz_final")
            return
        self._enter(Phase.ASKING, QUESTIONS[self.question].line)

    # -- input -----------------------------------------------------------------------

    def on_event(self, event: Event) -> bool:
        if event.type == MOUSE_MOVE and event.pos is not None:
            self._look_at(event.pos)
            self._hover = self._option_at(event.pos)
            return False  # others may track the mouse too
        if event.type == MOUSE_DOWN and event.pos is not None:
            choice = self._option_at(event.pos)
            if choice is not None:
                self.answer(choice)
                return True
            return False
        if event.type != KEY_DOWN:
            return False
        if event.key in ("1", "2", "3"):
            self.answer(int(event.key) - 1)
        elif event.key == "space" and self.phase == Phase.FINAL:
            self.reset()
        elif event.key == "space" and self.phase in (Phase.INTRO, Phase.VERDICT):
            self.react(None)
            self._next_question()  # skip ahead (the next line interrupts this one)
        elif event.key == "escape":
            self.stage.app.stop()
        else:
            return False
        return True

    def _option_at(self, pos: tuple[int, int]) -> int | None:
        if self.phase != Phase.ASKING:
            return None
        return next((i for i, option in enumerate(self.options) if option.contains(pos)), None)

    def _look_at(self, pos: tuple[int, int]) -> None:
        """Gaze follows the cursor: its offset from the host's face, scaled to an angle."""
        w, h = self.stage.app.size
        face_x, face_y = self.stage.project(
            self.view.entity.transform.translation + self.view.avatar.framing.head_center
        )
        x, y = 2 * pos[0] / w - 1, 1 - 2 * pos[1] / h
        yaw = max(-1.0, min(1.0, (x - face_x) / 2)) * LOOK_RANGE[0]
        pitch = max(-1.0, min(1.0, (y - face_y) / 2)) * LOOK_RANGE[1]
        self.view.look_at(yaw, pitch)

    # -- screen ----------------------------------------------------------------------

    def _refresh(self) -> None:
        self.score_text.text = f"Score {self.score} / {len(QUESTIONS)}"
        asking = self.phase == Phase.ASKING
        show_question = self.phase in (Phase.ASKING, Phase.VERDICT) and self.question >= 0
        self.prompt.visible = show_question
        self.timer.visible = asking
        self.verdict.visible = self.phase in (Phase.VERDICT, Phase.FINAL)
        if self.phase == Phase.FINAL:
            self.verdict.text, self.verdict.color = (
                f"You scored {self.score} of {len(QUESTIONS)}!  SPACE: play again",
                HOVER,
            )
        if show_question:
            question = QUESTIONS[self.question]
            self.prompt.text = f"Question {self.question + 1}: {question.prompt}"
        for i, option in enumerate(self.options):
            option.visible = show_question
            if not show_question:
                continue
            question = QUESTIONS[self.question]
            option.text = f"{i + 1}   {question.options[i]}"
            option.color, option.background = IDLE, PANEL
            if asking and i == self._hover:
                option.color, option.background = HOVER, HOVER_PANEL
            if self.phase == Phase.VERDICT:
                picked = self.answers[-1]
                if i == question.answer:
                    option.color = RIGHT
                elif i == picked:
                    option.color = WRONG


class ScriptedPlayer(Component):
    """Headless demo: moves the mouse around and answers (right, then wrong) by events."""

    def __init__(self, quiz: Quiz) -> None:
        self.quiz = quiz
        self._t = 0.0
        self._done: set[int] = set()

    def update(self, dt: float) -> None:
        self._t += dt
        quiz, app = self.quiz, self.quiz.stage.app
        w, h = app.size
        app.post_event(
            Event(
                MOUSE_MOVE,
                pos=(
                    int(w * (0.55 + 0.35 * math.sin(self._t * 0.9))),
                    int(h * (0.45 + 0.2 * math.sin(self._t * 1.7))),
                ),
            )
        )
        if quiz.phase == Phase.ASKING and quiz.question not in self._done and quiz.phase_time > 2.0:
            self._done.add(quiz.question)
            question = QUESTIONS[quiz.question]
            choice = question.answer if quiz.question % 2 == 0 else (question.answer + 1) % 3
            app.post_event(Event(KEY_DOWN, key=str(choice + 1)))


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv, PROG, __doc__.splitlines()[0], HEADLESS_SECONDS, avatar=HOST)

    def build(stage: Stage) -> None:
        quiz = Quiz(stage, options.avatar)
        if options.headless:
            quiz.entity.add_component(ScriptedPlayer(quiz))

    return play_scene(PROG, options, "AvatarKit quiz", build, name="game", png_at=PNG_AT)


if __name__ == "__main__":
    sys.exit(main())
