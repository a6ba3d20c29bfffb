"""A VRM file's rules over its expressions, on the morph targets as on the materials
(three-vrm's semantics): ``isBinary`` expressions show fully past half weight and not at
all below; ``overrideBlink`` / ``overrideMouth`` hold back the blink and mouth groups. And
the whole-face "happy" is the smile beyond what speech makes: talking neither flashes joy
nor, where joy overrides the mouth, freezes the lips."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_conventions import arkit, speech_frame, vrm0, vrm1, weights, write_head

from avatarkit.arkit import ARKIT_INDEX
from avatarkit.avatar import Avatar
from avatarkit.motion import create_stream
from avatarkit.motion.face import SPEECH_SMILE
from avatarkit.motion.visemes import VISEME_INDEX
from avatarkit.motion.wav import read_wav

SPEECH = sorted((Path(__file__).parents[2] / "assets" / "speech").glob("*.wav"))
SMILES = [ARKIT_INDEX["mouthSmileLeft"], ARKIT_INDEX["mouthSmileRight"]]
REGIONS = {"m0": "mouth", "lids": "eyes", "grin": None, "brow": None}


def happy(weight: float) -> dict[str, float]:
    """The smile that shows "happy" at ``weight``."""
    smile = SPEECH_SMILE + weight * (1.0 - SPEECH_SMILE)
    return {"mouthSmileLeft": smile, "mouthSmileRight": smile}


def smiling(frame: np.ndarray, joy: float) -> np.ndarray:
    """``frame`` with its smile set to show "happy" at ``joy``."""
    out = frame.copy()
    out[SMILES] = list(happy(joy).values())
    return out


def rules_head(tmp_path: Path, **flags: dict[str, Any]) -> Avatar:
    """A VRM 1.0 head: aa -> m0, blink -> lids, happy -> grin, angry -> brow, plus ``flags``
    (isBinary, override*) per expression."""
    ext = vrm1({"aa": [(0, 1.0)], "blink": [(1, 1.0)], "happy": [(2, 1.0)], "angry": [(3, 1.0)]})
    for name, extra in flags.items():
        ext["VRMC_vrm"]["expressions"]["preset"][name].update(extra)
    return Avatar.from_file(write_head(tmp_path / "rules.vrm", REGIONS, ext))


def test_speech_never_shows_a_whole_face_joy(tmp_path):
    avatar = rules_head(tmp_path)
    for viseme in VISEME_INDEX:
        assert weights(avatar, speech_frame(viseme))["grin"] == 0, viseme
    # What speech makes stays under the line, in every bundled line the model speaks.
    for path in SPEECH:
        audio = read_wav(path)
        stream = create_stream(audio.sample_rate, 30)
        frames = stream.push(audio.pcm.tobytes()) + stream.finish()
        smile = max(max(f.weights[SMILES]) for f in frames)
        assert 0.05 < smile <= SPEECH_SMILE, path.name
    # An app's smile shows it, scaled from the line to a full smile.
    assert weights(avatar, arkit(**happy(0.5)))["grin"] == pytest.approx(0.5)
    assert weights(avatar, arkit(mouthSmileLeft=1.0, mouthSmileRight=1.0))["grin"] == 1.0


def test_morph_binds_follow_the_override_rules(tmp_path):
    avatar = rules_head(
        tmp_path, happy={"overrideMouth": "block", "overrideBlink": "blend"}, angry={}
    )
    talk = speech_frame("AA")
    assert weights(avatar, talk)["m0"] > 0.8
    spread = smiling(talk, 0.0)  # the most smile speech makes: no joy, so no override
    assert weights(avatar, spread)["m0"] == pytest.approx(weights(avatar, talk)["m0"])
    # "block": any joy at all stops the mouth's expressions; joy itself shows.
    shown = weights(avatar, smiling(talk, 0.05))
    assert shown["m0"] == 0 and shown["grin"] == pytest.approx(0.05, abs=1e-6)
    # "blend": the blink shows (1 - joy) of itself.
    closed = arkit(eyeBlinkLeft=1.0, eyeBlinkRight=1.0)
    assert weights(avatar, closed)["lids"] == 1.0
    assert weights(avatar, closed + arkit(**happy(0.3)))["lids"] == pytest.approx(0.7)
    assert avatar.blendshape_map.rules.describe() == (
        "VRM expression rules: happy overrides blink (blend); happy overrides mouth (block)"
    )
    # The per-mesh weights apply the same rules.
    per_mesh = avatar.blendshape_map.mesh_weights(closed + arkit(**happy(0.3)))[0]
    assert per_mesh[1] == pytest.approx(0.7)


def test_morph_binds_follow_is_binary(tmp_path):
    avatar = rules_head(tmp_path, angry={"isBinary": True}, blink={"isBinary": True})
    frown = {"browDownLeft": 0.4, "browDownRight": 0.4}
    assert weights(avatar, arkit(**frown))["brow"] == 0
    frown = {"browDownLeft": 0.6, "browDownRight": 0.6}
    assert weights(avatar, arkit(**frown))["brow"] == 1.0
    assert weights(avatar, arkit(eyeBlinkLeft=0.45, eyeBlinkRight=0.45))["lids"] == 0
    assert weights(avatar, arkit(eyeBlinkLeft=0.55, eyeBlinkRight=0.55))["lids"] == 1.0
    # A binary blink held back at all by an overriding expression is gone.
    held = rules_head(tmp_path, blink={"isBinary": True}, happy={"overrideBlink": "blend"})
    assert weights(held, arkit(eyeBlinkLeft=1.0, eyeBlinkRight=1.0, **happy(0.1)))["lids"] == 0


def test_vrm0_binary_groups(tmp_path):
    ext = vrm0([("A", "a", [(0, 100)]), ("Blink", "blink", [(1, 100)])])
    ext["VRM"]["blendShapeMaster"]["blendShapeGroups"][1]["isBinary"] = True
    avatar = Avatar.from_file(write_head(tmp_path / "b0.vrm", {"k0": "mouth", "k1": "eyes"}, ext))
    assert weights(avatar, arkit(eyeBlinkLeft=0.4, eyeBlinkRight=0.4))["k1"] == 0
    assert weights(avatar, arkit(eyeBlinkLeft=0.7, eyeBlinkRight=0.7))["k1"] == 1.0
    assert weights(avatar, speech_frame("AA"))["k0"] > 0.8  # the rest as before
    assert np.isfinite(list(weights(avatar, arkit()).values())).all()
