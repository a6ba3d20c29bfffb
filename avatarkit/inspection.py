"""What a glTF / GLB / VRM file offers as an avatar (``avatarkit inspect PATH``).

Reads the document first (``engine.gltf.read_document``: containers checked, JSON parsed,
nothing allocated for it), so a file the engine refuses is still described: its meshes,
morph target names and the conventions they follow, skins, and which extensions it
requires or uses and what becomes of each. When the engine can load it, the report adds
which ARKit channels are driven and by what, the model's size and a guess at its unit,
and the framing anchor (``framing.py``) a view would use. The document is untrusted
JSON: every field is type-checked before it is read.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avatarkit.avatar import require_drawable
from avatarkit.blendshapes import BlendshapeMap, map_asset
from avatarkit.bones import BoneRig
from avatarkit.conventions import arkit_channel, convention_for, expression_binds
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.extensions import IGNORED_BECAUSE, KNOWN
from avatarkit.framing import anatomical_framing
from avatarkit.material_binds import MaterialExpressions, find_binds
from avatarkit.node_constraints import find_constraints
from avatarkit.package import Framing
from avatarkit.spring_bones import find_springs
from avatarkit.vrm0 import face_forward
from avatarkit.vrm_meta import vrm_terms

if TYPE_CHECKING:
    from engine import GltfAsset

HUMAN_HEAD_DISTANCE = 0.62  # a head shot of a human head in metres (the bundled avatars')


@dataclass(frozen=True)
class Extension:
    name: str
    required: bool
    status: str  # "supported", "read: ...", "ignored: why", "unsupported: why"


@dataclass(frozen=True)
class MeshInfo:
    name: str
    primitives: int
    targets: tuple[tuple[str, str], ...]  # (target name, what it follows or "unmapped")

    @property
    def conventions(self) -> Counter[str]:
        return Counter(kind.split(" ")[0] for _, kind in self.targets)


@dataclass
class Inspection:
    path: Path
    size_bytes: int
    generator: str
    extensions: list[Extension]
    meshes: list[MeshInfo]
    skins: list[tuple[str, int]]  # (name, joints)
    nodes: int
    error: AvatarKitError | None = None  # why the engine cannot load it
    blend: BlendshapeMap | None = None
    bounds: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    framing: Framing | None = None
    # The bones the motion turns: "head", "neck", "leftEye", "rightEye", "jaw" -> node name,
    # and the ARKit channels they show (``BoneRig.channels``).
    bones: dict[str, str] = field(default_factory=dict)
    by_bones: tuple[str, ...] = ()
    terms: dict[str, str] = field(default_factory=dict)  # a VRM file's terms of use
    notes: list[str] = field(default_factory=list)  # what else a user should know

    @property
    def loadable(self) -> bool:
        return self.error is None

    @property
    def unit(self) -> str:
        """The model's unit, judged by the size of its face (or "unknown")."""
        if self.framing is None or self.framing.extra.get("anchor") == "bounds":
            return "unknown"
        scale = self.framing.camera_distance / HUMAN_HEAD_DISTANCE
        units = (
            ("metres", 1.0),
            ("decimetres", 10.0),
            ("centimetres", 100.0),
            ("millimetres", 1e3),
        )
        for unit, size in units:
            if size / 10**0.5 <= scale < size * 10**0.5:
                return unit
        return "unknown"

    def lines(self, verbose: bool = False) -> list[str]:
        """The report, as printed by ``avatarkit inspect``."""
        kind = "GLB" if self.path.suffix.lower() in (".glb", ".vrm") else "glTF"
        size = (
            f"{self.size_bytes / 1e6:.1f} MB"
            if self.size_bytes >= 1e6
            else f"{self.size_bytes / 1e3:.0f} kB"
        )
        out = [f"{self.path.name}: {kind}, {size}, {self.nodes} nodes"]
        if self.generator:
            out.append(f"  generator: {self.generator}")
        for ext in self.extensions:
            out.append(
                f"extension {ext.name} ({'required' if ext.required else 'used'}): {ext.status}"
            )
        if self.error is not None:
            out.append(f"cannot load: [{self.error.code}] {self.error.message}")
        out.append(f"meshes: {len(self.meshes)}")
        for mesh in self.meshes:
            counts = ", ".join(f"{n} {kind}" for kind, n in sorted(mesh.conventions.items()))
            out.append(
                f"  {mesh.name}: {mesh.primitives} primitive(s), "
                f"{len(mesh.targets)} morph targets" + (f" ({counts})" if counts else "")
            )
            unmapped = [name for name, kind in mesh.targets if kind == "unmapped"]
            if unmapped:
                out.append(f"    unmapped: {', '.join(unmapped)}")
            if verbose:
                out.extend(f"    {name}: {kind}" for name, kind in mesh.targets)
        for name, joints in self.skins:
            out.append(
                f"skin {name or '(unnamed)'}: {joints} joints (GPU skinning; the head "
                "pose and gaze turn the head, neck and eye bones it has)"
            )
        if self.bones:
            out.append("bones: " + ", ".join(f"{k} {v}" for k, v in self.bones.items()))
        if self.blend is not None:
            report = self.blend.report(self.by_bones).splitlines()
            out.append("channels: " + report[0])
            out.extend(
                report[1:]
                if verbose
                else [r for r in report[1:] if r.startswith(("  missing", "  by "))]
            )
        if self.bounds is not None:
            lo, hi = self.bounds
            size = " x ".join(f"{h - lo_:.3g}" for lo_, h in zip(lo, hi, strict=True))
            out.append(f"size: {size} (x, y, z), in {self.unit}")
        if self.framing is not None:
            f = self.framing
            anchor = f.extra.get("anchor", "")
            detail = " ".join(f.extra.get("eye_nodes") or [f.extra.get("head_bone") or ""])
            where = ", ".join(f"{v:.3g}" for v in f.head_center)
            out.append(
                f"framing: {anchor}"
                + (f" {detail}" if detail else "")
                + f": head centre ({where}), camera {f.camera_distance:.3g} in front"
            )
        if self.terms:  # the author's terms of use: what a deployment must keep to
            out.append("VRM terms of use (from the file's meta):")
            out.extend(f"  {k}: {v}" for k, v in self.terms.items())
        out.extend(f"note: {note}" for note in self.notes)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "size_bytes": self.size_bytes,
            "loadable": self.loadable,
            "error": None if self.error is None else {"code": str(self.error.code),
                                                      "message": self.error.message},
            "extensions": [vars(e) for e in self.extensions],
            "meshes": [
                {"name": m.name, "primitives": m.primitives,
                 "targets": [{"name": n, "maps_to": k} for n, k in m.targets]}
                for m in self.meshes
            ],
            "skins": [{"name": n, "joints": j} for n, j in self.skins],
            "bones": self.bones,
            "terms": self.terms,
            "channels": list(self.blend.available_channels) if self.blend else [],
            "missing_channels": list(self.blend.missing_channels) if self.blend else [],
            "bounds": None if self.bounds is None else [list(b) for b in self.bounds],
            "unit": self.unit,
            "framing": None if self.framing is None else self.framing.to_json(),
            "notes": self.notes,
        }  # fmt: skip


