"""Stable error codes shared by the SDK, the servers and the CLI.

Codes are the camelCase strings of the platform SDKs (``sessionTokenExpired`` ...) so
logs and apps can match on them; every failure surfaced to a user carries one.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    # Authentication
    SESSION_TOKEN_EXPIRED = "sessionTokenExpired"
    SESSION_TOKEN_INVALID = "sessionTokenInvalid"
    APP_ID_UNRECOGNIZED = "appIDUnrecognized"
    APP_ID_MISMATCH = "appIDMismatch"
    CONCURRENT_LIMIT_EXCEEDED = "concurrentLimitExceeded"
    # Resource loading
    AVATAR_NOT_FOUND = "avatarNotFound"
    AVATAR_ASSETS_MISSING = "avatarAssetsMissing"
    FAILED_TO_FETCH_AVATAR_METADATA = "failedToFetchAvatarMetadata"
    INVALID_AVATAR_METADATA = "invalidAvatarMetadata"
    FAILED_TO_DOWNLOAD_AVATAR_ASSETS = "failedToDownloadAvatarAssets"
    CHECKSUM_MISMATCH = "checksumMismatch"
    AVATAR_TOO_LARGE = "avatarTooLarge"  # the manifest declares more than max_package_size
    DISK_FULL = "diskFull"
    CACHE_NOT_WRITABLE = "cacheNotWritable"
    INCOMPATIBLE_AVATAR_ASSET = "incompatibleAvatarAsset"
    UNSUPPORTED_GLTF_EXTENSION = "unsupportedGltfExtension"
    LOAD_CANCELLED = "loadCancelled"
    # Session / server
    UNSUPPORTED_SAMPLE_RATE = "unsupportedSampleRate"
    UNSUPPORTED_AUDIO_FORMAT = "unsupportedAudioFormat"
    INVALID_REQUEST = "invalidRequest"
    IDLE_TIMEOUT = "idleTimeout"
    SESSION_DURATION_EXCEEDED = "sessionDurationExceeded"
    MESSAGE_TOO_LARGE = "messageTooLarge"
    SLOW_CONSUMER = "slowConsumer"
    RATE_LIMITED = "rateLimited"
    SERVER_SHUTTING_DOWN = "serverShuttingDown"
    BILLING_REQUIRED = "billingRequired"
    INVALID_EGRESS_CONFIG = "invalidEgressConfig"
    EGRESS_UNAVAILABLE = "egressUnavailable"
    MOTION_MODEL_UNAVAILABLE = "motionModelUnavailable"  # weights missing or unreadable
    # Connection / client
    CONNECTION_FAILED = "connectionFailed"
    CONNECTION_CLOSED = "connectionClosed"
    CONNECTION_IN_PROGRESS = "connectionInProgress"
    PROTOCOL_ERROR = "protocolError"
    SERVER_ERROR = "serverError"
    NETWORK_LAYER_NOT_AVAILABLE = "networkLayerNotAvailable"
    INVALID_ANIMATION_DATA = "invalidAnimationData"
    CONVERSATION_MISMATCH = "conversationMismatch"
    NO_AUDIO = "noAudio"
    INVALID_AUDIO = "invalidAudio"
    PLAYBACK_START_FAILED = "playbackStartFailed"
    AUDIO_DEVICE_LOST = "audioDeviceLost"
    NOT_INITIALIZED = "notInitialized"
    RENDER_NOT_SUPPORTED = "renderNotSupported"
    NO_DISPLAY = "noDisplay"  # a window was asked for where there is no display
    ADDRESS_IN_USE = "addressInUse"  # the server's port is taken
    INVALID_CONFIG = "invalidConfig"  # a server config file (apps.toml) that does not validate
    UNKNOWN = "unknown"


class AvatarKitError(Exception):
    """An error with a stable :class:`ErrorCode` and a human-readable message."""

    def __init__(self, code: ErrorCode | str, message: str = "") -> None:
        self.code = ErrorCode(code) if code in ErrorCode._value2member_map_ else code
        self.message = message or str(code)
        super().__init__(f"[{self.code}] {self.message}")
