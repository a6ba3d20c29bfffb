"""Avatars that follow other conventions than ARKit-52: Oculus/RPM visemes, VRM 0.x and 1.0.

The files are written here to the published layouts: a VRM 1.0 ``VRMC_vrm`` extension
(expressions.preset.<name>.morphTargetBinds: node, index, weight 0..1), a VRM 0.x ``VRM``
extension (blendShapeMaster.blendShapeGroups: presetName, binds: mesh, index, weight
0..100), and a Ready Player Me head with only the Oculus visemes and its extra targets.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from avatarkit.arkit import ARKIT_INDEX, NUM_BLENDSHAPES
from avatarkit.avatar import Avatar
from avatarkit.blendshapes import VOWELS, vowel_weights
from avatarkit.motion.face import FaceAnimator
from avatarkit.motion.visemes import ARTICULATION, VISEME_INDEX
from engine.gltf_write import GltfBuilder
from engine.meshes import uv_sphere

RADIUS = 0.1  # a head-sized sphere, facing +Z
RPM_TARGETS = [
    *(f"viseme_{v}" for v in ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR",
                              "aa", "E", "I", "O", "U")),
    "mouthOpen", "mouthSmile", "eyesClosed", "eyesLookUp", "eyesLookDown",
]  # fmt: skip


def _region(positions: np.ndarray, name: str) -> np.ndarray:
    """Which vertices a target moves: the mouth (low front), an eye (high front, one side)."""
    x, y, z = positions.T
    front = z > 0.5 * RADIUS
    if name == "mouth":
        return front & (y < -0.2 * RADIUS) & (y > -0.7 * RADIUS) & (np.abs(x) < 0.4 * RADIUS)
    side = {
        "eyeL": x > 0.15 * RADIUS,
        "eyeR": x < -0.15 * RADIUS,
        "eyes": np.abs(x) > 0.15 * RADIUS,
    }[name]
    return front & (y > 0.15 * RADIUS) & (y < 0.55 * RADIUS) & side


def write_head(
    path: Path, targets: dict[str, str | None], extensions: dict[str, Any] | None = None
) -> Path:
    """A sphere head with one morph target per entry (name -> region it dents, or None:
    a target that moves a tiny bit everywhere) and optionally root extensions."""
    b = GltfBuilder()
    head = uv_sphere(RADIUS, 24, 48)
    deltas = []
    for region in targets.values():
        delta = np.zeros_like(head["positions"])
        if region is None:
            delta[:] = 1e-4
        else:  # push the region inwards: a dent the renderer shades darker
            delta[_region(head["positions"], region)] = (
                -0.35 * head["normals"][_region(head["positions"], region)] * RADIUS
            )
        deltas.append({"POSITION": delta, "NORMAL": None})
    skin = b.add_material((0.85, 0.6, 0.5, 1.0), name="skin")
    mesh = b.add_mesh([dict(head, material=skin, targets=deltas)], "Face", list(targets))
    b.add_node("Face", mesh=mesh)
    if extensions:
        b.doc.extensions = extensions
        b.doc.extensionsUsed = sorted(extensions)
    return b.save(path)


def vrm1(binds: dict[str, list[tuple[int, float]]]) -> dict[str, Any]:
    """A VRM 1.0 extension: expression -> (target index, weight) binds on node 0's mesh."""
    preset = {
        name: {
            "morphTargetBinds": [{"node": 0, "index": i, "weight": w} for i, w in b],
            "isBinary": False,
        }
        for name, b in binds.items()
    }
    return {
        "VRMC_vrm": {
            "specVersion": "1.0",
            "meta": {
                "name": "test head",
                "authors": ["avatarkit tests"],
                "licenseUrl": "https://vrm.dev/licenses/1.0/",
            },
            "humanoid": {"humanBones": {"head": {"node": 0}}},
            "expressions": {"preset": preset},
        }
    }


