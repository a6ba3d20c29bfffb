"""glTF skins: the ``skins`` array (joints, inverse bind matrices, skeleton) and the
per-vertex ``JOINTS_0/1`` + ``WEIGHTS_0/1`` attributes, checked and read into numpy.

Runs wherever ``engine.gltf.load_gltf`` runs (a loader thread; never GL). The file is
untrusted: ``check_skins`` range-checks every index and count before anything is read,
and ``check_joint_range`` refuses a vertex naming a joint its skin does not have (an
out-of-range palette index on the GPU would read another joint, or nothing).
``KHR_mesh_quantization`` types are accepted: joints as unsigned byte/short, weights as
float or normalized unsigned byte/short.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine import errors
from engine.errors import EngineError

if TYPE_CHECKING:
    from engine.gltf_asset import GltfAsset

# Joints per skin: the palette is one std140 uniform block of 3 vec4 rows per joint
# (256 * 48 = 12 KiB, under the 16 KiB every GL 3.3 implementation offers).
MAX_JOINTS = 256
INFLUENCE_SETS = 2  # JOINTS_0/WEIGHTS_0 and JOINTS_1/WEIGHTS_1: up to 8 joints a vertex
_JOINT_COMPONENTS = {5121, 5123}  # unsigned byte, unsigned short
_WEIGHT_COMPONENTS = {5126, 5121, 5123}  # float, or normalized unsigned byte/short
_FLOAT, _MAT4 = 5126, "MAT4"


@dataclass
class GltfSkin:
    name: str
    joints: list[int]  # node indices; position k is palette entry k
    inverse_bind: np.ndarray  # (J, 4, 4) float32, column-vector convention
    skeleton: int | None = None  # the skeleton's root node, when the file names one


def _fail(
    path: Path | str, field: str, message: str, code: str = errors.INVALID_GLTF
) -> EngineError:
    return EngineError(code, f"{path}: {message} at {field}", path=str(path), field=field)


def _index(value: Any, count: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < count


def check_skins(doc: dict[str, Any], path: Path | str) -> None:
    """Raise ``EngineError`` unless every skin, ``node.skin`` and skin attribute the loader
    reads is in range. Runs after ``engine.gltf_validate.validate`` (arrays are lists of
    objects, accessors and views are checked)."""
    nodes, accessors = doc.get("nodes") or [], doc.get("accessors") or []
    skins = doc.get("skins")
    skins = [] if skins is None else skins
    if not isinstance(skins, list) or not all(isinstance(s, dict) for s in skins):
        raise _fail(path, "skins", "must be a list of objects")
    if len(skins) > len(nodes) + 1:  # each needs a joint node; bounds the loop below
        raise _fail(path, "skins", f"{len(skins)} skins for {len(nodes)} nodes")
    for s, skin in enumerate(skins):
        where = f"skins[{s}]"
        joints = skin.get("joints")
        if not isinstance(joints, list) or not joints:
            raise _fail(path, f"{where}.joints", "must be a non-empty list of node indices")
        if len(joints) > MAX_JOINTS:
            raise _fail(
                path,
                f"{where}.joints",
                f"{len(joints)} joints exceed the limit of {MAX_JOINTS}",
                errors.GLTF_LIMIT_EXCEEDED,
            )
        for j, joint in enumerate(joints):
            if not _index(joint, len(nodes)):
                raise _fail(path, f"{where}.joints[{j}]", f"node index {joint!r} out of range")
        if len(set(joints)) != len(joints):
            raise _fail(path, f"{where}.joints", "lists a node twice")
        if skin.get("skeleton") is not None and not _index(skin["skeleton"], len(nodes)):
            raise _fail(path, f"{where}.skeleton", "node index out of range")
        ibm = skin.get("inverseBindMatrices")
        if ibm is not None:
            if not _index(ibm, len(accessors)):
                raise _fail(path, f"{where}.inverseBindMatrices", "accessor index out of range")
            acc = accessors[ibm]
            if acc.get("type") != _MAT4 or acc.get("componentType") != _FLOAT:
                raise _fail(path, f"{where}.inverseBindMatrices", "must be a float MAT4 accessor")
            if acc.get("count", 0) < len(joints):
                raise _fail(
                    path,
                    f"{where}.inverseBindMatrices",
                    f"{acc.get('count')} matrices for {len(joints)} joints",
                )
    for i, node in enumerate(nodes):
        if node.get("skin") is not None and not _index(node["skin"], len(skins)):
            raise _fail(path, f"nodes[{i}].skin", f"skin index {node['skin']!r} out of range")
    for m, mesh in enumerate(doc.get("meshes") or []):
        for p, prim in enumerate(mesh.get("primitives") or []):
            _check_influences(path, prim["attributes"], accessors, f"meshes[{m}].primitives[{p}]")


def _check_influences(
    path: Path | str, attrs: dict[str, Any], accessors: list[dict[str, Any]], where: str
) -> None:
    count = accessors[attrs["POSITION"]]["count"]
    for k in range(INFLUENCE_SETS):
        # Attribute values are accessor indices in range (engine.gltf_validate).
        joints, weights = attrs.get(f"JOINTS_{k}"), attrs.get(f"WEIGHTS_{k}")
        if joints is None and weights is None:
            continue
        if joints is None or weights is None:
            raise _fail(path, f"{where}.attributes", f"JOINTS_{k} and WEIGHTS_{k} come in pairs")
        for name, index, components in (
            (f"JOINTS_{k}", joints, _JOINT_COMPONENTS),
            (f"WEIGHTS_{k}", weights, _WEIGHT_COMPONENTS),
        ):
            acc = accessors[index]
            field = f"{where}.attributes.{name}"
            if acc.get("type") != "VEC4" or acc.get("componentType") not in components:
                raise _fail(path, field, f"accessor {index} has an invalid type for {name}")
            if name.startswith("WEIGHTS") and acc["componentType"] != _FLOAT:
                if not acc.get("normalized"):
                    raise _fail(path, field, "integer weights must be normalized")
            if name.startswith("JOINTS") and acc.get("normalized"):
                raise _fail(path, field, "joint indices must not be normalized")
            if acc.get("count") != count:
                raise _fail(path, field, f"accessor {index} count differs from POSITION's")


def read_skins(doc: dict[str, Any], accessor: Any, path: Path | str) -> list[GltfSkin]:
    """The checked ``skins``; ``accessor(index)`` reads an accessor as (count, width)."""
    result = []
    for s, skin in enumerate(doc.get("skins") or []):
        joints = list(skin["joints"])
        if skin.get("inverseBindMatrices") is None:
            ibm = np.tile(np.eye(4, dtype=np.float32), (len(joints), 1, 1))
        else:  # column-major in the file: transpose each into our column-vector layout
            raw = accessor(skin["inverseBindMatrices"])[: len(joints)]
            ibm = np.ascontiguousarray(raw.reshape(-1, 4, 4).transpose(0, 2, 1), np.float32)
        if not np.isfinite(ibm).all():
            raise _fail(path, f"skins[{s}].inverseBindMatrices", "matrices are not finite")
        name = skin.get("name")
        result.append(
            GltfSkin(
                name if isinstance(name, str) else f"skin{s}", joints, ibm, skin.get("skeleton")
            )
        )
    return result


def read_influences(
    attrs: dict[str, Any], accessor: Any
) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
    """(joints (N, 4|8) uint16, weights (N, 4|8) float32 summing to 1 or all 0), or Nones."""
    sets = [k for k in range(INFLUENCE_SETS) if attrs.get(f"JOINTS_{k}") is not None]
    if not sets:
        return None, None
    joints = np.hstack([accessor(attrs[f"JOINTS_{k}"]) for k in sets]).astype(np.uint16)
    weights = np.hstack([accessor(attrs[f"WEIGHTS_{k}"]) for k in sets]).astype(np.float32)
    weights = np.where(np.isfinite(weights) & (weights > 0), weights, 0.0).astype(np.float32)
    total = weights.sum(axis=1, keepdims=True)
    # The spec wants sums of 1; quantized weights miss by a little. A vertex with no
    # weight at all stays where it is (the shader gives it the identity).
    weights /= np.where(total > 0, total, 1.0)
    return joints, weights


def check_joint_range(asset: GltfAsset) -> None:
    """Refuse a skinned mesh whose vertices name a joint (with weight) past its skin's
    joint list: the GPU palette has exactly that many entries."""
    for i, node in enumerate(asset.nodes):
        if node.skin is None or node.mesh is None:
            continue
        count = len(asset.skins[node.skin].joints)
        for p, prim in enumerate(asset.meshes[node.mesh].primitives):
            if prim.joints is None or prim.skin_weights is None:
                continue
            used = prim.joints[prim.skin_weights > 0]
            if used.size and int(used.max()) >= count:
                raise EngineError(
                    errors.INVALID_GLTF,
                    f"{asset.path}: mesh {node.mesh} primitive {p} uses joint {int(used.max())}"
                    f" but node {i}'s skin {node.skin} has {count} joints",
                    path=str(asset.path),
                    field=f"nodes[{i}].skin",
                )
