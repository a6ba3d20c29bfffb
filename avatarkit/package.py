"""Avatar packages: ``<root>/<id>/manifest.json`` plus the files it lists
(see docs/avatar-package.md).

The manifest is the single source of truth for a package: what it is called, which files
belong to it (with size and SHA-256, so a download can be verified), which ARKit channels
the model drives and how to frame it. Reading validates everything a client relies on and
raises ``AvatarKitError(INVALID_AVATAR_METADATA)`` otherwise.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avatarkit.errors import AvatarKitError, ErrorCode

FORMAT = "avatarkit-avatar/1"
MANIFEST_NAME = "manifest.json"
ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")  # a bare name: no separators, no ".."
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
MAX_MANIFEST_BYTES = 1 << 20  # real manifests are about 2 KB; the body is read whole
MAX_MANIFEST_DEPTH = 32  # real manifests nest 3 deep; Python's parser recurses per level


@dataclass(frozen=True)
class FileEntry:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Framing:
    """Where to point a camera, in model units and axes."""

    head_center: tuple[float, float, float] = (0.0, 0.0, 0.0)
    camera_distance: float = 1.0  # head-and-shoulders shot at ~30 degrees vertical field of view
    up_axis: str = "+Y"
    forward_axis: str = "+Z"
    units: str = "meters"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "head_center": list(self.head_center),
            "camera_distance": self.camera_distance,
            "up_axis": self.up_axis,
            "forward_axis": self.forward_axis,
            "units": self.units,
            **self.extra,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Framing:
        known = {"head_center", "camera_distance", "up_axis", "forward_axis", "units"}
        head = data.get("head_center", (0.0, 0.0, 0.0))
        if not (
            isinstance(head, list | tuple)
            and len(head) == 3
            and all(isinstance(v, int | float) for v in head)
        ):
            raise ValueError("framing.head_center must be three numbers")
        distance = data.get("camera_distance", 1.0)
        if not isinstance(distance, int | float) or distance <= 0:
            raise ValueError("framing.camera_distance must be a positive number")
        return cls(
            head_center=(float(head[0]), float(head[1]), float(head[2])),
            camera_distance=float(distance),
            up_axis=str(data.get("up_axis", "+Y")),
            forward_axis=str(data.get("forward_axis", "+Z")),
            units=str(data.get("units", "meters")),
            extra={k: v for k, v in data.items() if k not in known},
        )


@dataclass(frozen=True)
class Manifest:
    id: str
    name: str
    version: str
    model: str  # the GLB among ``files``
    files: tuple[FileEntry, ...]
    channels: tuple[str, ...]  # ARKit channels the model drives
    framing: Framing = Framing()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)

    def file(self, name: str) -> FileEntry | None:
        return next((f for f in self.files if f.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "model": self.model,
            "files": [{"name": f.name, "size": f.size, "sha256": f.sha256} for f in self.files],
            "blendshapes": {"set": "arkit52", "channels": list(self.channels)},
            "framing": self.framing.to_json(),
            **({"extra": self.extra} if self.extra else {}),
        }

    def to_bytes(self) -> bytes:
        return (json.dumps(self.to_json(), indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, data: Any, source: str = "manifest") -> Manifest:
        try:
            return cls._parse(data)
        except (
            KeyError,
            TypeError,
            ValueError,
            AttributeError,
        ) as exc:  # e.g. a list where an object belongs
            raise AvatarKitError(ErrorCode.INVALID_AVATAR_METADATA, f"{source}: {exc}") from exc

    @classmethod
    def _parse(cls, data: Any) -> Manifest:
        if not isinstance(data, dict):
            raise TypeError("the manifest must be a JSON object")
        if data.get("format", FORMAT) != FORMAT:
            raise ValueError(f"unsupported format {data.get('format')!r} (expected {FORMAT})")
        avatar_id = data["id"]
        if not isinstance(avatar_id, str) or not ID_RE.match(avatar_id):
            raise ValueError(f"invalid id {avatar_id!r}")
        files = []
        for entry in data["files"]:
            name, size, digest = entry["name"], entry["size"], entry["sha256"]
            if not isinstance(name, str) or not FILE_RE.match(name) or name == MANIFEST_NAME:
                raise ValueError(f"invalid file name {name!r}")
            if not isinstance(size, int) or size < 0:
                raise ValueError(f"{name}: invalid size {size!r}")
            if not isinstance(digest, str) or not SHA256_RE.match(digest):
                raise ValueError(f"{name}: invalid sha256")
            files.append(FileEntry(name, size, digest))
        if len({f.name for f in files}) != len(files):
            raise ValueError("duplicate file names")
        model = data.get("model") or next(
            (f.name for f in files if f.name.endswith((".glb", ".gltf"))), ""
        )
        if model not in {f.name for f in files}:
            raise ValueError(f"model {model!r} is not among the files")
        blend = data.get("blendshapes") or {}
        channels = tuple(str(c) for c in blend.get("channels", []))
        return cls(
            id=avatar_id,
            name=str(data.get("name") or avatar_id),
            version=str(data.get("version", "0")),
            model=model,
            files=tuple(files),
            channels=channels,
            framing=Framing.from_json(data.get("framing") or {}),
            extra=dict(data.get("extra") or {}),
        )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def parse_manifest(raw: bytes, source: str = "manifest") -> Manifest:
    """A manifest from its JSON bytes (a download or a file): too large, too deeply nested
    or malformed is ``invalidAvatarMetadata``, never a ``RecursionError``."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise AvatarKitError(
            ErrorCode.INVALID_AVATAR_METADATA, f"{source}: larger than {MAX_MANIFEST_BYTES} bytes"
        )
    depth = _json_depth(raw)
    if depth > MAX_MANIFEST_DEPTH:
        raise AvatarKitError(
            ErrorCode.INVALID_AVATAR_METADATA,
            f"{source}: JSON nested {depth} deep (limit {MAX_MANIFEST_DEPTH})",
        )
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise AvatarKitError(
            ErrorCode.INVALID_AVATAR_METADATA, f"{source}: not JSON ({exc})"
        ) from None
    return Manifest.from_json(data, source)


