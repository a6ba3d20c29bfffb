"""The ten-line quickstart (the seed's five stages) runs headless and plays its speech."""

from __future__ import annotations

import importlib.util
import wave

import pytest

from avatarkit.controller import ConversationState
from avatarkit.paths import REPO_ROOT, SPEECH_DIR
from avatarkit.sdk import AvatarSDK


@pytest.mark.timeout(60)
def test_quickstart_speaks_headless():
    spec = importlib.util.spec_from_file_location(
        "quickstart", REPO_ROOT / "examples" / "quickstart.py"
    )
    quickstart = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(quickstart)
    wav = SPEECH_DIR / "quiz_correct.wav"
    try:
        view = quickstart.main(str(wav), headless=True)
    finally:
        AvatarSDK.cleanup()
    with wave.open(str(wav)) as f:
        samples = f.getnframes()
    controller = view.controller
    assert view._first_drawn
    assert controller._source.consumed == samples  # the whole utterance played through the device
    assert controller.conversation_state == ConversationState.IDLE
