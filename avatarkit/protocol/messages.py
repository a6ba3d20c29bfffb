"""Envelopes of the Spatius v2 wire protocol: decode any, encode each message kind.

Used by the Motion Server and by the client SDK (Direct Mode). Every envelope is one
binary websocket message holding a protobuf ``Message`` (``avatarkit/proto/wire.proto``).
"""

from __future__ import annotations

from collections.abc import Mapping

from google.protobuf.message import DecodeError

from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.proto import wire_pb2 as pb

Message = pb.Message


def decode_envelope(data: bytes | str) -> pb.Message:
    """Parse one websocket message; malformed bytes (or a text frame) raise ``protocolError``."""
    envelope = pb.Message()
    try:
        if isinstance(data, str):
            raise TypeError("a text frame")
        envelope.ParseFromString(bytes(data))
    except (DecodeError, TypeError, ValueError) as exc:
        raise AvatarKitError(ErrorCode.PROTOCOL_ERROR, f"invalid protobuf payload: {exc}") from exc
    return envelope


def encode_configure(
    sample_rate: int,
    *,
    audio_format: pb.AudioFormat = pb.AUDIO_FORMAT_PCM_S16LE,
    bitrate: int = 0,
    extra_params: Mapping[str, str] | None = None,
) -> bytes:
    """``CLIENT_CONFIGURE_SESSION``: the first message a client sends after the upgrade."""
    msg = pb.Message(type=pb.MESSAGE_CLIENT_CONFIGURE_SESSION)
    cfg = msg.client_configure_session
    cfg.sample_rate = int(sample_rate)
    cfg.bitrate = int(bitrate)
    cfg.audio_format = audio_format
    cfg.transport_compression = pb.TRANSPORT_COMPRESSION_NONE
    if extra_params:
        cfg.extra_params.update({str(k): str(v) for k, v in extra_params.items()})
    return msg.SerializeToString()


def encode_audio(req_id: str, audio: bytes, end: bool = False) -> bytes:
    """``CLIENT_AUDIO_INPUT``: one chunk of an utterance; the last one has ``end=True``."""
    msg = pb.Message(type=pb.MESSAGE_CLIENT_AUDIO_INPUT)
    msg.client_audio_input.req_id = req_id
    msg.client_audio_input.audio = bytes(audio)
    msg.client_audio_input.end = bool(end)
    return msg.SerializeToString()


def encode_interrupt(req_id: str) -> bytes:
    """``CLIENT_INTERRUPT``: no further animation for ``req_id``."""
    msg = pb.Message(type=pb.MESSAGE_CLIENT_INTERRUPT)
    msg.client_interrupt.req_id = req_id
    return msg.SerializeToString()


def encode_confirm(connection_id: str) -> bytes:
    """``SERVER_CONFIRM_SESSION``: the handshake succeeded."""
    msg = pb.Message(type=pb.MESSAGE_SERVER_CONFIRM_SESSION)
    msg.server_confirm_session.connection_id = connection_id
    return msg.SerializeToString()


def encode_error(code: int, message: str, *, connection_id: str = "", req_id: str = "") -> bytes:
    """``SERVER_ERROR``; see :mod:`avatarkit.protocol.errors` for codes and phrasing."""
    msg = pb.Message(type=pb.MESSAGE_SERVER_ERROR)
    err = msg.server_error
    err.code = int(code)
    err.message = message
    err.connection_id = connection_id
    err.req_id = req_id
    return msg.SerializeToString()
