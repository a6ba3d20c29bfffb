"""Audio-to-motion: speech PCM in, ARKit-52 motion frames out, streaming.

The one entry point every consumer uses (Motion Server, ``avatarkit motion`` CLI,
offline render) is :func:`create_stream`; it returns the best model available.
"""

from __future__ import annotations

from avatarkit.motion.frame import MotionFrame
from avatarkit.motion.stream import MotionStream, create_stream

__all__ = ["MotionFrame", "MotionStream", "create_stream"]
