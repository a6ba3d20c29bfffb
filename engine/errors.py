"""Engine errors: one exception type with a stable ``code`` string.

The engine knows nothing about avatarkit; codes are plain camelCase strings that
higher layers map onto their own error enums (they match avatarkit's where both exist).
"""

from __future__ import annotations

# Stable codes (never rename: callers match on them).
UNSUPPORTED_GLTF_EXTENSION = "unsupportedGltfExtension"
INVALID_GLTF = "invalidGltf"
ASSET_NOT_FOUND = "assetNotFound"
RENDER_NOT_SUPPORTED = "renderNotSupported"
NO_DISPLAY = "noDisplay"
CAPTURE_FAILED = "captureFailed"
INVALID_ARGUMENT = "invalidArgument"


class EngineError(Exception):
    """A failure the user can act on; ``code`` is stable, ``message`` is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.message = message
