"""AvatarKit's motion payload: ``ServerResponseAnimation`` fields 4 and up.

A message carries ``frame_count`` consecutive frames starting at ``first_frame`` of one
utterance (``req_id``), at ``fps`` frames per second. Per frame: 52 ARKit weights as one
byte each (``round(w * 255)``), head pitch/yaw/roll and eye-gaze yaw/pitch as int16
little-endian of ``radians * ANGLE_SCALE``. That is 62 bytes per frame, about 1.9 KB/s
at 30 fps before envelope overhead (see docs/protocol.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from avatarkit.arkit import NUM_BLENDSHAPES
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.motion.frame import MotionFrame
from avatarkit.proto import wire_pb2 as pb
from avatarkit.protocol.messages import decode_envelope

ANGLE_SCALE = 10000.0  # int16 units per radian: ±3.2767 rad covers ±π at 0.1 mrad steps
WEIGHT_SCALE = 255.0
_INT16 = np.dtype("<i2")


def _angles_to_int16(values: np.ndarray) -> bytes:
    scaled = np.clip(np.rint(values * ANGLE_SCALE), -32768, 32767)
    return scaled.astype(_INT16).tobytes()


def encode_animation(
    connection_id: str,
    req_id: str,
    frames: Sequence[MotionFrame],
    end: bool = False,
    fps: int | None = None,
) -> bytes:
    """One ``SERVER_RESPONSE_ANIMATION`` envelope carrying ``frames`` (consecutive indices).

    ``fps`` is only needed when ``frames`` is empty (a bare ``end=True`` message).
    """
    msg = pb.Message(type=pb.MESSAGE_SERVER_RESPONSE_ANIMATION)
    anim = msg.server_response_animation
    anim.connection_id = connection_id
    anim.req_id = req_id
    anim.end = bool(end)
    if frames:
        first = frames[0].index
        if any(f.index != first + i for i, f in enumerate(frames)):
            raise ValueError("frames of one animation message must have consecutive indices")
        weights = np.stack([f.weights for f in frames])
        anim.first_frame = first
        anim.fps = frames[0].fps
        anim.frame_count = len(frames)
        anim.weights = np.rint(np.clip(weights, 0.0, 1.0) * WEIGHT_SCALE).astype(np.uint8).tobytes()
        anim.head = _angles_to_int16(np.stack([f.head for f in frames]))
        anim.gaze = _angles_to_int16(np.stack([f.gaze for f in frames]))
    elif fps:
        anim.fps = fps
    return msg.SerializeToString()


def animation_frames(envelope: pb.Message) -> tuple[str, list[MotionFrame], bool]:
    """``(req_id, frames, end)`` of a decoded animation envelope.

    Raises ``protocolError`` for another message type and ``invalidAnimationData`` when
    the payload's sizes disagree with its frame count.
    """
    if envelope.type != pb.MESSAGE_SERVER_RESPONSE_ANIMATION:
        raise AvatarKitError(
            ErrorCode.PROTOCOL_ERROR, f"expected an animation message, got type {envelope.type}"
        )
    anim = envelope.server_response_animation
    n = anim.frame_count
    if n == 0:
        return anim.req_id, [], anim.end
    expected = (n * NUM_BLENDSHAPES, n * 3 * 2, n * 2 * 2)
    actual = (len(anim.weights), len(anim.head), len(anim.gaze))
    if anim.fps == 0 or actual != expected:
        raise AvatarKitError(
            ErrorCode.INVALID_ANIMATION_DATA,
            f"animation payload of {n} frames at {anim.fps} fps "
            f"has sizes {actual}, expected {expected}",
        )
    weights = np.frombuffer(anim.weights, np.uint8).reshape(n, NUM_BLENDSHAPES) / np.float32(
        WEIGHT_SCALE
    )
    head = np.frombuffer(anim.head, _INT16).reshape(n, 3) / np.float32(ANGLE_SCALE)
    gaze = np.frombuffer(anim.gaze, _INT16).reshape(n, 2) / np.float32(ANGLE_SCALE)
    frames = [
        MotionFrame(
            anim.first_frame + i,
            anim.fps,
            weights[i].astype(np.float32),
            head[i].astype(np.float32),
            gaze[i].astype(np.float32),
        )
        for i in range(n)
    ]
    return anim.req_id, frames, anim.end


def decode_animation(data: bytes) -> tuple[str, list[MotionFrame], bool]:
    """``(req_id, frames, end)`` straight from envelope bytes (e.g. ``transport_frames``)."""
    return animation_frames(decode_envelope(data))
