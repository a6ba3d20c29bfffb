"""Hostile glTF files (a downloaded avatar is untrusted input): each gives one coded
``EngineError`` quickly and cheaply, and nothing outside the file's folder is opened."""

from __future__ import annotations

import copy
import json
import os
import struct
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest

from engine import EngineError, load_gltf
from engine import errors as codes
from engine.gltf_validate import GltfLimits, json_depth
from engine.gltf_write import pack_glb

pytestmark = pytest.mark.timeout(20)


def triangle() -> tuple[dict, bytes]:
    """The smallest valid GLB document: one indexed triangle, a node, a scene."""
    positions = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32).tobytes()  # 36 bytes
    indices = np.array([0, 1, 2], np.uint16).tobytes() + b"\0\0"
    doc = {
        "asset": {"version": "2.0"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"name": "tri", "mesh": 0}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}, "indices": 1}]}],
        "accessors": [
            {"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3"},
            {"bufferView": 1, "componentType": 5123, "count": 3, "type": "SCALAR"},
        ],
        "bufferViews": [
            {"buffer": 0, "byteOffset": 0, "byteLength": 36},
            {"buffer": 0, "byteOffset": 36, "byteLength": 6},
        ],
        "buffers": [{"byteLength": 44}],
    }
    return doc, positions + indices


def write(tmp_path: Path, doc: dict, blob: bytes | None = None, name: str = "hostile.glb") -> Path:
    path = tmp_path / name
    path.write_bytes(pack_glb(doc, blob))
    return path


def refused(path: Path, code: str, **kwargs) -> EngineError:
    """Load ``path``; it must fail with ``code`` within 1 s of CPU and 256 MB (CPU time, not
    wall time: a loaded CI machine must not turn a fast refusal into a failure)."""
    tracemalloc.start()
    start = time.process_time()
    try:
        with pytest.raises(EngineError) as info:
            load_gltf(path, **kwargs)
        elapsed = time.process_time() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.code == code, info.value
    assert elapsed < 1.0, f"{elapsed:.2f} s"
    assert peak < 256 << 20, f"{peak / 2**20:.0f} MB"
    assert info.value.path == str(path)
    return info.value


def test_the_reference_triangle_loads(tmp_path):
    asset = load_gltf(write(tmp_path, *triangle()))
    assert asset.meshes[0].primitives[0].triangle_count == 1 and asset.roots == [0]


# -- external uris -------------------------------------------------------------------------


HOSTILE_URIS = [
    "../../../../etc/passwd",
    "/proc/self/environ",
    "/etc/passwd",
    "..%2F..%2F..%2Fetc%2Fpasswd",
    "sub/../../secret.bin",
    "file:///etc/passwd",
    "http://127.0.0.1:9/x.bin",
    "C:/Windows/win.ini",
    "..\\secret.bin",
    "a\0b.bin",
]


