"""Engine errors: one exception type with a stable ``code`` string.

The engine knows nothing about avatarkit; codes are plain camelCase strings that
higher layers map onto their own error enums (they match avatarkit's where both exist).
"""

from __future__ import annotations

# Stable codes (never rename: callers match on them).
UNSUPPORTED_GLTF_EXTENSION = "unsupportedGltfExtension"
INVALID_GLTF = "invalidGltf"
GLTF_LIMIT_EXCEEDED = "gltfLimitExceeded"  # well-formed but over a GltfLimits bound
GLTF_URI_NOT_ALLOWED = "gltfUriNotAllowed"  # an external uri outside the file's directory
ASSET_NOT_FOUND = "assetNotFound"
RENDER_NOT_SUPPORTED = "renderNotSupported"
NO_DISPLAY = "noDisplay"
CAPTURE_FAILED = "captureFailed"
INVALID_ARGUMENT = "invalidArgument"


class EngineError(Exception):
    """A failure the user can act on; ``code`` is stable, ``message`` is for people.

    ``path`` is the file at fault and ``field`` the place in it (``nodes[3].children[0]``)
    where the loader knows them, else None.
    """

    def __init__(
        self, code: str, message: str, *, path: str | None = None, field: str | None = None
    ) -> None:
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.message = message
        self.path = path
        self.field = field
