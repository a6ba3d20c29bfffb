from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MessageType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MESSAGE_UNSPECIFIED: _ClassVar[MessageType]
    MESSAGE_CLIENT_CONFIGURE_SESSION: _ClassVar[MessageType]
    MESSAGE_SERVER_CONFIRM_SESSION: _ClassVar[MessageType]
    MESSAGE_CLIENT_AUDIO_INPUT: _ClassVar[MessageType]
    MESSAGE_SERVER_ERROR: _ClassVar[MessageType]
    MESSAGE_SERVER_RESPONSE_ANIMATION: _ClassVar[MessageType]
    MESSAGE_CLIENT_INTERRUPT: _ClassVar[MessageType]

class AudioFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIO_FORMAT_PCM_S16LE: _ClassVar[AudioFormat]
    AUDIO_FORMAT_OGG_OPUS: _ClassVar[AudioFormat]

class TransportCompression(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRANSPORT_COMPRESSION_NONE: _ClassVar[TransportCompression]

class EgressType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EGRESS_TYPE_UNSPECIFIED: _ClassVar[EgressType]
    EGRESS_TYPE_LIVEKIT: _ClassVar[EgressType]
    EGRESS_TYPE_AGORA: _ClassVar[EgressType]
MESSAGE_UNSPECIFIED: MessageType
MESSAGE_CLIENT_CONFIGURE_SESSION: MessageType
MESSAGE_SERVER_CONFIRM_SESSION: MessageType
MESSAGE_CLIENT_AUDIO_INPUT: MessageType
MESSAGE_SERVER_ERROR: MessageType
MESSAGE_SERVER_RESPONSE_ANIMATION: MessageType
MESSAGE_CLIENT_INTERRUPT: MessageType
AUDIO_FORMAT_PCM_S16LE: AudioFormat
AUDIO_FORMAT_OGG_OPUS: AudioFormat
TRANSPORT_COMPRESSION_NONE: TransportCompression
EGRESS_TYPE_UNSPECIFIED: EgressType
EGRESS_TYPE_LIVEKIT: EgressType
EGRESS_TYPE_AGORA: EgressType

class LiveKitEgressConfig(_message.Message):
    __slots__ = ("url", "api_key", "api_secret", "room_name", "publisher_id", "extra_attributes", "idle_timeout", "api_token")
    class ExtraAttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    URL_FIELD_NUMBER: _ClassVar[int]
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    API_SECRET_FIELD_NUMBER: _ClassVar[int]
    ROOM_NAME_FIELD_NUMBER: _ClassVar[int]
    PUBLISHER_ID_FIELD_NUMBER: _ClassVar[int]
    EXTRA_ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    IDLE_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    API_TOKEN_FIELD_NUMBER: _ClassVar[int]
    url: str
    api_key: str
    api_secret: str
    room_name: str
    publisher_id: str
    extra_attributes: _containers.ScalarMap[str, str]
    idle_timeout: int
    api_token: str
    def __init__(self, url: _Optional[str] = ..., api_key: _Optional[str] = ..., api_secret: _Optional[str] = ..., room_name: _Optional[str] = ..., publisher_id: _Optional[str] = ..., extra_attributes: _Optional[_Mapping[str, str]] = ..., idle_timeout: _Optional[int] = ..., api_token: _Optional[str] = ...) -> None: ...

class AgoraEgressConfig(_message.Message):
    __slots__ = ("channel_name", "token", "uid", "publisher_id")
    CHANNEL_NAME_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    PUBLISHER_ID_FIELD_NUMBER: _ClassVar[int]
    channel_name: str
    token: str
    uid: int
    publisher_id: str
    def __init__(self, channel_name: _Optional[str] = ..., token: _Optional[str] = ..., uid: _Optional[int] = ..., publisher_id: _Optional[str] = ...) -> None: ...

class ClientConfigureSession(_message.Message):
    __slots__ = ("sample_rate", "bitrate", "audio_format", "transport_compression", "egress_type", "livekit_egress", "agora_egress", "extra_params")
    class ExtraParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    BITRATE_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FORMAT_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_COMPRESSION_FIELD_NUMBER: _ClassVar[int]
    EGRESS_TYPE_FIELD_NUMBER: _ClassVar[int]
    LIVEKIT_EGRESS_FIELD_NUMBER: _ClassVar[int]
    AGORA_EGRESS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_PARAMS_FIELD_NUMBER: _ClassVar[int]
    sample_rate: int
    bitrate: int
    audio_format: AudioFormat
    transport_compression: TransportCompression
    egress_type: EgressType
    livekit_egress: LiveKitEgressConfig
    agora_egress: AgoraEgressConfig
    extra_params: _containers.ScalarMap[str, str]
    def __init__(self, sample_rate: _Optional[int] = ..., bitrate: _Optional[int] = ..., audio_format: _Optional[_Union[AudioFormat, str]] = ..., transport_compression: _Optional[_Union[TransportCompression, str]] = ..., egress_type: _Optional[_Union[EgressType, str]] = ..., livekit_egress: _Optional[_Union[LiveKitEgressConfig, _Mapping]] = ..., agora_egress: _Optional[_Union[AgoraEgressConfig, _Mapping]] = ..., extra_params: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ServerConfirmSession(_message.Message):
    __slots__ = ("connection_id",)
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    connection_id: str
    def __init__(self, connection_id: _Optional[str] = ...) -> None: ...

class TraceContext(_message.Message):
    __slots__ = ("traceparent", "tracestate")
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    TRACESTATE_FIELD_NUMBER: _ClassVar[int]
    traceparent: str
    tracestate: str
    def __init__(self, traceparent: _Optional[str] = ..., tracestate: _Optional[str] = ...) -> None: ...

class ClientAudioInput(_message.Message):
    __slots__ = ("req_id", "end", "audio", "trace_context")
    REQ_ID_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    TRACE_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    req_id: str
    end: bool
    audio: bytes
    trace_context: TraceContext
    def __init__(self, req_id: _Optional[str] = ..., end: _Optional[bool] = ..., audio: _Optional[bytes] = ..., trace_context: _Optional[_Union[TraceContext, _Mapping]] = ...) -> None: ...

class ServerError(_message.Message):
    __slots__ = ("connection_id", "req_id", "code", "message")
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    REQ_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    connection_id: str
    req_id: str
    code: int
    message: str
    def __init__(self, connection_id: _Optional[str] = ..., req_id: _Optional[str] = ..., code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class ServerResponseAnimation(_message.Message):
    __slots__ = ("connection_id", "req_id", "end", "first_frame", "fps", "frame_count", "weights", "head", "gaze")
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    REQ_ID_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    FIRST_FRAME_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    FRAME_COUNT_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    HEAD_FIELD_NUMBER: _ClassVar[int]
    GAZE_FIELD_NUMBER: _ClassVar[int]
    connection_id: str
    req_id: str
    end: bool
    first_frame: int
    fps: int
    frame_count: int
    weights: bytes
    head: bytes
    gaze: bytes
    def __init__(self, connection_id: _Optional[str] = ..., req_id: _Optional[str] = ..., end: _Optional[bool] = ..., first_frame: _Optional[int] = ..., fps: _Optional[int] = ..., frame_count: _Optional[int] = ..., weights: _Optional[bytes] = ..., head: _Optional[bytes] = ..., gaze: _Optional[bytes] = ...) -> None: ...

class ClientInterrupt(_message.Message):
    __slots__ = ("req_id",)
    REQ_ID_FIELD_NUMBER: _ClassVar[int]
    req_id: str
    def __init__(self, req_id: _Optional[str] = ...) -> None: ...

class Message(_message.Message):
    __slots__ = ("type", "client_configure_session", "server_confirm_session", "client_audio_input", "server_error", "server_response_animation", "client_interrupt")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_CONFIGURE_SESSION_FIELD_NUMBER: _ClassVar[int]
    SERVER_CONFIRM_SESSION_FIELD_NUMBER: _ClassVar[int]
    CLIENT_AUDIO_INPUT_FIELD_NUMBER: _ClassVar[int]
    SERVER_ERROR_FIELD_NUMBER: _ClassVar[int]
    SERVER_RESPONSE_ANIMATION_FIELD_NUMBER: _ClassVar[int]
    CLIENT_INTERRUPT_FIELD_NUMBER: _ClassVar[int]
    type: MessageType
    client_configure_session: ClientConfigureSession
    server_confirm_session: ServerConfirmSession
    client_audio_input: ClientAudioInput
    server_error: ServerError
    server_response_animation: ServerResponseAnimation
    client_interrupt: ClientInterrupt
    def __init__(self, type: _Optional[_Union[MessageType, str]] = ..., client_configure_session: _Optional[_Union[ClientConfigureSession, _Mapping]] = ..., server_confirm_session: _Optional[_Union[ServerConfirmSession, _Mapping]] = ..., client_audio_input: _Optional[_Union[ClientAudioInput, _Mapping]] = ..., server_error: _Optional[_Union[ServerError, _Mapping]] = ..., server_response_animation: _Optional[_Union[ServerResponseAnimation, _Mapping]] = ..., client_interrupt: _Optional[_Union[ClientInterrupt, _Mapping]] = ...) -> None: ...
