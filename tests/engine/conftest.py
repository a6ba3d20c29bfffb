"""Engine test fixtures: a small headless app and glTF files the tests write themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine import App
from engine.gltf_write import GltfBuilder
from engine.meshes import cube, uv_sphere

SIZE = (160, 120)


@pytest.fixture(scope="session")
def egl(make_headless_app):
    """Skip the test where no headless EGL context can be made (only that)."""
    make_headless_app(size=(16, 16)).close()


@pytest.fixture
def app(egl):
    """A headless EGL app with a virtual 30 fps clock; closed after the test."""
    application = App.headless(SIZE, fps=30)
    yield application
    application.close()


def stretch_target(mesh: dict[str, np.ndarray], axis: int = 0, amount: float = 1.0) -> np.ndarray:
    """Position deltas that push the +axis half of a mesh outwards along that axis."""
    delta = np.zeros_like(mesh["positions"])
    delta[:, axis] = np.clip(mesh["positions"][:, axis], 0, None) * 2 * amount
    return delta


def write_morph_cube(path: Path) -> Path:
    """A cube named ``cube`` with targets ``stretchX`` (grow +x), ``stretchY`` (grow +y)
    and ``shrink`` (uniform scale down), default weights (0, 0, 0.25)."""
    b = GltfBuilder()
    mesh = cube(1.0)
    mat = b.add_material((0.9, 0.4, 0.2, 1.0), name="orange")
    targets = [
        {"POSITION": stretch_target(mesh, 0), "NORMAL": None},
        {"POSITION": stretch_target(mesh, 1), "NORMAL": None},
        {"POSITION": -0.5 * mesh["positions"], "NORMAL": None},
    ]
    m = b.add_mesh(
        [dict(mesh, material=mat, targets=targets)],
        "cube",
        ["stretchX", "stretchY", "shrink"],
        [0, 0, 0.25],
    )
    b.add_node("cube", mesh=m)
    return b.save(path)


def write_sphere_scene(path: Path, embed: bool = False) -> Path:
    """A lit sphere with a ``bulge`` target (the top half swells) over a textured box."""
    b = GltfBuilder()
    sphere = uv_sphere(0.5, 24, 48)
    bulge = sphere["normals"] * np.clip(sphere["positions"][:, 1:2] * 2, 0, None) * 0.6
    skin = b.add_material((0.8, 0.45, 0.35, 1.0), name="skin")
    checker = np.kron((np.indices((8, 8)).sum(0) % 2)[..., None] * 255, np.ones((8, 8, 1)))
    texture = np.concatenate(
        [checker, checker * 0.4, checker * 0.2, np.full_like(checker, 255)], axis=2
    )
    boxmat = b.add_material(
        (1, 1, 1, 1), texture_rgba=np.clip(texture, 30, 255).astype(np.uint8), name="checker"
    )
    ball = b.add_mesh(
        [dict(sphere, material=skin, targets=[{"POSITION": bulge, "NORMAL": None}])],
        "ball",
        ["bulge"],
    )
    box = b.add_mesh([dict(cube(1.0), material=boxmat)], "box")
    b.add_node("ball", mesh=ball, translation=(0, 0.35, 0))
    b.add_node("box", mesh=box, translation=(0, -0.5, 0), scale=(1.6, 0.3, 1.0))
    return b.save(path, embed=embed)


def bulged_frame(
    path: Path, bulge: float, host: bool = False, size: tuple[int, int] = (160, 120)
) -> np.ndarray:
    """One frame of the sphere scene at ``path`` with its "bulge" target at ``bulge``,
    blended by the shader's target loop or (``host``) by numpy."""
    from engine import ModelRenderer, load_gltf

    with App.headless(size, fps=30, samples=0) as app:
        app.renderer.host_morphs = host
        app.scene.camera.look_at((0.0, 0.4, 5.0), (0.0, 0.4, 0.0))
        model = app.scene.create_entity("m").add_component(ModelRenderer(load_gltf(path)))
        model.set_weight("bulge", bulge)
        app.step()
        return app.read_pixels().astype(int)


def add_texture(doc: dict, rgba: np.ndarray) -> int:
    """Append an RGBA image (a PNG in a data URI) and a texture of it to a parsed glTF
    document; the texture's index."""
    import base64
    import io

    from PIL import Image

    png = io.BytesIO()
    Image.fromarray(np.asarray(rgba, np.uint8)).save(png, "PNG")
    uri = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()
    doc.setdefault("images", []).append({"uri": uri})
    doc.setdefault("textures", []).append({"source": len(doc["images"]) - 1})
    return len(doc["textures"]) - 1


def glow_matcap(size: int = 16) -> np.ndarray:
    """A matcap white in a disc at its centre (where a normal facing the camera reads)
    and black out to its rim (where a silhouette's normals read)."""
    yy, xx = np.mgrid[:size, :size] + 0.5
    disc = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 4) ** 2
    image = np.zeros((size, size, 4), np.uint8)
    image[..., 3] = 255
    image[disc, :3] = 255
    return image


def foreground(pixels: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Boolean mask of pixels that differ clearly from a background render."""
    return np.abs(pixels.astype(int) - background.astype(int)).sum(axis=2) > 24


@pytest.fixture
def morph_cube_path(tmp_path) -> Path:
    return write_morph_cube(tmp_path / "morph_cube.glb")


@pytest.fixture
def sphere_scene_path(tmp_path) -> Path:
    return write_sphere_scene(tmp_path / "sphere_scene.glb")


@pytest.fixture
def foreground_mask():
    return foreground
