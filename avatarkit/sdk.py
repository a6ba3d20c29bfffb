"""Stage 1 of the lifecycle: process-wide set-up (``AvatarSDK.initialize``).

``AvatarSDK`` is a namespace of class methods, like the platform SDKs' singletons: one
configuration, one session token and one audio output (mixer + device) per process.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from avatarkit import __version__
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.motion.stream import check_sample_rate

if TYPE_CHECKING:
    from avatarkit.support import SupportReport
    from engine.audio import AudioDevice, Mixer

log = logging.getLogger("avatarkit")

DEFAULT_HOST = "http://127.0.0.1:8765"  # `avatarkit serve` on this machine
ASSETS_PATH = "/v1/avatars"  # the asset routes, next to the ingress on the same server


class DrivingMode(StrEnum):
    DIRECT = "direct"  # the client connects to the Motion Server with a session token
    BACKEND = "backend"  # a backend relays audio + motion (yield_audio_data / yield_frames_data)


class AudioFormat(StrEnum):
    PCM_S16LE = "pcm_s16le"  # raw mono samples at sample_rate
    OGG_OPUS = "ogg_opus"  # one Ogg Opus stream per conversation (mono), as a TTS sends it


class LogLevel(StrEnum):
    OFF = "off"
    ERROR = "error"
    WARNING = "warning"
    ALL = "all"


_LOGGING_LEVELS = {
    LogLevel.OFF: logging.CRITICAL + 1,
    LogLevel.ERROR: logging.ERROR,
    LogLevel.WARNING: logging.WARNING,
    LogLevel.ALL: logging.DEBUG,
}


@dataclass(frozen=True)
class Configuration:
    """What ``AvatarSDK.initialize`` takes. Endpoints default to a local ``avatarkit serve``.

    ``token_provider``: optional; called (on the SDK's token thread) for a fresh session token
    when the server refuses or expires the current one, so the controller reconnects by
    itself. ``jitter_buffer_ms``: audio (and motion, less the device latency) needed
    before an utterance plays.
    ``strict_sync``: stall playback (and report it) when motion runs short, instead of
    letting audio play on with a held face. ``audio_device``: ``auto`` (sound card when
    present, else a real-time null device), ``pyaudio``, ``null`` or ``virtual``.
    ``audio_output``: which sound card (an index or part of a name from
    ``engine.audio.output_devices()``; None = the system default). ``audio_device_rate``:
    the card's rate (None: ``sample_rate`` when the card takes it, else its own; the
    engine converts). ``audio_block``: frames per device callback (None: about 30 ms).
    ``assets_url``: where ``AvatarManager.shared()`` loads avatars from: an asset service
    (``http://host:port/v1/avatars``) or a local packages folder (a path or ``file://``
    URL). None: ``AVATARKIT_ASSET_URL`` if set, else the ``/v1/avatars`` of the server
    behind ``ingress_url`` (``avatarkit serve`` and ``EmbeddedServer`` serve both), so
    pointing the SDK at a Motion Server is enough to load its avatars.
    """

    console_url: str = f"{DEFAULT_HOST}/v1/console"
    ingress_url: str = f"{DEFAULT_HOST.replace('http', 'ws', 1)}/v2/driveningress"
    sample_rate: int = 16000
    driving_mode: DrivingMode = DrivingMode.DIRECT
    log_level: LogLevel = LogLevel.WARNING
    jitter_buffer_ms: float = 60.0
    strict_sync: bool = False
    audio_device: str = "auto"
    audio_output: int | str | None = None
    audio_device_rate: int | None = None
    audio_block: int | None = None
    token_provider: Callable[[], str] | None = None
    reconnect_attempts: int = 5
    reconnect_backoff_s: float = 0.2  # first retry delay; doubles per attempt
    assets_url: str | None = None
    # A named render quality (auto, low, medium, high: engine.render.quality) that every
    # App showing an AvatarView switches to; None leaves each App's own choice.
    render_quality: str | None = None
    # Endpoint set by name (avatarkit.regions: built-in "local", more from
    # AVATARKIT_REGIONS_FILE); it fills the URLs left at their defaults.
    region: str | None = None
    audio_format: AudioFormat = AudioFormat.PCM_S16LE

    @property
    def resolved_assets_url(self) -> str:
        """The avatar source the shared manager uses (see ``assets_url``). Derived on
        each read, so ``with_changes(ingress_url=...)`` moves the assets along."""
        if self.assets_url:
            return self.assets_url
        return os.environ.get("AVATARKIT_ASSET_URL") or assets_url_for(self.ingress_url)

    def __post_init__(self) -> None:
        check_sample_rate(self.sample_rate)
        try:
            object.__setattr__(self, "audio_format", AudioFormat(self.audio_format))
        except ValueError:
            raise AvatarKitError(
                ErrorCode.UNSUPPORTED_AUDIO_FORMAT,
                f"audio_format {self.audio_format!r}: {', '.join(f.value for f in AudioFormat)}",
            ) from None
        if self.region is not None:
            from avatarkit.regions import region

            endpoints = region(self.region)
            defaults = Configuration.__dataclass_fields__
            for name in ("console_url", "ingress_url", "assets_url"):
                value = getattr(endpoints, name)
                if value is not None and getattr(self, name) == defaults[name].default:
                    object.__setattr__(self, name, value)
        object.__setattr__(self, "driving_mode", DrivingMode(self.driving_mode))
        object.__setattr__(self, "log_level", LogLevel(self.log_level))
        if self.jitter_buffer_ms < 0:
            raise AvatarKitError(ErrorCode.INVALID_REQUEST, "jitter_buffer_ms must be >= 0")
        if self.render_quality is not None:
            from engine.render.quality import QUALITY_NAMES

            if self.render_quality not in QUALITY_NAMES:
                raise AvatarKitError(
                    ErrorCode.INVALID_REQUEST,
                    f"render_quality {self.render_quality!r}: one of {', '.join(QUALITY_NAMES)}",
                )

    def with_changes(self, **changes: Any) -> Configuration:
        return replace(self, **changes)


def assets_url_for(ingress_url: str) -> str:
    """``ws[s]://host:port/...`` -> ``http[s]://host:port/v1/avatars``: the asset routes of
    the server that serves the ingress (one port for both in ``avatarkit serve``)."""
    if not isinstance(ingress_url, str):
        raise AvatarKitError(
            ErrorCode.INVALID_REQUEST,
            f"ingress_url must be a ws:// URL string, not {ingress_url!r}",
        )
    parts = urlsplit(ingress_url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    if scheme not in ("http", "https") or not parts.netloc:
        raise AvatarKitError(
            ErrorCode.INVALID_REQUEST,
            f"ingress_url {ingress_url!r} is not a ws:// or wss:// URL; set "
            "Configuration(assets_url=...)",
        )
    return urlunsplit((scheme, parts.netloc, ASSETS_PATH, "", ""))


class AvatarSDK:
    """Process-wide state. ``initialize`` again updates the configuration in place."""

    version = __version__
    _lock = threading.Lock()
    _app_id: str | None = None
    _config: Configuration | None = None
    _token: str | None = None
    _user_id: str | None = None
    _mixer: Mixer | None = None
    _device: AudioDevice | None = None

    @classmethod
    def initialize(cls, app_id: str, configuration: Configuration | None = None) -> None:
        if not app_id:
            raise AvatarKitError(ErrorCode.APP_ID_UNRECOGNIZED, "initialize() needs an app id")
        config = configuration or Configuration()
        assets_url = config.resolved_assets_url  # a malformed ingress URL fails here, not at load
        with cls._lock:
            if (
                cls._mixer is not None
                and cls._config is not None
                and cls._config.sample_rate != config.sample_rate
            ):
                cls._close_audio()  # the next view opens the device at the new rate
            cls._app_id, cls._config = app_id, config
        from avatarkit.manager import AvatarManager

        AvatarManager.use_assets_url(assets_url)
        log.setLevel(_LOGGING_LEVELS[config.log_level])

    @classmethod
    def is_initialized(cls) -> bool:
        return cls._config is not None

    @classmethod
    def require_initialized(cls) -> Configuration:
        if cls._config is None:
            raise AvatarKitError(
                ErrorCode.NOT_INITIALIZED, "call AvatarSDK.initialize(app_id, configuration) first"
            )
        return cls._config

    @classmethod
    def configuration(cls) -> Configuration:
        return cls.require_initialized()

    @classmethod
    def app_id(cls) -> str:
        cls.require_initialized()
        return cls._app_id or ""  # set with the configuration, never empty

    @classmethod
    def set_session_token(cls, token: str) -> None:
        """The Direct Mode session token (may be set before or after ``initialize``)."""
        cls._token = token or None

    @classmethod
    def session_token(cls) -> str | None:
        return cls._token

    @classmethod
    def set_user_id(cls, user_id: str) -> None:
        cls._user_id = user_id
        log.info("user id set to %s", user_id)

    @classmethod
    def audio_mixer(cls) -> Mixer:
        """The process's mixer, opening its output device on first use."""
        from engine.audio import Mixer, open_device

        config = cls.require_initialized()
        with cls._lock:
            if cls._mixer is None:
                mixer = Mixer(config.sample_rate)
                # Kept only once a device plays it: a mixer nothing pulls freezes every clock.
                cls._device = open_device(
                    mixer,
                    config.audio_device,
                    output=config.audio_output,
                    rate=config.audio_device_rate,
                    block=config.audio_block,
                )
                cls._mixer = mixer
            return cls._mixer

    @classmethod
    def audio_device(cls) -> AudioDevice | None:
        """The device playing the process mixer (a ``VirtualDevice`` is advanced by you)."""
        return cls.audio_mixer().device

    @classmethod
    def support(
        cls, size: tuple[int, int] = (1280, 720), fps: float = 30.0, quality: str | None = None
    ) -> SupportReport:
        """Whether this machine can show avatars: a ``SupportReport`` whose ``status`` is
        ``supported``, ``renderNotSupported`` or ``insufficientPerformance``, with the GL
        version, renderer and a probe's frame time (:mod:`avatarkit.support`). Needs no
        ``initialize``; ``quality`` None: the configured ``render_quality``, else auto."""
        from avatarkit.support import check_support

        if quality is None and cls._config is not None:
            quality = cls._config.render_quality
        return check_support(size, fps, quality)

    @classmethod
    def cleanup(cls) -> None:
        """Forget the configuration and token, and close the audio device."""
        with cls._lock:
            cls._close_audio()
            cls._app_id = cls._config = cls._token = cls._user_id = None

    @classmethod
    def _close_audio(cls) -> None:
        if cls._mixer is not None and cls._mixer.device is not None:
            cls._mixer.device.stop()
        cls._mixer = cls._device = None
