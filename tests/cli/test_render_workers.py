"""``avatarkit render --workers``: helper processes draw chunks of the video (issue 15,
"both cores used for long inputs"). Every frame must be the frame one process draws, in
order, and a helper that dies must cost nothing but time."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest

from avatarkit.cli import render_workers
from avatarkit.cli.render import render_video
from avatarkit.paths import SPEECH_DIR

pytestmark = pytest.mark.timeout(180)

SPEECH = SPEECH_DIR / "quiz_q1.wav"  # about 3 s: several chunks at 30 fps
SIZE = (160, 90)


def frames_of(path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        return np.array([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


@pytest.fixture
def patient(monkeypatch):
    """The parent waits at each helper's turn until the helper claims it: a test video is
    shorter than a helper's start-up, and the parent would otherwise draw it all."""
    owner = render_workers.RenderHelpers.owner

    def wait_for_claim(self, index):
        chunk = index // render_workers.CHUNK_FRAMES
        deadline = time.monotonic() + 60
        if index % render_workers.CHUNK_FRAMES == 0 and chunk % self._turns:
            helper = self._helpers[chunk % self._turns].process
            while self._owners[chunk] is None and helper.poll() is None:
                assert time.monotonic() < deadline, "the helper never claimed its turn"
                time.sleep(0.01)
        return owner(self, index)

    monkeypatch.setattr(render_workers.RenderHelpers, "owner", wait_for_claim)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    out = tmp_path_factory.mktemp("workers") / "one.mp4"
    result = render_video("ava", SPEECH, out, SIZE, workers=1)
    assert (result.processes, result.helper_frames) == (1, 0)
    return frames_of(out)


def test_a_helper_draws_its_chunks_and_the_video_is_the_same(tmp_path, one_process, patient):
    out = tmp_path / "two.mp4"
    result = render_video("ava", SPEECH, out, SIZE, workers=2)
    assert result.processes == 2
    # The helper drew every other chunk: its turns.
    turns = [k for k in range(result.frames) if k // render_workers.CHUNK_FRAMES % 2]
    assert result.helper_frames == len(turns) > 0
    two = frames_of(out)
    assert two.shape == one_process.shape
    # Same pixels in the same order: the encoder saw the same frames (x264 is
    # deterministic), so the decoded videos match exactly.
    assert np.array_equal(two, one_process)


def test_a_helper_that_dies_costs_only_time(tmp_path, one_process, patient, monkeypatch, caplog):
    take = render_workers.RenderHelpers.take
    killed = []

    def kill_first(self, helper, index):  # the helper dies as the parent first needs it
        if not killed:
            killed.append(index)
            self._helpers[helper].process.kill()
        return take(self, helper, index)

    monkeypatch.setattr(render_workers.RenderHelpers, "take", kill_first)
    out = tmp_path / "killed.mp4"
    with caplog.at_level(logging.WARNING, logger="avatarkit"):
        result = render_video("ava", SPEECH, out, SIZE, workers=2)
    assert killed
    assert result.helper_frames < 2 * render_workers.CHUNK_FRAMES  # it drew one chunk at most
    assert any("render helper 1 failed" in r.getMessage() for r in caplog.records)
    assert np.array_equal(frames_of(out), one_process)  # the parent drew the rest


def test_auto_starts_a_helper_only_where_it_pays():
    helpers_for, long = render_workers.helpers_for, render_workers.MIN_SECONDS
    assert helpers_for(None, software=True, seconds=long) == 1
    assert helpers_for(None, software=True, seconds=long - 1) == 0  # start-up > gain
    assert helpers_for(None, software=False, seconds=10 * long) == 0  # a GPU: no need
    assert helpers_for(3, software=False, seconds=1.0) == 2  # asked for: given


def test_a_helper_that_cannot_start_leaves_its_turns_to_the_parent(
    tmp_path, one_process, monkeypatch, caplog
):
    def no_process(*args, **kwargs):
        raise OSError("Resource temporarily unavailable")

    monkeypatch.setattr(render_workers.subprocess, "Popen", no_process)
    out = tmp_path / "alone.mp4"
    with caplog.at_level(logging.WARNING, logger="avatarkit"):
        result = render_video("ava", SPEECH, out, SIZE, workers=2)
    assert (result.processes, result.helper_frames) == (1, 0)
    assert any("did not start" in r.getMessage() for r in caplog.records)
    assert np.array_equal(frames_of(out), one_process)
