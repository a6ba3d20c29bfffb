"""``avatarkit render --workers``: helper processes draw chunks of the video (issue 15,
"both cores used for long inputs"). Every frame must be the frame one process draws, in
order, and a helper that dies must cost nothing but time."""

from __future__ import annotations

import hashlib
import logging
import time

import numpy as np
import pytest

from avatarkit.cli import render_workers
from avatarkit.cli.render import render_video
from avatarkit.paths import SPEECH_DIR
from engine.capture import VideoWriter

pytestmark = pytest.mark.timeout(180)

SPEECH = SPEECH_DIR / "quiz_q1.wav"  # about 3 s: several chunks at 30 fps
SIZE = (160, 90)


class Encoded:
    """The frames each render hands its encoder, as digests in order: the pixels, exactly.
    (Decoded MP4s are no proof: the same frames encoded and decoded again came out a code
    value or two apart in a corner block in 1-16% of runs here; CI failed on that.)"""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.frames: list[bytes] = []
        write_frame = VideoWriter.write_frame

        def recording(writer: VideoWriter, rgb: np.ndarray) -> None:
            self.frames.append(hashlib.sha1(rgb.tobytes()).digest())  # C order, any strides
            write_frame(writer, rgb)

        monkeypatch.setattr(VideoWriter, "write_frame", recording)


@pytest.fixture
def encoded(monkeypatch) -> Encoded:
    return Encoded(monkeypatch)


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
def one_process(tmp_path_factory) -> list[bytes]:
    out = tmp_path_factory.mktemp("workers") / "one.mp4"
    with pytest.MonkeyPatch.context() as monkeypatch:
        encoded = Encoded(monkeypatch)
        result = render_video("ava", SPEECH, out, SIZE, workers=1)
    assert (result.processes, result.helper_frames) == (1, 0)
    assert len(encoded.frames) == result.frames
    return encoded.frames


