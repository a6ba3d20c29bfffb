"""Audio-to-motion: speech PCM in, ARKit-52 motion frames out, streaming.

The one entry point every consumer uses (Motion Server, ``avatarkit motion`` CLI,
offline render) is :func:`create_stream`: the trained model unless another is named.
"""

from __future__ import annotations

from avatarkit.motion.frame import MotionFrame
from avatarkit.motion.stream import MotionStream, create_stream

__all__ = ["MotionFrame", "MotionStream", "create_stream"]
