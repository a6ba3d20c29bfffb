"""Making an avatar package: hash its files, read the model's blendshape channels, write
the manifest. Apart from ``package.py`` (what a package is, reading and verifying one),
since only this side parses the GLB: the describing side imports nothing of the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from avatarkit.avatar import load_model
from avatarkit.blendshapes import map_asset
from avatarkit.package import MANIFEST_NAME, FileEntry, Framing, Manifest, sha256_file


def write_package(
    package_dir: Path,
    *,
    avatar_id: str,
    name: str,
    version: str,
    model: str,
    framing: dict[str, Any] | Framing,
    files: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Manifest:
    """Write ``manifest.json`` for files already in package_dir (hashing them)."""
    package_dir = Path(package_dir)
    names = files or [model]
    entries = tuple(
        FileEntry(n, (package_dir / n).stat().st_size, sha256_file(package_dir / n)) for n in names
    )
    channels = map_asset(load_model(package_dir / model, model)).available_channels
    manifest = Manifest.from_json(
        {
            "id": avatar_id,
            "name": name,
            "version": version,
            "model": model,
            "files": [{"name": e.name, "size": e.size, "sha256": e.sha256} for e in entries],
            "blendshapes": {"channels": list(channels)},
            "framing": framing.to_json() if isinstance(framing, Framing) else framing,
            "extra": extra or {},
        },
        str(package_dir),
    )
    (package_dir / MANIFEST_NAME).write_bytes(manifest.to_bytes())
    return manifest