def _drives(blend: BlendshapeMap, mesh: int, target: int) -> bool:
    """Whether the motion drives this target (a mesh none of whose targets follows a
    convention has no matrix at all)."""
    matrix = blend.matrices.get(mesh)
    return matrix is not None and bool(matrix[target].any())


def inspect_avatar(path: str | Path) -> Inspection:
    """Describe the avatar file at ``path`` (see the module doc). Raises ``avatarNotFound``
    for a missing file and ``incompatibleAvatarAsset`` for one that is no glTF at all."""
    from engine import EngineError, load_gltf
    from engine.gltf import read_document

    path = Path(path)
    if not path.is_file():
        raise AvatarKitError(ErrorCode.AVATAR_NOT_FOUND, f"no such file: {path}")
    try:
        doc, _ = read_document(path)
    except EngineError as exc:
        raise AvatarKitError(ErrorCode.INCOMPATIBLE_AVATAR_ASSET, f"{path.name}: {exc}") from exc
    extensions = _extensions(doc)
    report = Inspection(
        path=path,
        size_bytes=path.stat().st_size,
        generator=str(_get(doc, "asset", dict).get("generator", ""))[:200],
        extensions=extensions,
        meshes=_meshes_from_json(doc),
        skins=_skins(doc),
        nodes=len(_list(doc, "nodes")),
    )
    try:
        asset = load_gltf(path)
        require_drawable(asset, path.name)
    except EngineError as exc:
        report.error = AvatarKitError(ErrorCode.INCOMPATIBLE_AVATAR_ASSET, exc.message)
        return report
    except AvatarKitError as exc:  # it loads, but would show nothing
        report.error = exc
        return report
    face_forward(asset)  # framed as a view frames it: a VRM 0.x model turned to face +Z
    blend = map_asset(asset)
    binds = {(b.mesh, b.target): b.expression for b in expression_binds(asset)}
    report.meshes = [
        MeshInfo(
            mesh.name or f"mesh{m}",
            len(mesh.primitives),
            tuple(
                (name, _follows(name, binds.get((m, t)), _drives(blend, m, t)))
                for t, name in enumerate(mesh.target_names)
            ),
        )
        for m, mesh in enumerate(asset.meshes)
    ]
    report.blend = blend
    lo, hi = asset.bounds()
    report.bounds = (tuple(float(v) for v in lo), tuple(float(v) for v in hi))
    report.framing = anatomical_framing(asset, blend)
    report.bones, report.by_bones = _bones(asset)
    report.terms = vrm_terms(asset)
    materials = find_binds(asset)
    drawn = MaterialExpressions.of(asset, materials, blend.rules)
    if drawn is not None:
        report.notes.append(
            "VRM expressions that change materials (drawn): " + ", ".join(drawn.names)
        )
    elif not blend.available_channels:
        jaw = "jaw" in report.bones
        moves = "the jaw bone opens the mouth" if jaw else "the face will not move"
        report.notes.append(f"no morph target follows a known convention: {moves}")
    if (unseen := materials.undrawn_warning()) is not None:
        report.notes.append(unseen)
    if (rules := blend.rules.describe()) is not None:
        report.notes.append(rules)
    if constraints := find_constraints(asset):
        kinds = Counter(c.kind for c in constraints)
        listed = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        report.notes.append(f"node constraints (applied): {listed}")
    joints, colliders = find_springs(asset)
    if joints:
        report.notes.append(
            f"spring bones (simulated): {len(joints)} joints, {len(colliders)} collider(s)"
        )
    return report