def vrm0(groups: list[tuple[str, str, list[tuple[int, float]]]]) -> dict[str, Any]:
    """A VRM 0.x extension: (name, presetName, [(target index, weight 0..100)]) groups on mesh 0."""
    return {
        "VRM": {
            "specVersion": "0.0",
            "meta": {"title": "test head", "author": "avatarkit tests"},
            "humanoid": {"humanBones": [{"bone": "head", "node": 0}]},
            "blendShapeMaster": {
                "blendShapeGroups": [
                    {
                        "name": name,
                        "presetName": preset,
                        "binds": [{"mesh": 0, "index": i, "weight": w} for i, w in b],
                        "isBinary": False,
                    }
                    for name, preset, b in groups
                ]
            },
        }
    }


def speech_frame(viseme: str) -> np.ndarray:
    """The ARKit-52 frame the Motion Server's face makes for one viseme, held."""
    art = np.repeat(ARTICULATION[VISEME_INDEX[viseme]][None], 1, axis=0)
    weights, _, _ = FaceAnimator(30).animate(art, np.zeros(1, np.float32), np.zeros(1, np.float32))
    return weights[0]


def arkit(**channels: float) -> np.ndarray:
    w = np.zeros(NUM_BLENDSHAPES, np.float32)
    for name, value in channels.items():
        w[ARKIT_INDEX[name]] = value
    return w


def weights(avatar: Avatar, frame: np.ndarray) -> dict[str, float]:
    names = avatar.asset.target_names
    return dict(zip(names, avatar.target_weights(frame, names).tolist(), strict=True))


@pytest.mark.parametrize(
    "viseme,vowel",
    [
        ("AA", "aa"),
        ("AH", "aa"),
        ("EE", "ee"),
        ("IH", "ih"),
        ("OH", "oh"),
        ("UU", "ou"),
        ("WW", "ou"),
    ],
)
def test_the_spoken_vowel_wins(viseme, vowel):
    vw = vowel_weights(speech_frame(viseme))
    assert VOWELS[int(vw.argmax())] == vowel and vw.max() > 0.35


def test_closed_lips_show_no_vowel():
    assert (
        vowel_weights(speech_frame("PP")).max() == 0
        and vowel_weights(speech_frame("sil")).max() == 0
    )


def test_vrm1_expressions_from_the_extension(tmp_path, caplog):
    # Target names that follow no convention: only the extension's binds can map them.
    names = ["m0", "m1", "m2", "m3", "m4", "lidL", "lidR", "lids", "grin"]
    regions = dict.fromkeys(names[:5], "mouth") | {
        "lidL": "eyeL",
        "lidR": "eyeR",
        "lids": "eyes",
        "grin": None,
    }
    ext = vrm1(
        {
            "aa": [(0, 1.0)],
            "ih": [(1, 1.0)],
            "ou": [(2, 1.0)],
            "ee": [(3, 1.0)],
            "oh": [(4, 1.0)],
            "blinkLeft": [(5, 1.0)],
            "blinkRight": [(6, 1.0)],
            "blink": [(7, 1.0)],
            "happy": [(8, 0.5)],
        }
    )
    with caplog.at_level(logging.WARNING, logger="avatarkit"):
        avatar = Avatar.from_file(write_head(tmp_path / "head.vrm", regions, ext))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "browDownLeft" in warnings[0] and "jawOpen" not in warnings[0]

    for viseme, target in [("AA", "m0"), ("IH", "m1"), ("UU", "m2"), ("EE", "m3"), ("OH", "m4")]:
        w = weights(avatar, speech_frame(viseme))
        assert max(w, key=w.get) == target, (viseme, w)
    rest = weights(avatar, np.zeros(NUM_BLENDSHAPES, np.float32))
    assert max(rest.values()) == 0
    blink = weights(avatar, arkit(eyeBlinkLeft=1.0, eyeBlinkRight=1.0))
    # The per-eye expressions close the eyes; the both-eyes one stays off (no double close).
    assert blink["lidL"] == 1 and blink["lidR"] == 1 and blink["lids"] == 0
    assert weights(avatar, arkit(eyeBlinkLeft=1.0))["lidR"] == 0
    assert weights(avatar, arkit(mouthSmileLeft=1.0, mouthSmileRight=1.0))["grin"] == pytest.approx(
        0.5
    )  # bind weight 0.5
    assert "eyeBlinkLeft" in avatar.available_channels and "jawOpen" in avatar.available_channels


