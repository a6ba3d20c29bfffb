"""Audio-to-motion: speech PCM in, ARKit-52 motion frames out, streaming.

The one entry point every consumer uses (Motion Server, ``avatarkit motion`` CLI,
offline render) is :func:`create_stream`: the trained model unless another is named.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from avatarkit.motion.stream import MotionStream, create_stream

if TYPE_CHECKING:
    from avatarkit.motion.frame import MotionFrame


def __getattr__(name: str) -> object:
    """``MotionFrame`` on first use: it brings numpy, which importing ``avatarkit.motion``
    (the CLI's parser reads ``stream``'s constants) must not."""
    if name == "MotionFrame":
        from avatarkit.motion.frame import MotionFrame

        return MotionFrame
    raise AttributeError(f"module 'avatarkit.motion' has no attribute {name!r}")


__all__ = ["MotionFrame", "MotionStream", "create_stream"]
