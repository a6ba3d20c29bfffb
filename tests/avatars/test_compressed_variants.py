"""A real avatar (the bundled ``ava.glb``: textured, 52 ARKit targets) and its compressed
variants made in the set-up (gltf_variants: gltfpack's meshopt and quantized output,
Draco via DracoPy) draw the same pixels through real EGL, at rest and with the jaw open."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from gltf_variants import REPO, draco_variant, gltfpack, gltfpack_variant

from engine import App, ModelRenderer
from engine.gltf import load_gltf

SOURCE = REPO / "assets" / "avatars" / "ava" / "ava.glb"
SIZE = (160, 160)


def render(path: Path, jaw: float) -> np.ndarray:
    """The file's head, from the front, framed on the original's bounds."""
    original = load_gltf(SOURCE)
    lo, hi = original.bounds()
    head = np.array([(lo[0] + hi[0]) / 2, hi[1] - 0.12, (lo[2] + hi[2]) / 2])
    with App.headless(size=SIZE, fps=30) as app:
        app.scene.camera.look_at(head + [0.0, 0.0, 0.6], head)
        entity = app.scene.create_entity("ava")
        model = entity.add_component(ModelRenderer(path))
        model.set_weight("jawOpen", jaw)
        app.step()
        return app.read_pixels()[:, :, :3].astype(np.int16)


@pytest.fixture(scope="module")
def originals(make_headless_app) -> dict[float, np.ndarray]:
    make_headless_app(size=(16, 16)).close()  # skips where there is no EGL
    return {jaw: render(SOURCE, jaw) for jaw in (0.0, 0.8)}


def _variant(kind: str, tmp: Path) -> Path:
    if kind == "draco":
        if importlib.util.find_spec("DracoPy") is None:
            pytest.skip("DracoPy (the compressed extra) is not installed")
        return draco_variant(SOURCE, tmp / "ava-draco.glb")
    if gltfpack() is None:
        pytest.skip("gltfpack (npm, scripts/setup.sh) is not installed")
    if kind == "meshopt":
        return gltfpack_variant(SOURCE, tmp / "ava-meshopt.glb", "-cc")
    return gltfpack_variant(SOURCE, tmp / "ava-quantized.glb")


@pytest.mark.parametrize("kind", ["meshopt", "quantized", "draco"])
def test_compressed_variant_draws_like_the_original(kind, originals, tmp_path):
    path = _variant(kind, tmp_path)
    used = set(load_gltf(path).extensions_used)
    expected = {
        "meshopt": {"EXT_meshopt_compression", "KHR_mesh_quantization"},
        "quantized": {"KHR_mesh_quantization"},
        "draco": {"KHR_draco_mesh_compression"},
    }[kind]
    assert expected <= used
    if kind != "draco":  # (the Draco variant keeps the original bytes beside its streams)
        assert path.stat().st_size < SOURCE.stat().st_size
    for jaw, original in originals.items():
        picture = render(path, jaw)
        diff = np.abs(picture - original).max(axis=-1)
        # Quantization moves edges by at most a pixel: few pixels differ, none by much
        # on average; a mis-decoded attribute changes most of the face.
        assert diff.mean() < 2.0, (kind, jaw, diff.mean())
        assert (diff > 48).mean() < 0.02, (kind, jaw, (diff > 48).mean())
    opened = np.abs(originals[0.8] - originals[0.0]).max(axis=-1) > 48
    assert opened.mean() > 0.005  # the jaw pose really changes the picture it is checked on