def test_vrm0_presets_from_the_extension(tmp_path):
    ext = vrm0(
        [
            ("A", "a", [(0, 100)]),
            ("Blink", "blink", [(1, 100), (2, 50)]),
            ("Joy", "joy", [(3, 100)]),
            ("Broken", "a", [(9, 100), ("x", 100), (0, True)]),
        ]
    )
    avatar = Avatar.from_file(
        write_head(
            tmp_path / "head0.vrm", {"k0": "mouth", "k1": "eyes", "k2": "eyes", "k3": None}, ext
        )
    )
    w = weights(avatar, speech_frame("AA"))
    assert w["k0"] > 0.8 and w["k1"] == 0
    w = weights(avatar, arkit(eyeBlinkLeft=1.0, eyeBlinkRight=1.0))
    assert w["k1"] == pytest.approx(1.0) and w["k2"] == pytest.approx(
        0.5
    )  # VRM 0.x weights are 0..100
    # Joy is the smile beyond speech's own (0.2): 0.84 shows 0.8 of it.
    assert weights(avatar, arkit(mouthSmileLeft=0.84, mouthSmileRight=0.84))["k3"] == pytest.approx(
        0.8
    )


def test_a_bound_target_is_driven_once(tmp_path):
    # A VRM whose "aa" expression binds RPM's viseme_aa: the bind replaces the name's meaning.
    avatar = Avatar.from_file(
        write_head(tmp_path / "both.vrm", {"viseme_aa": "mouth"}, vrm1({"aa": [(0, 0.5)]}))
    )
    assert weights(avatar, speech_frame("AA"))["viseme_aa"] == pytest.approx(
        0.5 * vowel_weights(speech_frame("AA"))[0]
    )


def test_vrm_names_without_an_extension(tmp_path):
    regions = {
        "A": "mouth",
        "O": "mouth",
        "Blink_L": "eyeL",
        "Blink_R": "eyeR",
        "Fcl_MTH_U": "mouth",
        "ee": "mouth",
    }
    avatar = Avatar.from_file(write_head(tmp_path / "plain.glb", regions))
    assert max(weights(avatar, speech_frame("AA")).items(), key=lambda kv: kv[1])[0] == "A"
    assert max(weights(avatar, speech_frame("UU")).items(), key=lambda kv: kv[1])[0] == "Fcl_MTH_U"
    assert max(weights(avatar, speech_frame("EE")).items(), key=lambda kv: kv[1])[0] == "ee"
    w = weights(avatar, arkit(eyeBlinkLeft=1.0))
    assert w["Blink_L"] == 1 and w["Blink_R"] == 0


def test_rpm_viseme_only_head(tmp_path, caplog):
    regions = dict.fromkeys(RPM_TARGETS, None) | {
        "viseme_aa": "mouth",
        "mouthOpen": "mouth",
        "eyesClosed": "eyes",
    }
    with caplog.at_level(logging.WARNING, logger="avatarkit"):
        avatar = Avatar.from_file(write_head(tmp_path / "rpm.glb", regions))
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    aa = weights(avatar, speech_frame("AA"))
    assert max(aa, key=aa.get) == "viseme_aa" and aa["viseme_aa"] > 0.8
    assert aa["mouthOpen"] == 0  # the visemes open the mouth; the plain jaw drop would double it
    oh = weights(avatar, speech_frame("OH"))
    assert max(oh, key=oh.get) == "viseme_O"
    pp = weights(avatar, speech_frame("PP"))
    assert max(pp, key=pp.get) == "viseme_PP"
    blink = weights(avatar, arkit(eyeBlinkLeft=1.0, eyeBlinkRight=1.0))
    assert blink["eyesClosed"] == 1 and max(v for k, v in blink.items() if k != "eyesClosed") == 0
    assert weights(avatar, arkit(eyeLookUpLeft=0.6, eyeLookUpRight=0.6))[
        "eyesLookUp"
    ] == pytest.approx(0.6)
    assert weights(avatar, arkit(eyeLookDownLeft=0.4, eyeLookDownRight=0.4))[
        "eyesLookDown"
    ] == pytest.approx(0.4)
    assert weights(avatar, arkit(mouthSmileLeft=0.5, mouthSmileRight=0.5))[
        "mouthSmile"
    ] == pytest.approx(0.5)
    # Was 21 of 52 with no blink, gaze or smile: a face that spoke but never blinked.
    assert {
        "eyeBlinkLeft",
        "eyeBlinkRight",
        "eyeLookUpLeft",
        "eyeLookDownRight",
        "jawOpen",
        "mouthFunnel",
    } <= set(avatar.available_channels)


