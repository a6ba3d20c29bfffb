"""The Spatius v2 wire protocol with AvatarKit's motion payload (see docs/protocol.md).

Shared by the Motion Server and the client SDK: envelope encoders/decoder, the motion
payload codec, and the error phrasing/classification both sides agree on.
"""

from __future__ import annotations

from avatarkit.proto import wire_pb2 as pb
from avatarkit.protocol.errors import (
    CLOSE_SLOW_CONSUMER,
    CLOSE_TOKEN_EXPIRED,
    WIRE_ERRORS,
    classify,
    classify_close,
    wire_error,
)
from avatarkit.protocol.messages import (
    decode_envelope,
    encode_audio,
    encode_configure,
    encode_confirm,
    encode_error,
    encode_interrupt,
)
from avatarkit.protocol.motion import animation_frames, decode_animation, encode_animation

__all__ = [
    "CLOSE_SLOW_CONSUMER",
    "CLOSE_TOKEN_EXPIRED",
    "WIRE_ERRORS",
    "animation_frames",
    "classify",
    "classify_close",
    "decode_animation",
    "decode_envelope",
    "encode_animation",
    "encode_audio",
    "encode_configure",
    "encode_confirm",
    "encode_error",
    "encode_interrupt",
    "pb",
    "wire_error",
]
