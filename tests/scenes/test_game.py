"""Quiz game: answers by key and by click change the score, the host smiles or frowns,
the gaze follows the mouse, time runs out, and the command writes an MP4 and a PNG."""

from __future__ import annotations

import pytest

from avatarkit import ConversationState
from avatarkit.arkit import ARKIT_INDEX
from engine.events import KEY_DOWN, MOUSE_DOWN, MOUSE_MOVE, Event
from scenes import game

pytestmark = pytest.mark.timeout(120)
SMILE = ARKIT_INDEX["mouthSmileLeft"]


def _start_question(stage, quiz) -> None:
    stage.app.post_event(Event(KEY_DOWN, key="space"))  # skip the intro
    stage.step()
    assert quiz.phase == game.Phase.ASKING


def test_right_answer_by_key_scores_and_smiles(make_stage):
    stage = make_stage()
    quiz = game.Quiz(stage)
    assert quiz.phase == game.Phase.INTRO
    _start_question(stage, quiz)
    assert quiz.prompt.visible and "red planet" in quiz.prompt.text
    right = game.QUESTIONS[0].answer
    stage.app.post_event(Event(KEY_DOWN, key=str(right + 1)))
    for _ in range(12):
        stage.step()
    assert quiz.phase == game.Phase.VERDICT and quiz.score == 1
    assert quiz.score_text.text.startswith("Score 1")
    assert quiz.expression == "smile"
    shown = quiz.view.expression  # faded in by the view over speech
    assert shown["mouthSmileLeft"] == pytest.approx(0.8, abs=0.01) and "mouthFrownLeft" not in shown
    assert quiz.view.pose.weights[SMILE] >= 0.79  # in the drawn face, on top of the speech
    assert quiz.options[right].color == game.RIGHT
    assert quiz.view.controller.conversation_state != ConversationState.IDLE  # "Correct!" is spoken


def test_wrong_answer_by_click_frowns_and_keeps_score(make_stage):
    stage = make_stage()
    quiz = game.Quiz(stage)
    _start_question(stage, quiz)
    stage.step()  # the options are laid out (their rects known)
    wrong = (game.QUESTIONS[0].answer + 1) % 3
    x, y, w, h = quiz.options[wrong].rect
    stage.app.post_event(Event(MOUSE_MOVE, pos=(x + w // 2, y + h // 2)))
    stage.step()
    assert quiz.options[wrong].background == game.HOVER_PANEL  # hover highlight
    stage.app.post_event(Event(MOUSE_DOWN, button=1, pos=(x + w // 2, y + h // 2)))
    for _ in range(12):
        stage.step()
    assert quiz.answers == [wrong] and quiz.score == 0
    assert quiz.expression == "frown" and quiz.view.expression["mouthFrownLeft"] == pytest.approx(
        0.75, abs=0.01
    )
    assert quiz.options[wrong].color == game.WRONG
    assert "Not quite" in quiz.verdict.text


def test_gaze_follows_the_mouse(make_stage):
    stage = make_stage()
    quiz = game.Quiz(stage)
    w, h = stage.app.size
    stage.app.post_event(Event(MOUSE_MOVE, pos=(w - 1, 0)))  # top right
    stage.step()
    right_yaw, up_pitch = quiz.view.look
    stage.app.post_event(Event(MOUSE_MOVE, pos=(0, h - 1)))  # bottom left
    stage.step()
    left_yaw, down_pitch = quiz.view.look
    assert right_yaw > 0.1 > -0.1 > left_yaw
    assert up_pitch > down_pitch
    for _ in range(20):
        stage.step()
    assert quiz.view.pose.head[1] < -0.05  # the head node turned towards screen left
    assert quiz.view.pose.gaze[0] > 0.1  # and the eyes (ARKit yaw: the avatar's right)
    assert list(quiz.view.entity.transform.rotation) == [0, 0, 0, 1]  # not the whole bust


def test_time_runs_out_and_the_game_ends(make_stage):
    stage = make_stage(fps=10)  # a coarse virtual clock: ten seconds pass quickly
    quiz = game.Quiz(stage)
    _start_question(stage, quiz)
    for _ in range(int(game.ANSWER_TIME_S * 10) + 2):
        stage.step()
    assert quiz.answers == [None] and quiz.verdict.text == "Time's up!"
    for key in ("space", "2", "space", "3"):  # skip, answer q2 (wrong), skip, answer q3 (right)
        stage.app.post_event(Event(KEY_DOWN, key=key))
        stage.step()
    stage.app.post_event(Event(KEY_DOWN, key="space"))
    stage.step()
    assert quiz.phase == game.Phase.FINAL and quiz.score == 1
    assert "You scored 1 of 3" in quiz.verdict.text


def test_command_writes_video_and_image(tmp_path, capsys):
    code = game.main(["--headless", "--seconds", "1", "--size", "256x144", "--out", str(tmp_path)])
    assert code == 0
    assert (tmp_path / "game.mp4").stat().st_size > 1000 and (tmp_path / "game.png").exists()
    assert "game.mp4" in capsys.readouterr().out


def test_game_goes_on_without_a_connection(make_stage):
    stage = make_stage()
    quiz = game.Quiz(stage)
    quiz.view.controller.close()  # the host cannot speak at all now
    quiz.reset()  # the intro line is refused: no waiting for it
    stage.step()
    assert quiz.phase == game.Phase.ASKING
    stage.app.post_event(Event(KEY_DOWN, key=str(game.QUESTIONS[0].answer + 1)))
    stage.step()
    assert quiz.score == 1


def test_a_folder_holding_the_users_file_hosts_the_quiz(make_stage, step_until, tmp_path):
    """``--avatar DIR`` (a folder with one .glb): its derived id is served by the scene's
    Motion Server, so the host connects and speaks the intro with no other flag."""
    import shutil

    from avatarkit.paths import AVATARS_DIR

    folder = tmp_path / "host"
    folder.mkdir()
    shutil.copy(AVATARS_DIR / "noor" / "noor.glb", folder / "Quiz Host.glb")
    stage = make_stage(avatar=str(folder))
    quiz = game.Quiz(stage, str(folder))
    assert quiz.view.avatar.id == "quiz-host"
    controller = quiz.view.controller
    step_until(stage, lambda: controller.conversation_state == ConversationState.PLAYING)
    assert controller.connection_state == "connected"
    stage.restart_server()  # F5: the new server must serve it too, or no reconnect holds
    step_until(stage, lambda: controller.connection_state == "reconnecting", timeout=20)
    step_until(stage, lambda: controller.connection_state == "connected", timeout=20)
    assert quiz.banner.outages == 1