def test_rpm_mouth_open_stands_in_without_visemes(tmp_path):
    avatar = Avatar.from_file(
        write_head(tmp_path / "jaw.glb", {"mouthOpen": "mouth", "eyesClosed": "eyes"})
    )
    assert weights(avatar, arkit(jawOpen=0.7))["mouthOpen"] == pytest.approx(0.7)


def test_a_statue_says_so_once(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="avatarkit"):
        avatar = Avatar.from_file(
            write_head(tmp_path / "statue.glb", {"shapeA": "mouth", "shapeB": "eyes"})
        )
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "will not move" in warnings[0] and "statue.glb" in warnings[0]
    assert avatar.available_channels == ()


def test_malformed_vrm_extensions_are_ignored(tmp_path):
    bad = {
        "VRMC_vrm": {
            "expressions": {
                "preset": {
                    "aa": {
                        "morphTargetBinds": [
                            {"node": 7, "index": 0},
                            "x",
                            {"node": 0, "index": -1},
                            {"node": 0, "index": 0, "weight": "1"},
                        ]
                    },
                    "blink": [1, 2],
                    3: {},
                }
            }
        }
    }
    avatar = Avatar.from_file(write_head(tmp_path / "bad.vrm", {"t0": "mouth"}, bad))
    assert avatar.available_channels == ()
    bad0 = {
        "VRM": {
            "blendShapeMaster": {
                "blendShapeGroups": [None, {"presetName": 5, "binds": [{"mesh": 3, "index": 0}]}]
            }
        }
    }
    assert (
        Avatar.from_file(
            write_head(tmp_path / "bad0.vrm", {"t0": "mouth"}, bad0)
        ).available_channels
        == ()
    )


SIZE = 128


@pytest.mark.timeout(60)
def test_a_vrm_head_speaks_and_blinks_on_screen(tmp_path, make_headless_app):
    from engine import ModelRenderer

    regions = {"m0": "mouth", "lids": "eyes"}
    avatar = Avatar.from_file(
        write_head(tmp_path / "screen.vrm", regions, vrm1({"aa": [(0, 1.0)], "blink": [(1, 1.0)]}))
    )
    app = make_headless_app(size=(SIZE, SIZE), samples=0)
    try:
        model = app.scene.create_entity("head").add_component(ModelRenderer(avatar.asset))
        app.scene.camera.look_at((0, 0, 4 * RADIUS), (0, 0, 0))
        names = model.asset.target_names

        def render(frame: np.ndarray) -> np.ndarray:
            model.set_weights(avatar.target_weights(frame, names))
            app.step()
            return app.read_pixels()[..., :3].astype(np.int16)

        neutral, speaking, blinking = (
            render(np.zeros(NUM_BLENDSHAPES, np.float32)),
            render(speech_frame("AA")),
            render(arkit(eyeBlinkLeft=1, eyeBlinkRight=1)),
        )
    finally:
        app.close()
    moved = lambda a, b: np.abs(a - b).max(axis=-1) > 12  # noqa: E731
    rows = np.arange(SIZE)[:, None]
    lower, upper = (
        rows > SIZE * 0.55,
        rows < SIZE * 0.45,
    )  # the mouth is below the centre, the eyes above
    talk, blink = moved(speaking, neutral), moved(blinking, neutral)
    assert (talk & lower).sum() > 30 and (talk & upper).sum() == 0
    assert (blink & upper).sum() > 30 and (blink & lower).sum() == 0


