"""Compressed variants of a real glTF file, made in the test set-up: meshopt and quantized
ones by npm ``gltfpack`` (meshoptimizer's own packer, installed by scripts/setup.sh), Draco
ones by Google's encoder (PyPI ``DracoPy``) with the extension's container written here
as the KHR_draco_mesh_compression spec lays it out."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from engine.gltf import load_gltf
from engine.gltf_write import pack_glb, unpack_glb

REPO = Path(__file__).resolve().parents[2]
_DRACO_TYPES = {0: "POSITION", 1: "NORMAL", 3: "TEXCOORD_0"}  # draco::GeometryAttribute


def gltfpack() -> str | None:
    local = REPO / ".cache" / "npm" / "node_modules" / ".bin" / "gltfpack"
    if local.is_file() and os.access(local, os.X_OK) and shutil.which("node"):
        return str(local)
    return shutil.which("gltfpack")


def gltfpack_variant(source: Path, target: Path, *flags: str) -> Path:
    """``gltfpack -i source -o target`` keeping node names and materials (``-kn -km``)."""
    tool = gltfpack()
    assert tool is not None
    subprocess.run(
        [tool, "-i", str(source), "-o", str(target), "-kn", "-km", *flags],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return target


def draco_variant(source: Path, target: Path) -> Path:
    """Every triangle primitive of a GLB with its POSITION, NORMAL, TEXCOORD_0 and indices
    Draco-compressed (morph targets stay plain accessors: the vertex order is kept)."""
    import DracoPy

    asset = load_gltf(source)
    doc, blob = unpack_glb(source.read_bytes())
    data = bytearray(blob or b"")
    for m, mesh in enumerate(doc["meshes"]):
        loaded = iter(asset.meshes[m].primitives)
        for prim in mesh["primitives"]:
            if prim.get("mode", 4) != 4:
                continue
            p = next(loaded)
            stream = DracoPy.encode(
                p.positions,
                p.indices.reshape(-1, 3),
                normals=p.normals.astype(np.float64),
                tex_coord=None if p.uvs is None else p.uvs.astype(np.float64),
                preserve_order=True,
            )
            decoded = DracoPy.decode(stream)
            assert len(decoded.points) == p.vertex_count  # the order (and count) is kept
            ids = {_DRACO_TYPES[a["attribute_type"]]: a["unique_id"] for a in decoded.attributes}
            while len(data) % 4:
                data.append(0)
            doc["bufferViews"].append(
                {"buffer": 0, "byteOffset": len(data), "byteLength": len(stream)}
            )
            data += stream
            attrs = prim["attributes"]
            for name in ids:
                attrs[name] = _plain_accessor(doc, attrs[name], 5126)
            prim["indices"] = _plain_accessor(doc, prim["indices"], 5125)
            prim["extensions"] = {
                "KHR_draco_mesh_compression": {
                    "bufferView": len(doc["bufferViews"]) - 1,
                    "attributes": ids,
                }
            }
    doc["buffers"][0]["byteLength"] = len(data)
    for key in ("extensionsUsed", "extensionsRequired"):
        doc[key] = sorted({*doc.get(key, []), "KHR_draco_mesh_compression"})
    target.write_bytes(pack_glb(doc, bytes(data)))
    return target


def _plain_accessor(doc: dict, index: int, component: int) -> int:
    """A copy of accessor ``index`` with no bufferView (Draco fills it), as the spec wants."""
    acc = {
        k: v for k, v in doc["accessors"][index].items() if k not in ("bufferView", "byteOffset")
    }
    acc["componentType"] = component
    acc.pop("normalized", None)
    doc["accessors"].append(acc)
    return len(doc["accessors"]) - 1
