"""``Avatar``: a loaded avatar package, ready for an ``AvatarView`` to render.

An Avatar is plain data on disk plus the knowledge of how to drive it: its manifest, the
local GLB path, the parsed glTF (``engine.load_gltf``: CPU arrays every view of it shares),
and the :class:`~avatarkit.blendshapes.BlendshapeMap` that turns a float32[52] ARKit vector
into morph-target weights. The GLB is parsed once, when the Avatar is made (the manager does
that on a worker thread, so the render thread never parses).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from avatarkit.blendshapes import BlendshapeMap, map_asset
from avatarkit.bones import channels_by_bones
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.extensions import ignored
from avatarkit.framing import anatomical_framing
from avatarkit.material_binds import MaterialExpressions, find_binds
from avatarkit.package import (
    MANIFEST_NAME,
    FileEntry,
    Framing,
    Manifest,
    read_manifest,
    sha256_file,
    verify_package,
)
from avatarkit.vrm0 import face_forward

if TYPE_CHECKING:
    from engine import GltfAsset, ModelRenderer

MODEL_SUFFIXES = (".glb", ".gltf", ".vrm")  # a .vrm is a GLB with a VRM extension

log = logging.getLogger(__name__)


def require_drawable(asset: GltfAsset, name: str) -> None:
    """``incompatibleAvatarAsset`` unless the default scene draws at least one triangle
    primitive: a file without one would load and show nothing."""
    if not asset.meshes:
        raise AvatarKitError(ErrorCode.INCOMPATIBLE_AVATAR_ASSET, f"{name}: the file has no meshes")
    drawn = {asset.nodes[i].mesh for i, _ in asset.walk()} - {None}
    if not any(asset.meshes[m].primitives for m in drawn if m is not None):
        raise AvatarKitError(
            ErrorCode.INCOMPATIBLE_AVATAR_ASSET,
            f"{name}: no node of its scene draws a mesh with triangles",
        )


class Avatar:
    """A loaded avatar. Cheap to keep around; GPU resources belong to views."""

    def __init__(
        self,
        manifest: Manifest,
        root: Path,
        blendshape_map: BlendshapeMap | None = None,
        asset: GltfAsset | None = None,
    ) -> None:
        self.manifest = manifest
        self.root = Path(root)
        self.model_path = self.root / manifest.model
        self.asset: GltfAsset = asset or load_model(self.model_path, manifest.id)
        self.blendshape_map = blendshape_map or map_asset(self.asset)
        # One line, not silence: a model that cannot show what the motion does would
        # otherwise just stand still where it should speak or blink.
        by_bones = channels_by_bones(self.asset)  # eye bones show the gaze: not missing
        # VRM expressions that recolour or move a texture (blush, a face drawn by texture).
        binds = find_binds(self.asset)
        self.material_expressions = MaterialExpressions.of(
            self.asset, binds, self.blendshape_map.rules
        )
        by_materials = self.material_expressions.names if self.material_expressions else ()
        warning = self.blendshape_map.coverage_warning(self.model_path.name, by_bones, by_materials)
        if warning:
            log.warning(warning)
        if (lost := drawing_warning(self.asset, self.model_path.name)) is not None:
            log.warning(lost)
        if (unseen := binds.undrawn_warning()) is not None:
            log.warning("%s: %s", self.model_path.name, unseen)

    # -- identity -------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self.manifest.id

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def framing(self) -> Framing:
        return self.manifest.framing

    @property
    def head_node(self) -> str | None:
        """Name of the node a head pose turns (None: the model's roots)."""
        return self.manifest.extra.get("head_node") or self.manifest.framing.extra.get("head_node")

    @property
    def source_path(self) -> Path:
        """The package folder or model file it was opened from: what a server's
        ``avatars`` (``EmbeddedServer(avatars=...)``, ``serve --avatars``) takes to serve it."""
        return self.root if (self.root / MANIFEST_NAME).is_file() else self.model_path

    @property
    def available_channels(self) -> tuple[str, ...]:
        return self.blendshape_map.available_channels

    # -- driving --------------------------------------------------------------------------
    def target_weights(self, arkit: np.ndarray, target_names: Sequence[str]) -> np.ndarray:
        """Weights in ``target_names`` order (e.g. ``ModelRenderer.asset.target_names``)."""
        return self.blendshape_map.weights_for(arkit, target_names)

    def show(self, model: ModelRenderer, arkit: np.ndarray) -> None:
        """Pose ``model`` (a renderer of this avatar's asset) with one ARKit vector: its
        morph targets, and the materials its VRM expressions change (render thread)."""
        model.set_weights(self.target_weights(arkit, model.target_names))
        if self.material_expressions is not None:
            model.material_overrides = self.material_expressions.materials(arkit)

    def __repr__(self) -> str:
        channels = len(self.available_channels)
        return f"Avatar(id={self.id!r}, name={self.name!r}, channels={channels}/52)"

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_package(cls, package_dir: str | Path, verify: bool = True) -> Avatar:
        """Open ``<dir>/manifest.json`` + its files; ``verify`` checks sizes and SHA-256."""
        package_dir = Path(package_dir)
        manifest = verify_package(package_dir) if verify else read_manifest(package_dir)
        return cls(manifest, package_dir)

    @classmethod
    def from_file(
        cls, model_path: str | Path, avatar_id: str | None = None, name: str | None = None
    ) -> Avatar:
        """Any glTF 2.0 file: a manifest is synthesised (id from the file name, framing
        estimated)."""
        path = Path(model_path)
        if not path.is_file():
            raise AvatarKitError(ErrorCode.AVATAR_NOT_FOUND, f"no such file: {path}")
        if path.suffix.lower() not in MODEL_SUFFIXES:
            raise AvatarKitError(
                ErrorCode.INCOMPATIBLE_AVATAR_ASSET,
                f"{path.name}: expected a .glb, .gltf or .vrm file",
            )
        asset = load_model(path, path.name)
        blend = map_asset(asset)
        avatar_id = avatar_id or local_id(path.stem)
        manifest = Manifest(
            id=avatar_id,
            name=name or path.stem,
            version="local",
            model=path.name,
            files=(FileEntry(path.name, path.stat().st_size, sha256_file(path)),),
            channels=blend.available_channels,
            framing=Framing(),  # replaced below once the engine has measured the model
        )
        avatar = cls(manifest, path.parent, blend, asset)
        avatar.manifest = _with_framing(manifest, anatomical_framing(asset, blend))
        return avatar


def load_model(path: Path, label: str) -> GltfAsset:
    """Parse an avatar's glTF with the engine (a VRM 0.x model turned to face +Z, as every
    avatar does); its failures, and a file that draws nothing, become
    ``incompatibleAvatarAsset``."""
    from engine import EngineError, load_gltf

    try:
        asset = load_gltf(path)
    except EngineError as exc:
        raise AvatarKitError(ErrorCode.INCOMPATIBLE_AVATAR_ASSET, f"{label}: {exc}") from exc
    require_drawable(asset, label)
    face_forward(asset)  # a VRM 0.x model looks down -Z: turned to face the camera
    return asset


def derive(path: str | Path) -> Avatar:
    """Open a local avatar: a package folder, a folder holding one glTF, or a glTF file."""
    path = Path(path)
    if path.is_dir():
        if (path / MANIFEST_NAME).is_file():
            return Avatar.from_package(path)
        models = sorted(p for p in path.iterdir() if p.suffix.lower() in MODEL_SUFFIXES)
        if len(models) != 1:
            raise AvatarKitError(
                ErrorCode.AVATAR_ASSETS_MISSING,
                f"{path}: expected one .glb/.gltf file, found {len(models)}",
            )
        return Avatar.from_file(models[0])
    return Avatar.from_file(path)


def local_id(stem: str) -> str:
    """A valid avatar id derived from a file name (``My Avatar.glb`` -> ``my-avatar``)."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", stem.lower()).strip("-_")[:64]
    return slug or "avatar"


def drawing_warning(asset: GltfAsset, label: str) -> str | None:
    """One line naming what of the file is not drawn (ignored extensions), or None."""
    parts = [f"{name} ignored ({why})" for name, why in ignored(asset.extensions_used)]
    return f"{label}: " + "; ".join(parts) if parts else None


def _with_framing(manifest: Manifest, framing: Framing) -> Manifest:
    from dataclasses import replace

    return replace(manifest, framing=framing)
