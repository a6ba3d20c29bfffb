"""``EXT_texture_webp``: WebP textures, as ``gltf-transform optimize --texture-compress webp``
writes them (the texture's own ``source`` dropped and the extension required, or kept as a
PNG/JPEG fallback). Encoded here with libwebp through Pillow; a WebP payload is decoded
only in a file that declares the extension, and its header's size is checked first."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine import EngineError, errors, load_gltf
from engine.gltf import DECODERS, WEBP, GltfLimits
from engine.gltf_write import GltfBuilder, pack_glb, unpack_glb
from engine.meshes import cube

pytestmark = pytest.mark.skipif(not DECODERS[WEBP], reason="this Pillow has no WebP decoder")

PNG_PIXELS = np.full((8, 8, 4), (200, 40, 40, 255), np.uint8)  # red: the fallback
WEBP_PIXELS = np.zeros((16, 8, 4), np.uint8)
WEBP_PIXELS[..., 1] = np.arange(16)[:, None] * 15  # a green ramp, top to bottom
WEBP_PIXELS[..., 3] = 255


def _webp(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "WEBP", lossless=True)
    return out.getvalue()


def write(path: Path, *, fallback: bool, required: bool, payload: bytes | None = None) -> Path:
    """A textured cube whose texture has an ``EXT_texture_webp`` image (``payload``, by
    default the lossless ramp) and, with ``fallback``, its PNG ``source`` too."""
    b = GltfBuilder()
    b.add_node(
        "cube", mesh=b.add_mesh([dict(cube(), material=b.add_material(texture_rgba=PNG_PIXELS))])
    )
    doc, blob = unpack_glb(b.save(path).read_bytes())
    data = payload if payload is not None else _webp(WEBP_PIXELS)
    doc["bufferViews"].append({"buffer": 0, "byteOffset": len(blob), "byteLength": len(data)})
    blob += data + b"\0" * (-len(data) % 4)
    doc["buffers"][0]["byteLength"] = len(blob)
    doc["images"].append({"bufferView": len(doc["bufferViews"]) - 1, "mimeType": "image/webp"})
    texture = doc["textures"][0]
    texture["extensions"] = {WEBP: {"source": len(doc["images"]) - 1}}
    if not fallback:
        del texture["source"]
    doc["extensionsUsed"] = [WEBP]
    if required:
        doc["extensionsRequired"] = [WEBP]
    path.write_bytes(pack_glb(doc, blob))
    return path


def texture_of(path: Path, **limits) -> np.ndarray:
    asset = load_gltf(path, GltfLimits(**limits)) if limits else load_gltf(path)
    texture = asset.materials[0].base_color_texture
    assert texture is not None
    return texture


def test_a_required_webp_texture_decodes_exactly(tmp_path):
    got = texture_of(write(tmp_path / "webp.glb", fallback=False, required=True))
    np.testing.assert_array_equal(got, WEBP_PIXELS)  # lossless: every texel


def test_the_webp_image_wins_over_its_fallback(tmp_path):
    got = texture_of(write(tmp_path / "both.glb", fallback=True, required=False))
    np.testing.assert_array_equal(got, WEBP_PIXELS)


def test_a_webp_source_index_out_of_range_is_named(tmp_path):
    path = write(tmp_path / "bad.glb", fallback=False, required=True)
    doc, blob = unpack_glb(path.read_bytes())
    doc["textures"][0]["extensions"][WEBP]["source"] = 7
    path.write_bytes(pack_glb(doc, blob))
    with pytest.raises(EngineError) as refused:
        load_gltf(path)
    assert refused.value.code == errors.INVALID_GLTF
    assert refused.value.field == f"textures[0].extensions.{WEBP}.source"


def test_a_corrupt_webp_is_invalid_gltf_naming_the_image(tmp_path):
    payload = bytearray(_webp(WEBP_PIXELS))
    payload[20:] = bytes(len(payload) - 20)  # a RIFF/WEBP header, garbage after it
    path = write(tmp_path / "corrupt.glb", fallback=False, required=True, payload=bytes(payload))
    with pytest.raises(EngineError) as refused:
        load_gltf(path)
    assert refused.value.code == errors.INVALID_GLTF and refused.value.field == "images[1]"


def test_a_webp_over_the_pixel_limit_is_refused_before_decoding(tmp_path):
    path = write(tmp_path / "big.glb", fallback=False, required=True)
    with pytest.raises(EngineError) as refused:
        texture_of(path, max_image_pixels=64)  # the ramp is 128 pixels
    assert refused.value.code == errors.GLTF_LIMIT_EXCEEDED


def test_webp_bytes_in_a_file_that_does_not_declare_the_extension_are_refused(tmp_path):
    """Only the decoders a file's extensions call for see its bytes."""
    path = write(tmp_path / "sneaky.glb", fallback=False, required=True)
    doc, blob = unpack_glb(path.read_bytes())
    texture = doc["textures"][0]
    texture["source"] = texture.pop("extensions")[WEBP]["source"]
    doc.pop("extensionsUsed"), doc.pop("extensionsRequired")
    path.write_bytes(pack_glb(doc, blob))
    with pytest.raises(EngineError) as refused:
        load_gltf(path)
    assert refused.value.code == errors.INVALID_GLTF and "cannot be decoded" in str(refused.value)
