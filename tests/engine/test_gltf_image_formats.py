"""``EXT_texture_webp`` and ``EXT_texture_avif``: WebP and AVIF textures, as
``gltf-transform optimize --texture-compress webp|avif`` writes them (the texture's own
``source`` dropped and the extension required, or kept as a PNG/JPEG fallback). Encoded
here with libwebp / libavif through Pillow; such a payload is decoded only in a file that
declares the extension, and its header's size is checked first."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine import EngineError, errors, load_gltf
from engine.gltf import AVIF, DECODERS, WEBP, GltfLimits
from engine.gltf_write import GltfBuilder, pack_glb, unpack_glb
from engine.meshes import cube

# extension: (Pillow's format, its encoder options, the largest texel error they leave)
FORMATS = {
    WEBP: ("WEBP", {"lossless": True}, 0),
    AVIF: ("AVIF", {"quality": 100, "subsampling": "4:4:4"}, 1),
}

PNG_PIXELS = np.full((8, 8, 4), (200, 40, 40, 255), np.uint8)  # red: the fallback
RAMP = np.zeros((16, 8, 4), np.uint8)
RAMP[..., 1] = np.arange(16)[:, None] * 15  # a green ramp, top to bottom
RAMP[..., 3] = 255


@pytest.fixture(params=[WEBP, AVIF], ids=["webp", "avif"])
def ext(request) -> str:
    if not DECODERS[request.param]:
        pytest.skip(f"this Pillow cannot decode {request.param}")  # only that: a build option
    return request.param


def encoded(ext: str, pixels: np.ndarray = RAMP) -> bytes:
    fmt, options, _ = FORMATS[ext]
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, fmt, **options)
    return out.getvalue()


def assert_ramp(ext: str, got: np.ndarray) -> None:
    assert got.shape == RAMP.shape
    assert np.abs(got.astype(int) - RAMP).max() <= FORMATS[ext][2]  # WebP: every texel


def write(
    path: Path, ext: str, *, fallback: bool, required: bool, payload: bytes | None = None
) -> Path:
    """A textured cube whose texture has an ``ext`` image (``payload``, by default the
    ramp) and, with ``fallback``, its PNG ``source`` too."""
    b = GltfBuilder()
    b.add_node(
        "cube", mesh=b.add_mesh([dict(cube(), material=b.add_material(texture_rgba=PNG_PIXELS))])
    )
    doc, blob = unpack_glb(b.save(path).read_bytes())
    data = payload if payload is not None else encoded(ext)
    doc["bufferViews"].append({"buffer": 0, "byteOffset": len(blob), "byteLength": len(data)})
    blob += data + b"\0" * (-len(data) % 4)
    doc["buffers"][0]["byteLength"] = len(blob)
    mime = "image/" + FORMATS[ext][0].lower()
    doc["images"].append({"bufferView": len(doc["bufferViews"]) - 1, "mimeType": mime})
    texture = doc["textures"][0]
    texture["extensions"] = {ext: {"source": len(doc["images"]) - 1}}
    if not fallback:
        del texture["source"]
    doc["extensionsUsed"] = [ext]
    if required:
        doc["extensionsRequired"] = [ext]
    path.write_bytes(pack_glb(doc, blob))
    return path


def texture_of(path: Path, **limits) -> np.ndarray:
    asset = load_gltf(path, GltfLimits(**limits)) if limits else load_gltf(path)
    texture = asset.materials[0].base_color_texture
    assert texture is not None
    return texture


def test_a_required_texture_decodes(tmp_path, ext):
    assert_ramp(ext, texture_of(write(tmp_path / "t.glb", ext, fallback=False, required=True)))


def test_the_extension_image_wins_over_its_fallback(tmp_path, ext):
    assert_ramp(ext, texture_of(write(tmp_path / "both.glb", ext, fallback=True, required=False)))


def test_a_source_index_out_of_range_is_named(tmp_path, ext):
    path = write(tmp_path / "bad.glb", ext, fallback=False, required=True)
    doc, blob = unpack_glb(path.read_bytes())
    doc["textures"][0]["extensions"][ext]["source"] = 7
    path.write_bytes(pack_glb(doc, blob))
    with pytest.raises(EngineError) as refused:
        load_gltf(path)
    assert refused.value.code == errors.INVALID_GLTF
    assert refused.value.field == f"textures[0].extensions.{ext}.source"


def test_a_corrupt_image_is_invalid_gltf_naming_it(tmp_path, ext):
    payload = bytearray(encoded(ext))
    payload[24:] = bytes(len(payload) - 24)  # the format's header, zeros after it
    path = write(
        tmp_path / "corrupt.glb", ext, fallback=False, required=True, payload=bytes(payload)
    )
    with pytest.raises(EngineError) as refused:
        load_gltf(path)
    assert refused.value.code == errors.INVALID_GLTF and refused.value.field == "images[1]"


def test_an_image_over_the_pixel_limit_is_refused_before_decoding(tmp_path, ext):
    path = write(tmp_path / "big.glb", ext, fallback=False, required=True)
    with pytest.raises(EngineError) as refused:
        texture_of(path, max_image_pixels=64)  # the ramp is 128 pixels
    assert refused.value.code == errors.GLTF_LIMIT_EXCEEDED


def test_bytes_of_a_file_that_does_not_declare_the_extension_are_refused(tmp_path, ext):
    """Only the decoders a file's extensions call for see its bytes."""
    path = write(tmp_path / "sneaky.glb", ext, fallback=False, required=True)
    doc, blob = unpack_glb(path.read_bytes())
    texture = doc["textures"][0]
    texture["source"] = texture.pop("extensions")[ext]["source"]
    doc.pop("extensionsUsed"), doc.pop("extensionsRequired")
    path.write_bytes(pack_glb(doc, blob))
    with pytest.raises(EngineError) as refused:
        load_gltf(path)
    assert refused.value.code == errors.INVALID_GLTF and "cannot be decoded" in str(refused.value)
