from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from engine import EngineError, load_gltf
from engine import errors as codes
from engine.gltf_write import GltfBuilder, pack_glb, unpack_glb
from engine.meshes import cube


def test_morph_cube_names_deltas_and_default_weights(morph_cube_path):
    asset = load_gltf(morph_cube_path)
    assert [m.name for m in asset.meshes] == ["cube"]
    mesh = asset.meshes[0]
    assert mesh.target_names == ["stretchX", "stretchY", "shrink"]
    assert mesh.weights == [0.0, 0.0, 0.25]
    prim = mesh.primitives[0]
    assert prim.vertex_count == 24 and prim.triangle_count == 12
    assert len(prim.targets) == 3
    expected = cube(1.0)
    np.testing.assert_allclose(prim.positions, expected["positions"])
    np.testing.assert_allclose(prim.targets[2].positions, -0.5 * expected["positions"])
    assert not prim.targets[0].normals.any()  # absent in the file -> zeros
    assert asset.materials[prim.material].base_color_factor == pytest.approx((0.9, 0.4, 0.2, 1.0))
    lo, hi = asset.bounds()
    np.testing.assert_allclose(lo, [-0.5] * 3)
    np.testing.assert_allclose(hi, [0.5] * 3)
    assert asset.target_names == ["stretchX", "stretchY", "shrink"]


def test_multi_node_hierarchy_with_trs_and_matrix(tmp_path):
    b = GltfBuilder()
    m = b.add_mesh([cube(1.0)], "unit")
    root = b.add_node("root", translation=(10, 0, 0), scale=(2, 2, 2))
    arm = b.add_node(
        "arm",
        translation=(0, 1, 0),
        rotation=(0, 0, np.sin(np.pi / 4), np.cos(np.pi / 4)),
        parent=root,
    )
    matrix = np.eye(4)
    matrix[:3, 3] = (0, 0, 3)
    b.add_node("hand", mesh=m, matrix=matrix, parent=arm)
    b.add_node("lonely", mesh=m, translation=(-5, 0, 0))
    asset = load_gltf(b.save(tmp_path / "tree.glb"))
    assert [n.name for n in asset.nodes] == ["root", "arm", "hand", "lonely"]
    assert asset.roots == [0, 3]
    assert asset.nodes[0].children == [1] and asset.nodes[1].children == [2]
    assert asset.nodes[2].transform.matrix is not None
    world = asset.world_matrices()
    # hand origin: (0,0,3) -> rotated about z (unchanged) -> +(0,1,0) -> scaled 2 -> +(10,0,0)
    np.testing.assert_allclose(world[2][:3, 3], [10, 2, 6], atol=1e-5)
    # arm's 90 degree z rotation maps +x to +y, times the parent's scale 2
    np.testing.assert_allclose(world[2][:3, 0], [0, 2, 0], atol=1e-5)
    lo, hi = asset.bounds()
    np.testing.assert_allclose(lo, [-5.5, -0.5, -0.5], atol=1e-5)
    np.testing.assert_allclose(hi, [11, 3, 7], atol=1e-5)


def test_several_primitives_per_mesh_and_embedded_texture(sphere_scene_path, tmp_path):
    asset = load_gltf(sphere_scene_path)
    box = asset.meshes[1]
    texture = asset.materials[box.primitives[0].material].base_color_texture
    assert texture is not None and texture.shape == (64, 64, 4) and texture.dtype == np.uint8
    b = GltfBuilder()
    red, blue = b.add_material((1, 0, 0, 1)), b.add_material((0, 0, 1, 1))
    b.add_node("two", mesh=b.add_mesh([dict(cube(), material=red), dict(cube(0.5), material=blue)]))
    two = load_gltf(b.save(tmp_path / "two.glb"))
    assert [p.material for p in two.meshes[0].primitives] == [0, 1]


@pytest.mark.parametrize("embed", [False, True], ids=["external-bin", "data-uri"])
def test_gltf_json_with_external_or_embedded_buffer(morph_cube_path, tmp_path, embed):
    glb = load_gltf(morph_cube_path)
    b = GltfBuilder()
    mesh = cube(1.0)
    b.add_node(
        "cube",
        mesh=b.add_mesh(
            [dict(mesh, targets=[{"POSITION": mesh["positions"], "NORMAL": None}])], "c", ["grow"]
        ),
    )
    path = b.save(tmp_path / "sub dir" / "cube.gltf", embed=embed)
    assert path.with_suffix(".bin").exists() != embed
    asset = load_gltf(path)
    np.testing.assert_allclose(
        asset.meshes[0].primitives[0].positions, glb.meshes[0].primitives[0].positions
    )
    assert asset.meshes[0].target_names == ["grow"]


