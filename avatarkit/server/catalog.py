"""The avatars a server serves: the user's files and folders, then the bundled packages.

Sources (``ServerConfig.avatars``, ``avatarkit serve --avatars``), each one of: a folder of
avatar packages and/or ``.glb``/``.vrm`` files, one package folder, or one ``.glb``/``.vrm``
file. Every avatar has an id: a package's is its manifest id (= its folder name), a file's
is derived from its name (``avatar.local_id``: ``My Avatar.vrm`` -> ``my-avatar``), the id
``avatarkit render --avatar FILE`` and the scenes use for it. The ingress admits sessions
for these ids and the asset service lists and serves them; a file is served as a one-file
package whose manifest (channels, framing, SHA-256) is made on first request by parsing it
with the engine, and kept while the file's size and mtime hold.

Files in a folder are untrusted: only its direct children count; a symlink only when it
resolves inside the folder; a file or package over ``max_bytes`` is skipped (the reason is
logged once and named when its id is asked for); an id from a request is checked against
``ID_RE`` and looked up in a dict, never joined onto a path. The first source holding an id
wins (a user's ``ava.glb`` shadows the bundled ``ava``).

Threads: ``index()`` (a rescan at most every ``RESCAN_S``) and ``manifest()`` touch the
filesystem and parse; the server calls them on worker threads, never on its event loop.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from avatarkit.avatar import local_id
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.package import ID_RE, MANIFEST_NAME, FileEntry, Manifest, read_manifest

log = logging.getLogger(__name__)

SERVED_SUFFIXES = (".glb", ".vrm", ".gltf")  # a .gltf only with its data embedded
RESCAN_S = 2.0  # files dropped into a folder are served within this long
MAX_FOLDER_ENTRIES = 10_000  # a folder is scanned up to this many names (bounded work)
DEFAULT_MAX_BYTES = 512 * 1024 * 1024  # as AvatarManager's max_package_size


@dataclass(frozen=True)
class Entry:
    id: str
    path: Path  # resolved: the package folder or the model file
    manifest: Manifest | None  # a package's (read at scan time); None for a file


@dataclass
class Index:
    entries: dict[str, Entry] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # id -> why it is not served
    scanned_at: float = 0.0


class AvatarCatalog:
    """The avatars of ``sources`` (paths, first wins) and, with ``bundled``, the bundled ones."""

    def __init__(
        self,
        sources: Sequence[str | Path] = (),
        *,
        bundled: bool = True,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        from avatarkit.paths import AVATARS_DIR

        self.sources = [Path(s).expanduser().absolute() for s in sources]
        for source in self.sources:  # a typo stops the start, naming the path
            if not source.exists():
                raise AvatarKitError(
                    ErrorCode.AVATAR_NOT_FOUND, f"avatars: no file or folder {source}"
                )
            if source.is_file() and source.suffix.lower() not in SERVED_SUFFIXES:
                raise AvatarKitError(
                    ErrorCode.INCOMPATIBLE_AVATAR_ASSET,
                    f"avatars: {source} is not a .glb, .vrm or .gltf file",
                )
        self.bundled = Path(AVATARS_DIR) if bundled else None
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._index = Index()
        self._warned: set[tuple[str, str]] = set()
        # By id (two links to one file are two avatars): (path, size, mtime) -> what was made
        self._manifests: dict[str, tuple[tuple[Path, int, int], Manifest | AvatarKitError]] = {}
        self._make_lock = threading.Lock()  # one file parsed at a time: bounded CPU and memory

    # -- what is served -------------------------------------------------------------------
    def fresh(self) -> bool:
        """Whether ``index()`` would answer without touching the filesystem."""
        return time.monotonic() - self._index.scanned_at < RESCAN_S

    def index(self) -> Index:
        """The current index, rescanned when older than ``RESCAN_S`` (filesystem work)."""
        with self._lock:
            if not self.fresh():
                self._index = self._scan()
            return self._index

    def cached_index(self) -> Index:
        """The last index, whatever its age (event-loop code, after ``index()`` ran once)."""
        return self._index

    def where(self) -> str:
        """Where avatars are looked for, for messages."""
        places = [str(s) for s in self.sources]
        if self.bundled is not None:
            places.append(f"the bundled avatars ({self.bundled})")
        return ", ".join(places) or "nowhere (no sources)"

    def not_found(self, avatar_id: str, index: Index) -> str:
        """Why ``avatar_id`` is not served, naming where it was looked for."""
        if avatar_id in index.skipped:
            return f"avatar {avatar_id!r} is not served: {index.skipped[avatar_id]}"
        return f"no avatar {avatar_id!r} among the {len(index.entries)} served from {self.where()}"

    # -- a file's manifest ----------------------------------------------------------------
    def manifest(self, entry: Entry) -> Manifest:
        """A package's manifest, or a file's made by parsing it (cached per size and mtime).
        A file the engine cannot use raises its ``AvatarKitError`` (cached too)."""
        if entry.manifest is not None:
            return entry.manifest
        with self._make_lock:
            try:
                stat = entry.path.stat()
            except OSError as exc:
                raise AvatarKitError(
                    ErrorCode.AVATAR_NOT_FOUND, f"avatar {entry.id!r}: {exc.strerror}"
                ) from None
            key = (entry.path, stat.st_size, stat.st_mtime_ns)
            cached = self._manifests.get(entry.id)
            if cached is None or cached[0] != key:
                cached = (key, _file_manifest(entry, stat.st_size, self.max_bytes))
                for gone in [i for i in self._manifests if i not in self._index.entries]:
                    del self._manifests[gone]  # files that left the folder
                self._manifests[entry.id] = cached
            made = cached[1]
        if isinstance(made, AvatarKitError):
            raise made
        return made

    # -- scanning -------------------------------------------------------------------------
    def _scan(self) -> Index:
        index = Index(scanned_at=time.monotonic())
        roots = [*self.sources, *([self.bundled] if self.bundled is not None else [])]
        for root in roots:
            for found in self._scan_source(root):
                if isinstance(found, Entry):
                    if found.id in index.entries:
                        if index.entries[found.id].path != found.path:  # else: named twice
                            self._warn(found.path, f"id {found.id!r} is already served; skipped")
                    else:
                        index.entries[found.id] = found
                        index.skipped.pop(found.id, None)
                elif found[0] not in index.entries:
                    index.skipped.setdefault(found[0], found[1])
        return index

    def _scan_source(self, root: Path) -> Iterable[Entry | tuple[str, str]]:
        explicit = root in self.sources
        if root.is_file() and explicit:
            yield from self._consider(root, root.resolve(), None)
        elif (root / MANIFEST_NAME).is_file() and explicit:
            yield from self._consider(root, root.resolve(), None)
        elif root.is_dir():
            inside = root.resolve()
            try:
                with os.scandir(root) as listing:
                    names: list[str] = []
                    for item in listing:
                        if len(names) >= MAX_FOLDER_ENTRIES:
                            self._warn(
                                root, f"more than {MAX_FOLDER_ENTRIES} entries; rest ignored"
                            )
                            break
                        if not item.name.startswith("."):
                            names.append(item.name)
            except OSError as exc:
                self._warn(root, f"cannot list it ({exc.strerror})")
                return
            for name in sorted(names):
                yield from self._consider(root / name, (root / name).resolve(), inside)
        elif explicit:
            self._warn(root, "gone (no file or folder any more)")

    def _consider(
        self, path: Path, real: Path, inside: Path | None
    ) -> Iterable[Entry | tuple[str, str]]:
        """One file or folder: an Entry, (id, why skipped), or nothing (not an avatar)."""
        is_model = path.suffix.lower() in SERVED_SUFFIXES
        is_package = not is_model and (path / MANIFEST_NAME).is_file()
        if not (is_model or is_package):
            return
        avatar_id = local_id(path.stem) if is_model else path.name
        if inside is not None and not real.is_relative_to(inside):
            yield self._skip(avatar_id, path, f"{path} links outside {inside}")
            return
        if is_model:
            try:
                size = real.stat().st_size if real.is_file() else -1
            except OSError:
                size = -1
            if size < 0:
                yield self._skip(avatar_id, path, f"{path} is not a readable file")
            elif size > self.max_bytes:
                why = f"{path} has {size} bytes, over the {self.max_bytes}-byte limit"
                yield self._skip(avatar_id, path, why)
            else:
                yield Entry(avatar_id, real, None)
            return
        try:
            manifest = read_manifest(real)
        except AvatarKitError as exc:
            yield self._skip(avatar_id, path, f"invalid package: {exc.message}")
            return
        if manifest.id != path.name and not (inside is None and ID_RE.match(manifest.id)):
            why = f"{path}: manifest id {manifest.id!r} differs from the folder name"
            yield self._skip(avatar_id, path, why)
        elif manifest.total_size > self.max_bytes:
            why = f"{path} declares {manifest.total_size} bytes, over the {self.max_bytes} limit"
            yield self._skip(manifest.id, path, why)
        else:
            yield Entry(manifest.id, real, manifest)

    def _skip(self, avatar_id: str, path: Path, why: str) -> tuple[str, str]:
        self._warn(path, why)
        return avatar_id, why

    def _warn(self, path: Path, why: str) -> None:
        if len(self._warned) > 4 * MAX_FOLDER_ENTRIES:  # a folder that churns names
            self._warned.clear()
        if (str(path), why) not in self._warned:  # once per cause, not once per rescan
            self._warned.add((str(path), why))
            log.warning("avatars: %s: %s", path, why)


def _file_manifest(entry: Entry, size: int, max_bytes: int) -> Manifest | AvatarKitError:
    """A one-file package for a .glb/.vrm: parsed (and so validated) by the engine."""
    from avatarkit.avatar import Avatar

    if size > max_bytes:
        return AvatarKitError(
            ErrorCode.AVATAR_TOO_LARGE, f"avatar {entry.id!r}: over {max_bytes} bytes"
        )
    try:
        if entry.path.suffix.lower() == ".gltf":
            _check_self_contained(entry.path)
        made = Avatar.from_file(entry.path, avatar_id=entry.id).manifest
    except AvatarKitError as exc:
        return exc
    except Exception as exc:  # the engine's limits are coded; anything else is still a "no"
        return AvatarKitError(ErrorCode.INCOMPATIBLE_AVATAR_ASSET, f"{entry.path.name}: {exc!r}")
    # Served under a name any manifest accepts ("My Avatar.vrm" has a space), versioned by
    # content so a client's cache notices a replaced file.
    (sole,) = made.files
    served = entry.id + entry.path.suffix.lower()
    return replace(
        made,
        model=served,
        version=sole.sha256[:12],
        files=(FileEntry(served, sole.size, sole.sha256),),
    )


def _check_self_contained(path: Path) -> None:
    """A served .gltf is one file: buffers and images as data URIs (else make a package)."""
    import json

    try:
        doc = json.loads(path.read_bytes())
        uris = [
            item.get("uri", "data:")
            for key in ("buffers", "images")
            for item in doc.get(key, [])
            if isinstance(item, dict)
        ]
    except (ValueError, RecursionError, AttributeError, TypeError) as exc:
        raise AvatarKitError(ErrorCode.INCOMPATIBLE_AVATAR_ASSET, f"{path.name}: {exc}") from None
    external = [u for u in uris if not str(u).startswith("data:")]
    if external:
        raise AvatarKitError(
            ErrorCode.INCOMPATIBLE_AVATAR_ASSET,
            f"{path.name} refers to {len(external)} external file(s) ({str(external[0])[:64]}"
            "...): serve it as an avatar package (docs/avatar-package.md) or as a .glb",
        )


def served_file(entry: Entry, manifest: Manifest, name: str) -> Path | None:
    """The path of file ``name`` of a served avatar, or None (not listed, or outside)."""
    if manifest.file(name) is None:
        return None  # only a listed name reaches the filesystem
    if entry.manifest is None:
        return entry.path if name == manifest.model else None
    path = (entry.path / name).resolve()
    return path if path.parent == entry.path else None


def sources_of(avatars: str | Path | Iterable[str | Path] | None) -> tuple[str, ...]:
    """``ServerConfig.avatars`` in any form (a path, or several) as a tuple of strings."""
    if avatars is None:
        return ()
    if isinstance(avatars, str | Path):
        return (str(avatars),)
    return tuple(str(a) for a in avatars)
