"""The two driving modes of a controller, over one shared playback core.

Direct Mode: the controller owns a ``DirectTransport`` (its own websocket to the Motion
Server); audio goes out and motion comes back. Backend Mode: the app's backend relays
both, through ``yield_audio_data`` / ``yield_frames_data``. Everything else (the inbox,
conversation ids, playback at the audio clock, states, events) is the core's
(``AvatarController``) and the same for both.

A controller's mode is fixed when it is made; each mode answers the calls of the other
with ``networkLayerNotAvailable`` instead of the core checking the mode on every call.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from avatarkit.controller.direct import DirectTransport
from avatarkit.controller.messages import Connection, DirectSink, Failure, Motion
from avatarkit.controller.states import ConnectionState, StateReason
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.sdk import AudioFormat, AvatarSDK, DrivingMode

if TYPE_CHECKING:
    from avatarkit.controller.controller import AvatarController

log = logging.getLogger(__name__)


class Mode:
    """What the mode-specific calls do; by default, refuse them as the other mode's."""

    kind: DrivingMode

    def __init__(self, core: AvatarController) -> None:
        self.core = core

    @property
    def connection_state(self) -> ConnectionState:
        return ConnectionState.DISCONNECTED  # Backend Mode has no connection of its own

    def start(self) -> None:
        raise self._refused("start()", DrivingMode.DIRECT)

    def send(self, audio: bytes, end: bool, sample_rate: int | None) -> str:
        raise self._refused("send()", DrivingMode.DIRECT)

    def yield_audio_data(self, data: bytes, end: bool, sample_rate: int | None) -> str:
        raise self._refused("yield_audio_data()", DrivingMode.BACKEND)

    def yield_frames_data(self, payloads: Iterable[bytes] | bytes, conversation_id: str) -> None:
        raise self._refused("yield_frames_data()", DrivingMode.BACKEND)

    def interrupted(self, conversation_id: str) -> None:
        """``conversation_id`` was interrupted (any thread): tell whoever produces it."""

    def reconnect(self) -> None:
        """The audio format changed: Backend Mode has no connection to redo."""

    def close(self) -> None:
        """Close what this mode opened (``close()`` / ``dispose()``, serialised by the core)."""

    def _refused(self, call: str, mode: DrivingMode) -> AvatarKitError:
        return AvatarKitError(
            ErrorCode.NETWORK_LAYER_NOT_AVAILABLE,
            f"{call} is a {mode} mode call; this SDK is in {self.kind} mode",
        )


class DirectMode(Mode):
    """The controller's own connection. ``transport`` is replaced only under the core's
    ``_lifecycle`` lock; every other reader takes one reference and uses that."""

    kind = DrivingMode.DIRECT

    def __init__(self, core: AvatarController) -> None:
        super().__init__(core)
        self.transport: DirectTransport | None = None

    @property
    def connection_state(self) -> ConnectionState:
        transport = self.transport  # one read: close() may clear it meanwhile
        return transport.state if transport is not None else ConnectionState.DISCONNECTED

    def start(self, fresh_token: bool = False) -> None:
        core, config = self.core, self.core.config
        if self.transport is None:
            self.transport = DirectTransport(
                core.avatar_id,
                core.app_id,
                config.ingress_url,
                config.sample_rate,
                AvatarSDK.session_token,
                DirectSink(core.net_state, core.net_motion, core.net_error),
                token_provider=config.token_provider,
                reconnect_attempts=config.reconnect_attempts,
                reconnect_backoff=config.reconnect_backoff_s,
                ogg_opus=core.audio_input.format is AudioFormat.OGG_OPUS,
            )
        self.transport.start(fresh_token)

    def reconnect(self) -> None:
        """``set_audio_format``: the format is fixed per connection, so a started one is
        closed and opened again with the new format (a fresh token: one per connection)."""
        transport = self.transport
        if transport is None:
            return
        was_started = transport.state != ConnectionState.DISCONNECTED
        self.close()
        if was_started:
            self.start(fresh_token=True)

    def send(self, audio: bytes, end: bool, sample_rate: int | None) -> str:
        transport = self.transport
        state = transport.state if transport is not None else ConnectionState.DISCONNECTED
        if transport is None or state in (ConnectionState.DISCONNECTED, ConnectionState.FAILED):
            raise AvatarKitError(
                ErrorCode.CONNECTION_CLOSED, f"not connected ({state}): call start() first"
            )
        pcm, wire = self.core.take_audio(audio, end, sample_rate)
        # The transport refuses (connectionClosed) before anything is applied locally.
        return self.core.append(pcm, end, transport.send_audio, wire)

    def interrupted(self, conversation_id: str) -> None:
        transport = self.transport
        if transport is not None:
            transport.interrupt(conversation_id)  # a no-op once closed

    def close(self) -> None:
        transport, self.transport = self.transport, None  # sends from now on refuse
        if transport is not None:
            transport.close()
        self.core.post(Connection(ConnectionState.DISCONNECTED, StateReason.USER_ACTION))


class BackendMode(Mode):
    """Audio and motion relayed by the app's backend (the Server SDK's bytes)."""

    kind = DrivingMode.BACKEND

    def yield_audio_data(self, data: bytes, end: bool, sample_rate: int | None) -> str:
        pcm, _ = self.core.take_audio(data, end, sample_rate)  # Ogg Opus: decoded here
        return self.core.append(pcm, end)

    def yield_frames_data(self, payloads: Iterable[bytes] | bytes, conversation_id: str) -> None:
        from avatarkit.protocol import decode_animation

        if isinstance(payloads, bytes | bytearray | memoryview):
            payloads = [bytes(payloads)]
        decoded = [decode_animation(p) for p in payloads]  # raises before anything is applied
        known = self.core.known(conversation_id)
        if known is None:
            log.debug("dropping frames of interrupted conversation %s", conversation_id)
            return
        if not known:  # reported on the render thread, like every callback
            error = AvatarKitError(
                ErrorCode.CONVERSATION_MISMATCH,
                f"frames for unknown conversation {conversation_id!r} discarded",
            )
            self.core.post(Failure(error))
            return
        if not decoded:
            self.core.post(Motion(conversation_id, (), 0.0, True))
        for _req_id, frames, last in decoded:
            self.core.post(Motion(conversation_id, tuple(frames), 0.0, last))


def make_mode(core: AvatarController, kind: DrivingMode) -> Mode:
    return DirectMode(core) if kind == DrivingMode.DIRECT else BackendMode(core)
