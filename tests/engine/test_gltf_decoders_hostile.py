"""The compressed-glTF decoders on hostile input: every number the meshopt, Draco and KTX2
paths read is checked before a decoder runs, and a corrupt stream is one coded
``EngineError``. The files are real ones (three.js's facecap.glb from openfacefx, a Draco
file written by DracoPy's encoder) edited the way an attacker would."""

from __future__ import annotations

import importlib.util
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from engine import errors as codes
from engine.errors import EngineError
from engine.gltf import load_gltf
from engine.gltf_write import GltfBuilder, pack_glb, unpack_glb
from engine.meshes import cube

MESHOPT = "EXT_meshopt_compression"


@pytest.fixture(scope="module")
def facecap() -> tuple[dict, bytes]:
    spec = importlib.util.find_spec("openfacefx")
    if spec is None or spec.origin is None:
        pytest.skip("openfacefx (the test extra) is not installed")
    path = Path(spec.origin).parent / "studio_web" / "assets" / "facecap.glb"
    doc, blob = unpack_glb(path.read_bytes())
    assert blob is not None
    return doc, blob


def edited(tmp_path: Path, source: tuple[dict, bytes], edit) -> Path:
    doc, blob = json.loads(json.dumps(source[0])), bytearray(source[1])
    edit(doc, blob)
    path = tmp_path / "edited.glb"
    path.write_bytes(pack_glb(doc, bytes(blob)))
    return path


def refused(path: Path, code: str = codes.INVALID_GLTF) -> EngineError:
    with pytest.raises(EngineError) as info:
        load_gltf(path)
    assert info.value.code == code, info.value
    return info.value


def test_the_real_file_loads(facecap, tmp_path):
    load_gltf(edited(tmp_path, facecap, lambda doc, blob: None))  # the baseline edits start from


def test_truncated_meshopt_stream(facecap, tmp_path):
    def cut(doc, blob):
        doc["bufferViews"][1]["extensions"][MESHOPT]["byteLength"] = 64

    error = refused(edited(tmp_path, facecap, cut))
    assert "meshopt" in error.message and error.field == "bufferViews[1]"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("count", 10**9),
        ("byteStride", 7),
        ("mode", "SPIRAL"),
        ("mode", {"a": 1}),  # unhashable: found by fuzzing (a bare TypeError before)
        ("filter", ["NONE"]),
        ("buffer", 9),
        ("byteOffset", -4),
    ],
)
def test_meshopt_numbers_are_checked_before_decoding(facecap, tmp_path, key, value):
    def bad(doc, blob):
        doc["bufferViews"][1]["extensions"][MESHOPT][key] = value

    error = refused(edited(tmp_path, facecap, bad))
    assert error.field is not None and error.field.startswith("bufferViews[1]")


def test_a_plain_view_may_not_read_the_fallback_buffer(facecap, tmp_path):
    def plain(doc, blob):
        del doc["bufferViews"][1]["extensions"]

    error = refused(edited(tmp_path, facecap, plain))
    assert "fallback" in error.message


def _ktx2_offset(doc) -> int:
    image = doc["images"][0]
    return doc["bufferViews"][image["bufferView"]].get("byteOffset", 0)


def test_ktx2_claiming_a_huge_image_is_refused_before_transcoding(facecap, tmp_path):
    def huge(doc, blob):
        struct.pack_into("<II", blob, _ktx2_offset(doc) + 20, 60_000, 60_000)

    error = refused(edited(tmp_path, facecap, huge), codes.GLTF_LIMIT_EXCEEDED)
    assert "60000x60000" in error.message and error.field == "images[0]"


def test_corrupt_ktx2_payload(facecap, tmp_path):
    def scramble(doc, blob):
        start = _ktx2_offset(doc) + 200
        blob[start : start + 4000] = np.random.default_rng(1).bytes(4000)

    refused(edited(tmp_path, facecap, scramble))


def draco_cube(tmp_path: Path) -> tuple[dict, bytes]:
    import DracoPy

    b = GltfBuilder()
    b.add_node("c", mesh=b.add_mesh([dict(cube(1.0), material=b.add_material())]))
    doc, blob = unpack_glb(b.save(tmp_path / "cube.glb").read_bytes())
    mesh = cube(1.0)
    stream = DracoPy.encode(mesh["positions"], mesh["indices"].reshape(-1, 3), preserve_order=True)
    data = bytearray(blob or b"")
    doc["bufferViews"].append({"buffer": 0, "byteOffset": len(data), "byteLength": len(stream)})
    data += stream
    doc["buffers"][0]["byteLength"] = len(data)
    prim = doc["meshes"][0]["primitives"][0]
    position = dict(doc["accessors"][prim["attributes"]["POSITION"]])
    position.pop("bufferView")
    position.pop("byteOffset", None)
    doc["accessors"].append(position)
    prim["attributes"] = {"POSITION": len(doc["accessors"]) - 1}
    prim["extensions"] = {
        "KHR_draco_mesh_compression": {
            "bufferView": len(doc["bufferViews"]) - 1,
            "attributes": {"POSITION": 0},
        }
    }
    doc["extensionsUsed"] = doc["extensionsRequired"] = ["KHR_draco_mesh_compression"]
    return doc, bytes(data)


