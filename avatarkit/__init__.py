"""AvatarKit for Python: open, self-hostable real-time talking avatars.

The public API is importable from here; modules load on first use, so
``import avatarkit`` stays light (no GL, no numpy until you touch a class).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "AvatarSDK": "avatarkit.sdk",
    "Configuration": "avatarkit.sdk",
    "DrivingMode": "avatarkit.sdk",
    "AudioFormat": "avatarkit.sdk",
    "LogLevel": "avatarkit.sdk",
    "AvatarManager": "avatarkit.manager",
    "LoadProgress": "avatarkit.manager",
    "LoadState": "avatarkit.manager",
    "Avatar": "avatarkit.avatar",
    "AvatarView": "avatarkit.view",
    "AvatarController": "avatarkit.controller",
    "BufferHealth": "avatarkit.controller",
    "ConnectionState": "avatarkit.controller",
    "ConversationState": "avatarkit.controller",
    "FacePose": "avatarkit.controller",
    "StateReason": "avatarkit.controller",
    "SupportReport": "avatarkit.support",
    "SupportStatus": "avatarkit.support",
    "AvatarKitError": "avatarkit.errors",
    "ErrorCode": "avatarkit.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'avatarkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