# -- `avatarkit render --avatar PATH` ------------------------------------------------------


@pytest.mark.timeout(90)
def test_render_takes_a_vrm_file_and_its_mouth_moves(tmp_path, capsys):
    import av

    from avatarkit.cli import main
    from avatarkit.paths import SPEECH_DIR

    def mouth_motion(head: Path) -> np.ndarray:
        """Per frame, how many pixels of the lower face differ from frame 0 (closed)."""
        out = head.with_suffix(".mp4")
        argv = [
            "render",
            "--avatar",
            str(head),
            "--audio",
            str(SPEECH_DIR / "quiz_timeout.wav"),
            "-o",
            str(out),
            "--size",
            "128x96",
            "--idle",
            "off",
        ]
        assert main(argv) == 0, capsys.readouterr().err
        with av.open(str(out)) as container:
            frames = np.array(
                [f.to_ndarray(format="rgb24") for f in container.decode(video=0)], np.int16
            )
        assert len(frames) >= 50
        return (np.abs(frames - frames[0]).max(axis=-1) > 12)[:, 52:, :].sum(axis=(1, 2))

    vowels = {
        "aa": [(0, 1.0)],
        "oh": [(1, 1.0)],
        "ou": [(2, 1.0)],
        "ee": [(3, 1.0)],
        "ih": [(4, 1.0)],
    }
    names = ["m0", "m1", "m2", "m3", "m4"]
    speaking = mouth_motion(
        write_head(tmp_path / "my head.vrm", dict.fromkeys(names, "mouth"), vrm1(vowels))
    )
    # The same head without the extension maps nothing: only the head pose moves it.
    still = mouth_motion(write_head(tmp_path / "statue.glb", dict.fromkeys(names, "mouth")))
    assert speaking.max() > 40 and (speaking > still + 20).sum() > 5, (speaking, still)
    assert still.max() < 0.5 * speaking.max()


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("avaa", ["did you mean 'ava'?", "bundled avatar in", "no file or folder"]),
        ("missing/head.vrm", ["'missing/head.vrm' not found", "no file or folder", "head.vrm"]),
        ("gone.glb", ["no file or folder", "gone.glb"]),
    ],
)
def test_an_unknown_avatar_says_where_it_looked(tmp_path, monkeypatch, capsys, spec, words):
    from avatarkit.cli import main
    from avatarkit.paths import SPEECH_DIR

    monkeypatch.chdir(tmp_path)
    assert (
        main(
            [
                "render",
                "--avatar",
                spec,
                "--audio",
                str(SPEECH_DIR / "quiz_timeout.wav"),
                "-o",
                "o.mp4",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("avatarkit render: error [avatarNotFound]: ")
    for word in words:
        assert word in err[0], err[0]
    assert str(tmp_path) in err[0]  # the absolute place it looked


def test_a_bundled_id_wins_over_a_same_named_folder(tmp_path, monkeypatch):
    from avatarkit.cli.common import open_avatar

    monkeypatch.chdir(tmp_path)
    (tmp_path / "ava").mkdir()  # an unrelated folder: the id still means the bundled avatar
    assert open_avatar("ava").manifest.version != "local"
    write_head(tmp_path / "ava" / "head.glb", {"aa": "mouth"})
    assert open_avatar("./ava").manifest.version == "local"  # a path says so explicitly


def test_the_loader_keeps_the_root_extensions(tmp_path):
    from engine import load_gltf

    asset = load_gltf(write_head(tmp_path / "e.vrm", {"t": None}, vrm1({"aa": [(0, 1.0)]})))
    assert asset.extensions["VRMC_vrm"]["specVersion"] == "1.0"
    assert load_gltf(write_head(tmp_path / "plain.glb", {"t": None})).extensions == {}