def _quantized_triangle(tmp_path, required):
    """Hand-written .gltf: uint16-normalized interleaved positions, uint8 indices and a
    sparse morph target that moves only vertex 2."""
    positions = np.array([[0, 0, 0], [65535, 0, 0], [0, 65535, 0]], np.uint16)
    normals = np.array([[0, 0, 127], [0, 0, 127], [0, 0, 127]], np.int8)
    interleaved = b"".join(
        p.tobytes() + b"\0\0" + n.tobytes() + b"\0" for p, n in zip(positions, normals, strict=True)
    )
    indices = np.array([0, 1, 2, 0], np.uint8).tobytes()  # padded to 4 bytes
    sparse_idx = np.array([2], np.uint16).tobytes() + b"\0\0"
    sparse_val = np.array([0.0, 0.5, 0.0], np.float32).tobytes()
    blob = interleaved + indices + sparse_idx + sparse_val
    doc = {
        "asset": {"version": "2.0"},
        "extensionsUsed": ["KHR_mesh_quantization"],
        "extensionsRequired": required,
        "buffers": [
            {
                "byteLength": len(blob),
                "uri": "data:application/octet-stream;base64," + base64.b64encode(blob).decode(),
            }
        ],
        "bufferViews": [
            {"buffer": 0, "byteOffset": 0, "byteLength": 36, "byteStride": 12},
            {"buffer": 0, "byteOffset": 36, "byteLength": 3},
            {"buffer": 0, "byteOffset": 40, "byteLength": 2},
            {"buffer": 0, "byteOffset": 44, "byteLength": 12},
        ],
        "accessors": [
            {
                "bufferView": 0,
                "componentType": 5123,
                "normalized": True,
                "count": 3,
                "type": "VEC3",
            },
            {
                "bufferView": 0,
                "byteOffset": 8,
                "componentType": 5120,
                "normalized": True,
                "count": 3,
                "type": "VEC3",
            },
            {"bufferView": 1, "componentType": 5121, "count": 3, "type": "SCALAR"},
            {
                "componentType": 5126,
                "count": 3,
                "type": "VEC3",
                "sparse": {
                    "count": 1,
                    "indices": {"bufferView": 2, "componentType": 5123},
                    "values": {"bufferView": 3},
                },
            },
        ],
        "meshes": [
            {
                "primitives": [
                    {
                        "attributes": {"POSITION": 0, "NORMAL": 1},
                        "indices": 2,
                        "targets": [{"POSITION": 3}],
                    }
                ],
                "extras": {"targetNames": ["lift"]},
                "weights": [0.5],
            }
        ],
        "nodes": [{"mesh": 0}],
        "scenes": [{"nodes": [0]}],
    }
    path = tmp_path / "quantized.gltf"
    path.write_text(json.dumps(doc))
    return path


def test_quantized_strided_and_sparse_accessors(tmp_path):
    asset = load_gltf(_quantized_triangle(tmp_path, ["KHR_mesh_quantization"]))
    prim = asset.meshes[0].primitives[0]
    np.testing.assert_allclose(prim.positions, [[0, 0, 0], [1, 0, 0], [0, 1, 0]])
    np.testing.assert_allclose(prim.normals, [[0, 0, 1]] * 3)
    assert prim.indices.tolist() == [0, 1, 2] and prim.indices.dtype == np.uint32
    np.testing.assert_allclose(prim.targets[0].positions, [[0, 0, 0], [0, 0, 0], [0, 0.5, 0]])
    assert asset.meshes[0].weights == [0.5]