def test_a_helper_draws_its_chunks_and_the_video_is_the_same(
    tmp_path, one_process, patient, encoded
):
    out = tmp_path / "two.mp4"
    result = render_video("ava", SPEECH, out, SIZE, workers=2)
    assert result.processes == 2
    # The helper drew every other chunk: its turns.
    turns = [k for k in range(result.frames) if k // render_workers.CHUNK_FRAMES % 2]
    assert result.helper_frames == len(turns) > 0
    assert encoded.frames == one_process  # the same pixels in the same order


def test_a_helper_that_dies_costs_only_time(
    tmp_path, one_process, patient, encoded, monkeypatch, caplog
):
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
    assert encoded.frames == one_process  # the parent drew the rest


def test_auto_starts_a_helper_only_where_it_pays():
    helpers_for, long = render_workers.helpers_for, render_workers.MIN_SECONDS
    assert helpers_for(None, software=True, seconds=long) == 1
    assert helpers_for(None, software=True, seconds=long - 1) == 0  # start-up > gain
    assert helpers_for(None, software=False, seconds=10 * long) == 0  # a GPU: no need
    assert helpers_for(3, software=False, seconds=1.0) == 2  # asked for: given
    # Started beside the parent's own start-up, a helper pays from shorter videos on.
    early = render_workers.MIN_SECONDS_EARLY
    assert early < long
    assert helpers_for(None, software=True, seconds=early, early=True) == 1
    assert helpers_for(None, software=True, seconds=early - 1, early=True) == 0


def test_a_helper_that_cannot_start_leaves_its_turns_to_the_parent(
    tmp_path, one_process, encoded, monkeypatch, caplog
):
    def no_process(*args, **kwargs):
        raise OSError("Resource temporarily unavailable")

    monkeypatch.setattr(render_workers.subprocess, "Popen", no_process)
    out = tmp_path / "alone.mp4"
    with caplog.at_level(logging.WARNING, logger="avatarkit"):
        result = render_video("ava", SPEECH, out, SIZE, workers=2)
    assert (result.processes, result.helper_frames) == (1, 0)
    assert any("did not start" in r.getMessage() for r in caplog.records)
    assert encoded.frames == one_process


def test_a_sound_card_playing_elsewhere_in_the_process_changes_nothing(
    tmp_path, one_process, encoded
):
    """A video is a function of its inputs: another App's real-time device playing in the
    same process (a kiosk that also renders, an earlier test's null device) must not put
    the render on the wall clock."""
    from engine.audio import Mixer, NullDevice

    elsewhere = NullDevice(Mixer(16000)).start()
    try:
        out = tmp_path / "beside_a_kiosk.mp4"
        render_video("ava", SPEECH, out, SIZE, workers=1)
    finally:
        elsewhere.stop()
    assert encoded.frames == one_process


@pytest.fixture
def long_enough(monkeypatch):
    """The test speech counts as long: auto starts a helper for it."""
    monkeypatch.setattr(render_workers, "MIN_SECONDS", 1.0)
    monkeypatch.setattr(render_workers, "MIN_SECONDS_EARLY", 1.0)


@pytest.mark.parametrize(
    ("workers", "gpu_device", "order"),
    [
        (None, False, ["helpers", "app"]),  # no GPU device: software for certain
        (2, True, ["helpers", "app"]),  # asked for
        (None, True, ["app", "helpers"]),  # a GPU may be there: our context tells
    ],
)
def test_a_helper_whose_need_is_known_starts_before_our_own_context(
    tmp_path, one_process, patient, encoded, long_enough, monkeypatch, workers, gpu_device, order
):
    """Known before the parent's session (asked for, or no GPU device node: EGL can only
    rasterise in software), the helper starts at once, on the core the parent's
    single-threaded start-up leaves idle; else once the parent's context shows llvmpipe."""
    import engine.app

    started: list[str] = []
    helpers_init, headless = render_workers.RenderHelpers.__init__, engine.app.App.headless

    def helpers(self, *args, **kwargs):
        started.append("helpers")
        helpers_init(self, *args, **kwargs)

    def app(*args, **kwargs):
        started.append("app")
        return headless(*args, **kwargs)

    monkeypatch.setattr(render_workers.RenderHelpers, "__init__", helpers)
    monkeypatch.setattr(engine.app.App, "headless", app)
    monkeypatch.setattr(render_workers, "no_gpu_device", lambda: not gpu_device)
    result = render_video("ava", SPEECH, tmp_path / "early.mp4", SIZE, workers=workers)
    assert started == order
    assert result.processes == 2 and result.helper_frames > 0
    assert encoded.frames == one_process


def test_a_gpu_found_after_all_sends_the_early_helper_away(tmp_path, long_enough, monkeypatch):
    import engine.app

    boards: list[render_workers.RenderHelpers] = []
    helpers_init = render_workers.RenderHelpers.__init__

    def helpers(self, *args, **kwargs):
        boards.append(self)
        helpers_init(self, *args, **kwargs)

    monkeypatch.setattr(render_workers.RenderHelpers, "__init__", helpers)
    monkeypatch.setattr(render_workers, "no_gpu_device", lambda: True)
    monkeypatch.setattr(engine.app, "SOFTWARE_RENDERERS", ())  # llvmpipe passes for a GPU
    result = render_video("ava", SPEECH, tmp_path / "gpu.mp4", SIZE)
    assert (result.processes, result.helper_frames) == (1, 0)
    [board] = boards
    assert all(h.process.wait(timeout=10) is not None for h in board._helpers.values())


def test_a_gpu_device_node_is_seen(monkeypatch):
    monkeypatch.setattr(render_workers.os.path, "exists", lambda path: False)
    monkeypatch.setattr(render_workers.glob, "glob", lambda pattern: [])
    assert render_workers.no_gpu_device()
    monkeypatch.setattr(render_workers.glob, "glob", lambda pattern: ["/dev/dri/renderD128"])
    assert not render_workers.no_gpu_device()
    monkeypatch.setattr(render_workers.glob, "glob", lambda pattern: [])
    monkeypatch.setattr(render_workers.os.path, "exists", lambda path: path == "/dev/nvidiactl")
    assert not render_workers.no_gpu_device()