@pytest.mark.parametrize("uri", HOSTILE_URIS)
@pytest.mark.parametrize("where", ["buffer", "image"])
def test_external_uris_stay_inside_the_folder(tmp_path, opened, uri, where):
    (tmp_path / "secret.bin").write_bytes(b"\0" * 64)  # what "../secret.bin" would reach
    package = tmp_path / "package"
    package.mkdir()
    doc, blob = triangle()
    if where == "buffer":
        doc["buffers"] = [{"byteLength": 44, "uri": uri}]
        path = package / "hostile.gltf"
        path.write_text(json.dumps(doc))
    else:
        doc["images"] = [{"uri": uri}]
        doc["textures"] = [{"source": 0}]
        doc["materials"] = [{"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}}}]
        path = write(package, doc, blob)
    error = refused(path, codes.GLTF_URI_NOT_ALLOWED)
    assert error.field and error.field.endswith(".uri")
    assert all(p.is_relative_to(package.resolve()) for p in opened), opened


def test_a_symlink_out_of_the_folder_is_refused(tmp_path, opened):
    (tmp_path / "outside.bin").write_bytes(bytes(44))
    package = tmp_path / "package"
    package.mkdir()
    (package / "data.bin").symlink_to(tmp_path / "outside.bin")
    doc, _ = triangle()
    doc["buffers"] = [{"byteLength": 44, "uri": "data.bin"}]
    path = package / "linked.gltf"
    path.write_text(json.dumps(doc))
    refused(path, codes.GLTF_URI_NOT_ALLOWED)
    assert all(p.is_relative_to(package.resolve()) for p in opened), opened


def test_a_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "pipe.bin")
    doc, _ = triangle()
    doc["buffers"] = [{"byteLength": 44, "uri": "pipe.bin"}]
    path = tmp_path / "fifo.gltf"
    path.write_text(json.dumps(doc))
    refused(path, codes.GLTF_URI_NOT_ALLOWED)


def test_uris_inside_the_folder_still_load(tmp_path):
    doc, blob = triangle()
    (tmp_path / "bin dir").mkdir()
    (tmp_path / "bin dir" / "tri.bin").write_bytes(blob)
    doc["buffers"] = [{"byteLength": 44, "uri": "bin%20dir/./tri.bin"}]
    path = tmp_path / "ok.gltf"
    path.write_text(json.dumps(doc))
    assert load_gltf(path).meshes[0].primitives[0].vertex_count == 3


# -- hierarchy -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "nodes, scene_nodes",
    [
        ([{"mesh": 0, "children": [0]}], [0]),  # its own child
        ([{"mesh": 0, "children": [1]}, {"children": [0]}], [0]),  # 0 -> 1 -> 0 under a root
        ([{"mesh": 0}, {"children": [2]}, {"children": [1]}], [0]),  # a cycle no scene reaches
        ([{"mesh": 0, "children": [2]}, {"children": [2]}, {}], [0, 1]),  # two parents
        ([{"mesh": 0, "children": [1, 1]}, {}], [0]),  # the same child twice
        ([{"mesh": 0, "children": [1]}, {}], [0, 1]),  # a scene root that has a parent
    ],
    ids=["self", "two-cycle", "detached-cycle", "two-parents", "child-twice", "root-with-parent"],
)
def test_node_cycles_and_shared_children_are_refused(tmp_path, nodes, scene_nodes):
    doc, blob = triangle()
    doc["nodes"], doc["scenes"] = nodes, [{"nodes": scene_nodes}]
    error = refused(write(tmp_path, doc, blob), codes.INVALID_GLTF)
    assert error.field.startswith(("nodes[", "scenes["))


def test_a_long_chain_is_walked_without_recursion(tmp_path):
    doc, blob = triangle()
    n = 5000
    doc["nodes"] = [{"children": [i + 1]} for i in range(n - 1)] + [{"mesh": 0}]
    asset = load_gltf(write(tmp_path, doc, blob))
    assert len(asset.world_matrices()) == n
    assert asset.bounds()[1][0] == pytest.approx(1.0)


def test_the_avatar_layer_gets_a_coded_error_for_a_cycle(tmp_path):
    from avatarkit.avatar import Avatar
    from avatarkit.errors import AvatarKitError, ErrorCode

    doc, blob = triangle()
    doc["nodes"] = [{"mesh": 0, "children": [0]}]
    with pytest.raises(AvatarKitError) as info:
        Avatar.from_file(write(tmp_path, doc, blob))
    assert (
        info.value.code is ErrorCode.INCOMPATIBLE_AVATAR_ASSET
        and "invalidGltf" in info.value.message
    )


# -- sizes and memory ----------------------------------------------------------------------
def test_a_huge_accessor_without_a_buffer_view_is_refused_unallocated(tmp_path):
    doc, blob = triangle()
    doc["accessors"][0] = {
        "componentType": 5126,
        "count": 2**26,
        "type": "VEC3",
    }  # 768 MiB of zeros
    path = write(tmp_path, doc, blob)
    assert path.stat().st_size < 1024
    error = refused(path, codes.GLTF_LIMIT_EXCEEDED)
    assert error.field == "accessors[0].count"


def test_many_accessors_under_the_count_limit_hit_the_decoding_budget(tmp_path):
    doc, blob = triangle()
    count = 1 << 22  # under max_accessor_count; 48 MiB each, decoded once per use
    doc["accessors"][0] = {"componentType": 5126, "count": count, "type": "VEC3"}
    doc["accessors"].append({"componentType": 5126, "count": count, "type": "VEC3"})
    doc["meshes"][0]["primitives"] = [
        {"attributes": {"POSITION": 0, "NORMAL": 2}} for _ in range(8)
    ]
    error = refused(write(tmp_path, doc, blob), codes.GLTF_LIMIT_EXCEEDED)
    assert error.field.startswith("accessors[")