@pytest.mark.parametrize(
    "extension",
    ["EXT_mesh_gpu_instancing", "KHR_materials_transmission", "EXT_meshopt_compression"],
)
def test_unsupported_required_extension_names_extension_and_file(tmp_path, extension, monkeypatch):
    import engine.gltf

    # As where the compressed extra is not installed: the decoder's extension is refused.
    monkeypatch.setattr(
        engine.gltf, "SUPPORTED_REQUIRED_EXTENSIONS", frozenset({"KHR_mesh_quantization"})
    )
    b = GltfBuilder()
    b.add_node("c", mesh=b.add_mesh([cube()]))
    b.require_extension(extension)
    path = b.save(tmp_path / "needs_ext.glb")
    with pytest.raises(EngineError) as info:
        load_gltf(path)
    assert info.value.code == codes.UNSUPPORTED_GLTF_EXTENSION == "unsupportedGltfExtension"
    assert extension in info.value.message and "needs_ext.glb" in info.value.message
    # a decoder's extension names the extra that brings it
    assert ("avatarkit[compressed]" in info.value.message) == (extension.startswith("EXT_meshopt"))


def test_unsupported_extension_in_gltf_json(tmp_path):
    with pytest.raises(EngineError) as info:
        load_gltf(
            _quantized_triangle(tmp_path, ["KHR_mesh_quantization", "EXT_mesh_gpu_instancing"])
        )
    assert info.value.code == codes.UNSUPPORTED_GLTF_EXTENSION
    assert (
        "EXT_mesh_gpu_instancing" in info.value.message
        and "KHR_mesh_quantization" not in info.value.message
    )


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(EngineError) as info:
        load_gltf(tmp_path / "nope.glb")
    assert info.value.code == codes.ASSET_NOT_FOUND
    bad = tmp_path / "bad.glb"
    bad.write_bytes(b"glTF\x02\x00\x00\x00garbage")
    with pytest.raises(EngineError) as info:
        load_gltf(bad)
    assert info.value.code == codes.INVALID_GLTF


def test_missing_external_buffer(tmp_path):
    b = GltfBuilder()
    b.add_node("c", mesh=b.add_mesh([cube()]))
    path = b.save(tmp_path / "cube.gltf")
    path.with_suffix(".bin").unlink()
    with pytest.raises(EngineError) as info:
        load_gltf(path)
    assert info.value.code == codes.ASSET_NOT_FOUND and "cube.bin" in info.value.message


def test_out_of_range_index_is_invalid(tmp_path):
    b = GltfBuilder()
    mesh = cube()
    mesh["indices"] = mesh["indices"].copy()
    mesh["indices"][5] = 999
    b.add_node("c", mesh=b.add_mesh([mesh]))
    with pytest.raises(EngineError) as info:
        load_gltf(b.save(tmp_path / "bad_index.glb"))
    assert info.value.code == codes.INVALID_GLTF


@pytest.mark.parametrize("mode", [5, 6], ids=["strip", "fan"])
def test_triangle_strips_and_fans_become_triangle_lists(tmp_path, mode):
    """A strip and a fan of four triangles, each facing +z as the spec winds them (they
    were skipped with a warning: a mesh of strips drew nothing)."""
    angles = np.linspace(0.0, np.pi, 5)
    if mode == 5:  # a zig-zag band: top, bottom, top, ...
        x = np.arange(6, dtype=np.float32)
        positions = np.stack([x, 1.0 - np.arange(6) % 2, np.zeros(6)], 1).astype(np.float32)
    else:  # a half disc around the origin, counter-clockwise
        rim = np.stack([np.cos(angles), np.sin(angles), np.zeros(5)], 1)
        positions = np.concatenate([[[0.0, 0.0, 0.0]], rim]).astype(np.float32)
    b = GltfBuilder()
    b.add_node("m", mesh=b.add_mesh([dict(positions=positions, indices=np.arange(6))]))
    path = b.save(tmp_path / "strip.glb")
    doc, blob = unpack_glb(path.read_bytes())
    doc["meshes"][0]["primitives"][0]["mode"] = mode
    path.write_bytes(pack_glb(doc, blob))
    (prim,) = load_gltf(path).meshes[0].primitives
    tri = prim.indices.reshape(-1, 3)
    assert len(tri) == 4
    a, b_, c = (prim.positions[tri[:, k]] for k in range(3))
    assert (np.cross(b_ - a, c - a)[:, 2] > 0).all()  # every triangle faces +z
    want = (
        [[0, 1, 2], [1, 3, 2], [2, 3, 4], [3, 5, 4]]
        if mode == 5
        else [[1, 2, 0], [2, 3, 0], [3, 4, 0], [4, 5, 0]]
    )
    assert tri.tolist() == want