_JSON_STRING = re.compile(
    rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S
)  # unrolled: no per-character alternation
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _json_depth(raw: bytes) -> int:
    """Deepest bracket nesting of a JSON text, without recursion (strings stripped first)."""
    depth = deepest = 0
    for byte in _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS):
        depth += 1 if byte in b"[{" else -1
        deepest = max(deepest, depth)
        if deepest > MAX_MANIFEST_DEPTH:
            break  # deep enough to refuse; no need to scan a megabyte of brackets
    return deepest


def read_manifest(package_dir: Path) -> Manifest:
    path = Path(package_dir) / MANIFEST_NAME
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError as exc:
        raise AvatarKitError(
            ErrorCode.AVATAR_NOT_FOUND, f"no avatar package at {package_dir}"
        ) from exc
    except OSError as exc:
        raise AvatarKitError(ErrorCode.INVALID_AVATAR_METADATA, f"{path}: {exc}") from exc
    return parse_manifest(raw, str(path))


def verify_package(package_dir: Path, manifest: Manifest | None = None) -> Manifest:
    """Check that every listed file is present with the right size and SHA-256."""
    manifest = manifest or read_manifest(package_dir)
    for entry in manifest.files:
        path = Path(package_dir) / entry.name
        if not path.is_file():
            raise AvatarKitError(
                ErrorCode.AVATAR_ASSETS_MISSING, f"{manifest.id}: {entry.name} is missing"
            )
        if path.stat().st_size != entry.size or sha256_file(path) != entry.sha256:
            raise AvatarKitError(
                ErrorCode.CHECKSUM_MISMATCH,
                f"{manifest.id}: {entry.name} does not match its manifest",
            )
    return manifest


def list_packages(root: Path) -> list[Manifest]:
    """Every valid package directly under root, sorted by id (invalid ones are skipped)."""
    manifests = []
    root = Path(root)
    if not root.is_dir():
        return []
    for child in sorted(root.iterdir()):
        if (child / MANIFEST_NAME).is_file():
            try:
                manifest = read_manifest(child)
            except AvatarKitError:
                continue
            if manifest.id == child.name:
                manifests.append(manifest)
    return manifests