def _bones(asset: GltfAsset) -> tuple[dict[str, str], tuple[str, ...]]:
    """The head, neck, eye and jaw bones a view would turn (``BoneRig.find``), by node
    name, and the channels they show."""
    rig = BoneRig.find([n.transform.copy() for n in asset.nodes], asset)
    if rig is None:
        return {}, ()
    neck = rig.neck.node if rig.neck is not None else None
    found: dict[str, int | None] = {"head": rig.head.node, "neck": neck}
    found.update(zip(("leftEye", "rightEye"), [b.node for b in rig.eyes], strict=False))
    found["jaw"] = rig.jaw.node if rig.jaw is not None else None
    names = {k: asset.nodes[v].name or f"node{v}" for k, v in found.items() if v is not None}
    return names, rig.channels


# -- the document (untrusted JSON) ----------------------------------------------------------
def _get(doc: dict[str, Any], key: str, kind: type) -> Any:
    value = doc.get(key)
    return value if isinstance(value, kind) else kind()


def _list(doc: dict[str, Any], key: str) -> list[Any]:
    return list(_get(doc, key, list))


def _names(items: list[Any]) -> list[str]:
    return [e for e in items if isinstance(e, str)]


def _extensions(doc: dict[str, Any]) -> list[Extension]:
    from engine.gltf import SUPPORTED_REQUIRED_EXTENSIONS

    required = _names(_list(doc, "extensionsRequired"))
    used = [e for e in _names(_list(doc, "extensionsUsed")) if e not in required]
    found = []
    for name in [*required, *used]:
        is_required = name in required
        if is_required and name not in SUPPORTED_REQUIRED_EXTENSIONS:
            why = IGNORED_BECAUSE.get(name, "not implemented")
            status = f"unsupported: {why}; a file that requires it cannot be loaded"
        elif name in KNOWN:
            status = KNOWN[name]
        else:
            status = f"ignored: {IGNORED_BECAUSE.get(name, 'not implemented')}"
        found.append(Extension(name, is_required, status))
    return found


def _meshes_from_json(doc: dict[str, Any]) -> list[MeshInfo]:
    meshes = []
    for m, mesh in enumerate(_list(doc, "meshes")):
        if not isinstance(mesh, dict):
            continue
        prims = [p for p in _list(mesh, "primitives") if isinstance(p, dict)]
        names = _names(_list(_get(mesh, "extras", dict), "targetNames"))
        count = max((len(_list(p, "targets")) for p in prims), default=0)
        names = names[:count] + [f"target{i}" for i in range(len(names), count)]
        meshes.append(
            MeshInfo(
                str(mesh.get("name") or f"mesh{m}")[:200],
                len(prims),
                tuple((name, _follows(name, None, None)) for name in names),
            )
        )
    return meshes


def _skins(doc: dict[str, Any]) -> list[tuple[str, int]]:
    return [
        (str(skin.get("name") or "")[:200], len(_list(skin, "joints")))
        for skin in _list(doc, "skins")
        if isinstance(skin, dict)
    ]


def _follows(name: str, bound: str | None, driven: bool | None) -> str:
    """What a morph target stands for: ``ARKit <channel>``, ``viseme <v>``, ``RPM <x>``,
    ``VRM <expression>`` (``VRM bind`` when the file's extension says so) or ``unmapped``;
    ``(not driven)`` when the map leaves it still (a direct ARKit target covers it)."""
    if bound is not None:
        kind = f"VRM-bind {bound}"
    elif (channel := arkit_channel(name)) is not None:
        kind = f"ARKit {channel}"
    elif (named := convention_for(name)) is not None:
        label, _ = named
        family, _, what = label.partition(" ")
        kind = {"viseme": "viseme", "rpm": "RPM", "vrm": "VRM"}[family] + f" {what}"
    else:
        return "unmapped"
    return kind if driven is not False else f"{kind} (not driven)"