def test_limits_are_configurable(tmp_path):
    doc, blob = triangle()
    doc["nodes"] = [{"mesh": 0}] + [{} for _ in range(20)]
    path = write(tmp_path, doc, blob)
    assert len(load_gltf(path).nodes) == 21
    error = refused(path, codes.GLTF_LIMIT_EXCEEDED, limits=GltfLimits(max_nodes=10))
    assert error.field == "nodes"


def test_an_image_claiming_gigapixels_is_refused_before_decoding(tmp_path):
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8000, 8000, 8, 6, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    doc, blob = triangle()
    doc["bufferViews"].append({"buffer": 0, "byteOffset": 44, "byteLength": len(png)})
    doc["buffers"][0]["byteLength"] = 44 + len(png)
    doc["images"] = [{"bufferView": 2, "mimeType": "image/png"}]
    doc["textures"] = [{"source": 0}]
    doc["materials"] = [{"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}}}]
    doc["meshes"][0]["primitives"][0]["material"] = 0
    error = refused(write(tmp_path, doc, blob + png), codes.GLTF_LIMIT_EXCEEDED)
    assert error.field == "images[0]"


def test_deeply_nested_json_is_refused_without_recursion(tmp_path):
    doc, blob = triangle()
    path = tmp_path / "deep.glb"
    data = pack_glb(doc, blob)
    nested = b'"extras":' + b"[" * 100_000 + b"]" * 100_000 + b","
    text = data[20 : 20 + struct.unpack_from("<I", data, 12)[0]].replace(
        b'"asset":', nested + b'"asset":', 1
    )
    text += b" " * (-len(text) % 4)
    rest = data[20 + struct.unpack_from("<I", data, 12)[0] :]
    body = struct.pack("<II", len(text), 0x4E4F534A) + text + rest
    path.write_bytes(b"glTF" + struct.pack("<II", 2, 12 + len(body)) + body)
    refused(path, codes.GLTF_LIMIT_EXCEEDED)
    assert json_depth(b'{"a": "[[[[", "b": [[1]]}') == 3


# -- indices and shapes --------------------------------------------------------------------
def _set(doc: dict, where: str, value) -> None:
    keys = [
        int(k) if k.isdigit() else k for k in where.replace("[", ".").replace("]", "").split(".")
    ]
    target = doc
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value


@pytest.mark.parametrize(
    "where, value",
    [
        ("scene", 3),
        ("scenes[0].nodes[0]", 7),
        ("nodes[0].children", [9]),
        ("nodes[0].mesh", 2),
        ("nodes[0].mesh", -1),
        ("nodes[0].mesh", True),
        ("meshes[0].primitives[0].attributes.POSITION", 5),
        ("meshes[0].primitives[0].indices", 5),
        ("meshes[0].primitives[0].material", 0),
        ("accessors[0].bufferView", 4),
        ("bufferViews[0].buffer", 1),
        ("nodes[0].translation", [1, 2]),
        ("nodes[0].rotation", [0, 0, 1]),
        ("nodes[0].scale", [1]),
        ("nodes[0].matrix", [1, 0, 0]),
        ("nodes[0].translation", [0, "x", 0]),
        ("accessors[0].count", 4),  # 48 bytes from a 36-byte view
        ("accessors[0].byteOffset", 4),
        ("accessors[0].componentType", 5127),
        ("accessors[0].type", "VEC7"),
        ("accessors[1].type", "VEC2"),  # indices must be SCALAR
        ("bufferViews[1].byteLength", 100),  # outside the buffer
        ("bufferViews[0].byteStride", 1000),
        ("buffers[0].byteLength", 4096),  # more than the binary chunk
        ("buffers", [{"byteLength": 44}, {"byteLength": 8}]),  # a second buffer with no data
        ("meshes[0].primitives[0].attributes", {"NORMAL": 0}),  # no POSITION
        ("meshes[0].primitives[0].attributes.NORMAL", 1),  # count and type differ from POSITION
        ("meshes[0].primitives[0].targets", [{"POSITION": 1}]),
        ("nodes", "many"),
        ("meshes[0].primitives", None),
        ("extensionsRequired", 5),
    ],
)
def test_out_of_range_indices_and_bad_shapes_are_invalid(tmp_path, where, value):
    doc, blob = triangle()
    _set(doc, where, value)
    error = refused(write(tmp_path, doc, blob), codes.INVALID_GLTF)
    assert error.field is not None and error.field.split("[")[0].split(".")[0] in where


def test_a_sparse_index_out_of_range_is_invalid(tmp_path):
    doc, blob = triangle()
    blob = blob + np.array([7, 0], np.uint16).tobytes() + np.array([1, 1, 1], np.float32).tobytes()
    doc["bufferViews"] += [
        {"buffer": 0, "byteOffset": 44, "byteLength": 4},
        {"buffer": 0, "byteOffset": 48, "byteLength": 12},
    ]
    doc["buffers"][0]["byteLength"] = len(blob)
    doc["accessors"][0]["sparse"] = {
        "count": 1,
        "indices": {"bufferView": 2, "componentType": 5123},
        "values": {"bufferView": 3},
    }
    error = refused(write(tmp_path, doc, blob), codes.INVALID_GLTF)
    assert error.field == "accessors[0].sparse.indices"


def test_non_finite_numbers_are_invalid(tmp_path):
    doc, blob = triangle()
    path = tmp_path / "nan.glb"
    path.write_bytes(pack_glb(doc, blob).replace(b'"name":"tri"', b'"name":NaN  ', 1))
    refused(path, codes.INVALID_GLTF)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_vertex_data_is_invalid(tmp_path, value):
    """NaN or infinity in a float accessor (found by fuzzing: a shifted byteOffset reads
    garbage floats) is refused naming the accessor, not passed on to bounds and framing."""
    doc, blob = triangle()
    data = bytearray(blob)
    struct.pack_into("<f", data, 16, value)  # the second vertex's y
    error = refused(write(tmp_path, doc, bytes(data)), codes.INVALID_GLTF)
    assert error.field == "accessors[0]"


@pytest.mark.parametrize("entry", [{"a": 1}, ["KHR_materials_unlit"], 7])
def test_extensions_required_entries_that_are_not_names(tmp_path, entry):
    """A dict or list where an extension name belongs (found by fuzzing: it raised a bare
    TypeError from the membership test) is a coded error."""
    doc, blob = triangle()
    doc["extensionsRequired"] = ["KHR_materials_unlit", entry]
    refused(write(tmp_path, doc, blob), codes.INVALID_GLTF)


# -- the container -------------------------------------------------------------------------
def _container_cases() -> dict[str, bytes]:
    good = pack_glb(*triangle())
    json_length = struct.unpack_from("<I", good, 12)[0]
    bin_at = 20 + json_length

    def patched(offset: int, fmt: str, value: int) -> bytes:
        data = bytearray(good)
        struct.pack_into(fmt, data, offset, value)
        return bytes(data)

    return {
        "json-chunk-longer-than-file": patched(12, "<I", 1 << 30),
        "bin-chunk-longer-than-file": patched(bin_at, "<I", 1 << 30),
        "header-length-too-big": patched(8, "<I", len(good) + 4),
        "header-length-too-small": patched(8, "<I", 12),
        "version-1": patched(4, "<I", 1),
        "first-chunk-not-json": patched(16, "<I", 0x004E4942),
        "truncated": good[:-10],
        "header-only": good[:12],
        "magic-only": good[:4],
        "json-not-utf8": good[:20] + b"\xff" * json_length + good[bin_at:],
    }


@pytest.mark.parametrize("case", list(_container_cases()))
def test_glb_container_lies_are_invalid(tmp_path, case):
    path = tmp_path / f"{case}.glb"
    path.write_bytes(_container_cases()[case])
    refused(path, codes.INVALID_GLTF)


def test_a_file_over_the_size_limit_is_not_read(tmp_path, opened):
    path = write(tmp_path, *triangle())
    refused(path, codes.GLTF_LIMIT_EXCEEDED, limits=GltfLimits(max_file_bytes=64))
    assert opened == []


def test_validation_leaves_the_document_untouched(tmp_path):
    doc, blob = triangle()
    before = copy.deepcopy(doc)
    load_gltf(write(tmp_path, doc, blob))
    assert doc == before


@pytest.mark.parametrize("fmt", ["BMP", "GIF", "TIFF"])
def test_images_other_than_png_and_jpeg_never_reach_a_decoder(tmp_path, fmt):
    import io

    from PIL import Image

    encoded = io.BytesIO()
    Image.new("RGB", (4, 4)).save(encoded, fmt)
    image = encoded.getvalue()
    doc, blob = triangle()
    doc["bufferViews"].append({"buffer": 0, "byteOffset": 44, "byteLength": len(image)})
    doc["buffers"][0]["byteLength"] = 44 + len(image)
    doc["images"] = [{"bufferView": 2}]
    doc["textures"] = [{"source": 0}]
    doc["materials"] = [{"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}}}]
    error = refused(write(tmp_path, doc, blob + image), codes.INVALID_GLTF)
    assert error.field == "images[0]"


def test_a_json_chunk_padded_with_nuls_still_loads(tmp_path):
    """Some exporters pad the JSON chunk with NULs instead of spaces: tolerated."""
    data = bytearray(pack_glb(*triangle()))
    json_length = struct.unpack_from("<I", data, 12)[0]
    text = bytes(data[20 : 20 + json_length]).rstrip(b" ")
    padded = text + b"\0" * (json_length - len(text) + 4)
    data[12:16] = struct.pack("<I", len(padded))
    data[20 : 20 + json_length] = padded
    struct.pack_into("<I", data, 8, len(data))
    path = tmp_path / "nul.glb"
    path.write_bytes(bytes(data))
    assert load_gltf(path).meshes[0].primitives[0].vertex_count == 3


def test_a_link_or_fifo_swapped_in_after_the_check_is_not_followed(tmp_path):
    """``read_confined`` opens with O_NOFOLLOW | O_NONBLOCK: what ``resolve_uri`` approved
    but was replaced since (a race) is refused, never followed or waited on."""
    from engine.gltf_validate import read_confined

    (tmp_path / "outside.bin").write_bytes(b"secret")
    (tmp_path / "link.bin").symlink_to(tmp_path / "outside.bin")
    os.mkfifo(tmp_path / "pipe.bin")
    (tmp_path / "big.bin").write_bytes(bytes(100))
    for name, code in [
        ("link.bin", codes.GLTF_URI_NOT_ALLOWED),
        ("pipe.bin", codes.GLTF_URI_NOT_ALLOWED),
        ("big.bin", codes.GLTF_LIMIT_EXCEEDED),
    ]:
        with pytest.raises(EngineError) as info:
            read_confined(tmp_path / name, 64, tmp_path / "x.gltf", "buffers[0].uri")
        assert info.value.code == code, name
    assert (
        read_confined(tmp_path / "outside.bin", 64, tmp_path / "x.gltf", "buffers[0].uri")
        == b"secret"
    )


def test_a_mesh_instanced_by_thousands_of_nodes_is_refused(tmp_path):
    """Valid glTF, but 10 000 nodes drawing a 1 024-primitive mesh is 10 M draws: bounds()
    alone took 107 s before the limit."""
    doc, blob = triangle()
    doc["meshes"][0]["primitives"] *= 1024
    doc["nodes"] = [{"mesh": 0} for _ in range(10_000)]
    doc["scenes"] = [{"nodes": list(range(10_000))}]
    error = refused(write(tmp_path, doc, blob), codes.GLTF_LIMIT_EXCEEDED)
    assert error.field.endswith(".mesh")


def test_thousands_of_tiny_images_are_refused_and_shared_ones_decoded_once(tmp_path, monkeypatch):
    import io

    from PIL import Image

    png = io.BytesIO()
    Image.new("RGBA", (1, 1)).save(png, "PNG")
    png = png.getvalue()
    doc, blob = triangle()
    doc["bufferViews"].append({"buffer": 0, "byteOffset": 44, "byteLength": len(png)})
    doc["buffers"][0]["byteLength"] = 44 + len(png)
    doc["images"] = [{"bufferView": 2}] * 20_000  # 20 000 decoder runs took 0.8 s
    doc["textures"] = [{"source": i} for i in range(20_000)]
    doc["materials"] = [
        {"pbrMetallicRoughness": {"baseColorTexture": {"index": i}}} for i in range(20_000)
    ]
    error = refused(write(tmp_path, doc, blob + png), codes.GLTF_LIMIT_EXCEEDED)
    assert error.field == "images"
    # One image behind many materials is decoded once and shared.
    doc["images"], doc["textures"] = [{"bufferView": 2}], [{"source": 0}]
    doc["materials"] = [{"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}}}] * 50
    opened = []
    real = Image.open
    monkeypatch.setattr(Image, "open", lambda *a, **k: opened.append(1) or real(*a, **k))
    asset = load_gltf(write(tmp_path, doc, blob + png))
    assert (
        len(opened) == 1
        and asset.materials[0].base_color_texture is asset.materials[-1].base_color_texture
    )