@pytest.fixture
def draco(tmp_path) -> tuple[dict, bytes]:
    if importlib.util.find_spec("DracoPy") is None:
        pytest.skip("DracoPy (the compressed extra) is not installed")
    return draco_cube(tmp_path)


def test_draco_cube_loads(draco, tmp_path):
    asset = load_gltf(edited(tmp_path, draco, lambda doc, blob: None))
    np.testing.assert_allclose(
        asset.meshes[0].primitives[0].positions, cube(1.0)["positions"], atol=1e-3
    )


def test_corrupt_draco_stream(draco, tmp_path):
    def scramble(doc, blob):
        view = doc["bufferViews"][-1]
        start = view["byteOffset"] + 4
        blob[start : start + view["byteLength"] - 4] = bytes(view["byteLength"] - 4)

    error = refused(edited(tmp_path, draco, scramble))
    assert "Draco" in error.message


def test_draco_output_must_match_the_accessors(draco, tmp_path):
    def lie(doc, blob):
        prim = doc["meshes"][0]["primitives"][0]
        doc["accessors"][prim["attributes"]["POSITION"]]["count"] = 3

    error = refused(edited(tmp_path, draco, lie))
    assert "accessor declares" in error.message or "POSITION" in error.message


def test_without_a_transcoder_an_optional_ktx2_texture_is_left_out(
    facecap, tmp_path, monkeypatch, caplog
):
    import engine.gltf

    monkeypatch.setitem(engine.gltf.DECODERS, "KHR_texture_basisu", False)

    def optional(doc, blob):
        doc["extensionsRequired"].remove("KHR_texture_basisu")

    asset = load_gltf(edited(tmp_path, facecap, optional))  # drawn untextured, not refused
    assert asset.materials[0].base_color_texture is None
    assert "textures[0] is KTX 2 and no transcoder is installed" in caplog.text
    with pytest.raises(EngineError) as info:  # required: refused, naming it and the extra
        monkeypatch.setattr(
            engine.gltf, "SUPPORTED_REQUIRED_EXTENSIONS", frozenset({"KHR_mesh_quantization"})
        )
        load_gltf(edited(tmp_path, facecap, lambda doc, blob: None))
    assert info.value.code == codes.UNSUPPORTED_GLTF_EXTENSION
    assert (
        "KHR_texture_basisu" in info.value.message and "avatarkit[compressed]" in info.value.message
    )


@pytest.mark.parametrize("view", [-1, 999, "0"])
def test_draco_buffer_view_out_of_range(draco, tmp_path, view):
    def point(doc, blob):
        doc["meshes"][0]["primitives"][0]["extensions"]["KHR_draco_mesh_compression"][
            "bufferView"
        ] = view

    assert "bufferView index in range" in refused(edited(tmp_path, draco, point)).message


def _stream_regions(doc: dict) -> list[tuple[int, int]]:
    """(offset, length) of every compressed stream and image payload in the GLB's blob."""
    views = doc["bufferViews"]
    found = [
        (ext.get("byteOffset", 0), ext["byteLength"])
        for v in views
        if (ext := (v.get("extensions") or {}).get(MESHOPT))
    ]
    found += [
        (views[i["bufferView"]].get("byteOffset", 0), views[i["bufferView"]]["byteLength"])
        for i in doc.get("images", [])
        if "bufferView" in i
    ]
    for mesh in doc["meshes"]:
        for prim in mesh["primitives"]:
            if d := (prim.get("extensions") or {}).get("KHR_draco_mesh_compression"):
                view = views[d["bufferView"]]
                found.append((view.get("byteOffset", 0), view["byteLength"]))
    return found


@pytest.mark.parametrize("source", ["facecap", "draco"])
def test_random_damage_to_the_streams_is_loaded_or_coded(source, request, tmp_path):
    """The native decoders see corrupted meshopt, Basis and Draco bytes: each load either
    succeeds or raises a coded EngineError (a crash would end the test run)."""
    doc, blob = request.getfixturevalue(source)
    regions = _stream_regions(doc)
    assert regions
    rng = np.random.default_rng(7)
    outcomes: dict[str, int] = {}
    for k in range(40):
        data = bytearray(blob)
        offset, length = regions[k % len(regions)]
        at = offset + rng.integers(0, length, int(rng.choice([1, 8, 64])))
        data_view = np.frombuffer(data, np.uint8)
        data_view[at] = rng.integers(0, 256, len(at), dtype=np.uint8)
        path = tmp_path / f"{k}.glb"
        path.write_bytes(pack_glb(doc, bytes(data)))
        try:
            load_gltf(path)
            outcomes["loaded"] = outcomes.get("loaded", 0) + 1
        except EngineError as error:
            assert error.code in (codes.INVALID_GLTF, codes.GLTF_LIMIT_EXCEEDED), error
            outcomes[error.code] = outcomes.get(error.code, 0) + 1
    assert outcomes.get(codes.INVALID_GLTF, 0) > 0  # the damage reached a decoder
