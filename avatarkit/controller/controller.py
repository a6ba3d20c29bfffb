"""``AvatarController``: connection, data and playback of one avatar (created by its view).

Threads: ``send``/``yield_*``/``interrupt``/``pause``... may be called from any thread;
they validate at once (raising ``AvatarKitError``) and hand their data to the render
thread through a thread-safe inbox. ``tick(dt)`` runs on the render thread: it drains the
inbox, advances the audio-clock playback, fires the callbacks, and returns the face.
``_lock`` guards the conversation ids (current, issued, interrupted) and the order of the
inbox; ``_lifecycle`` serialises ``start``/``close``/``dispose`` (which block on the
network thread) without holding up ``tick``.

The driving mode's own calls (Direct: ``start``/``send``; Backend: ``yield_*``) live in
``modes.py``, over this shared core; messages between threads are in ``messages.py``.

Sends before ``connected`` (while connecting or reconnecting) are queued and go out once
connected; sends when disconnected (never started, closed, failed) raise
``connectionClosed``. Sends after ``interrupt()`` or after an ``end=True`` belong to a new
conversation by design.

Over 400 lines on purpose: one job, the shared core both modes drive (their own calls are
already in ``modes.py``, playback in ``timeline.py``); what is left is the public surface.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable

from avatarkit.callbacks import call_app
from avatarkit.controller.audio_input import AudioInput
from avatarkit.controller.messages import (
    Audio,
    Connection,
    Failure,
    InboxMessage,
    Interrupt,
    Motion,
    Pause,
    Resume,
    new_req_id,
)
from avatarkit.controller.modes import make_mode
from avatarkit.controller.pose import FacePose, lerp_pose
from avatarkit.controller.states import (
    BufferHealth,
    ConnectionState,
    ConversationState,
    StateReason,
)
from avatarkit.controller.timeline import Playback
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.idle import IdleAnimator
from avatarkit.motion.frame import MotionFrame
from avatarkit.sdk import AudioFormat, AvatarSDK, Configuration
from engine.audio.mixer import Mixer
from engine.clock import Schedule

log = logging.getLogger(__name__)

BLEND_IN = 0.08  # seconds from idle to speech (short: the first syllable must show)
BLEND_OUT = 0.25  # seconds from speech back to idle
ISSUED_MEMORY = 64  # recent conversation ids whose frames are still accepted
Forward = Callable[..., None]  # DirectTransport.send_audio
HEALTH_PERIOD = 0.5  # seconds between on_buffer_health reports (TalkingHead's worklet rate)


class AvatarController:
    """Drives one avatar. Get it from ``AvatarView.controller``; never construct it directly."""

    def __init__(
        self,
        avatar_id: str,
        mixer: Mixer,
        *,
        configuration: Configuration | None = None,
        app_id: str | None = None,
        idle: bool = True,
        seed: int = 0,
    ) -> None:
        self.config = configuration or AvatarSDK.require_initialized()
        self.avatar_id = avatar_id
        self.app_id = app_id or AvatarSDK.app_id()
        if mixer.sample_rate != self.config.sample_rate:
            raise AvatarKitError(
                ErrorCode.UNSUPPORTED_SAMPLE_RATE,
                f"mixer runs at {mixer.sample_rate} Hz, configuration says "
                f"{self.config.sample_rate} Hz",
            )
        self._mixer = mixer
        self._source = mixer.add_source()
        self._inbox: queue.SimpleQueue[InboxMessage] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._lifecycle = threading.RLock()  # dispose() holds it around close()
        self._conversation: str | None = None  # the one send()/yield_audio_data() extends
        self._interrupted: set[str] = set()
        self._issued: deque[str] = deque(maxlen=ISSUED_MEMORY)  # ids frames may still arrive for
        # The state the last interrupt()/pause()/resume() promised, until tick() applies it.
        self._promised: tuple[int, ConversationState] | None = None
        self._seq = 0
        self._playback = Playback(
            self._source,
            self.config.sample_rate,
            jitter=self.config.jitter_buffer_ms / 1000,
            strict_sync=self.config.strict_sync,
            on_state=self._conversation_changed,
        )
        self._idle = IdleAnimator(seed, enabled=idle)
        self._clock = 0.0
        self._speech_weight = 0.0
        self._last_speech = FacePose()
        self._health = BufferHealth()
        self._timers = Schedule()  # on the controller's render time (it has no App)
        self._timers.schedule_interval(self._report_health, HEALTH_PERIOD, first=0.0)
        self.audio_input = AudioInput(self.config.audio_format, self.config.sample_rate)
        self._mode = make_mode(self, self.config.driving_mode)
        self._emitted_connection = ConnectionState.DISCONNECTED
        self._disposed = False
        self._rendering = True  # pause_rendering(): the view stops drawing, nothing else
        self.on_connection_state: Callable[[ConnectionState, StateReason], None] | None = None
        self.on_conversation_state: Callable[[ConversationState, StateReason], None] | None = None
        self.on_error: Callable[[AvatarKitError], None] | None = None
        self.on_buffer_health: Callable[[BufferHealth], None] | None = None
        self.on_first_rendering: Callable[[], None] | None = None
        mixer.on_device_lost.append(self._device_lost)

    # -- observable state ---------------------------------------------------------------

    @property
    def connection_state(self) -> ConnectionState:
        return self._mode.connection_state

    @property
    def conversation_state(self) -> ConversationState:
        """Reads back an interrupt()/pause()/resume() at once, from any thread (the
        ``on_conversation_state`` event still fires at the next tick)."""
        promised = self._promised
        return promised[1] if promised is not None else self._playback.state

    @property
    def conversation_id(self) -> str | None:
        return self._conversation

    @property
    def audio_time(self) -> float:
        """Playback position (s) of the current conversation; 0 when not playing."""
        return self._playback.audio_time

    @property
    def face_time(self) -> float | None:
        """Motion timeline time shown by the face at the last tick (None when idle)."""
        return self._playback.motion_time

    @property
    def buffer_health(self) -> BufferHealth:
        return self._health

    @property
    def volume(self) -> float:
        return self._source.volume

    def set_volume(self, volume: float) -> None:
        if not 0.0 <= volume <= 1.0:
            raise AvatarKitError(ErrorCode.INVALID_REQUEST, f"volume {volume} not in 0..1")
        self._source.volume = float(volume)

    @property
    def pan(self) -> float:
        """Stereo position of this avatar's voice: -1 left, 0 centre, +1 right."""
        return self._source.pan

    def set_pan(self, pan: float) -> None:
        if not -1.0 <= pan <= 1.0:
            raise AvatarKitError(ErrorCode.INVALID_REQUEST, f"pan {pan} not in -1..1")
        self._source.pan = float(pan)

    # -- the driving mode's calls (the other mode's raise networkLayerNotAvailable) -----

    def start(self) -> None:
        """Connect to the Motion Server with the session token (Direct Mode only)."""
        with self._lifecycle:
            self._require_open("start()")
            self._mode.start()

    def send(self, audio: bytes, end: bool = False, *, sample_rate: int | None = None) -> str:
        """Stream speech PCM (mono s16le at the configured rate); returns the conversation id
        (Direct Mode only)."""
        self._require_open("send()")
        return self._mode.send(audio, end, sample_rate)

    def yield_audio_data(
        self, data: bytes, end: bool = False, *, sample_rate: int | None = None
    ) -> str:
        """Audio a backend relays (Backend Mode only); returns the conversation id."""
        self._require_open("yield_audio_data()")
        return self._mode.yield_audio_data(data, end, sample_rate)

    def yield_frames_data(self, payloads: Iterable[bytes] | bytes, conversation_id: str) -> None:
        """Animation envelopes a backend relays (the Server SDK's ``transport_frames`` bytes;
        Backend Mode only).

        Payloads of another conversation are discarded (logged, ``conversationMismatch``);
        an empty list switches the conversation to audio only. Invalid bytes raise
        ``protocolError``/``invalidAnimationData`` and nothing of the call is applied.
        """
        self._require_open("yield_frames_data()")
        self._mode.yield_frames_data(payloads, conversation_id)

    def close(self) -> None:
        """Stop playback and close the connection (a normal close, not an error)."""
        with self._lifecycle:
            self.interrupt()
            self._mode.close()

    def disconnect(self) -> None:
        """Close the connection but keep what it delivered: buffered audio and motion play
        on. For a reply that is already whole (an offline render), so the server's idle
        timeout never cuts a session that ended normally."""
        with self._lifecycle:
            self._mode.close()

    # -- both modes ---------------------------------------------------------------------

    def interrupt(self) -> None:
        """Stop the current response, clearing audio and motion; the next send starts anew."""
        with self._lock:
            cid, self._conversation = self._conversation, None
            if cid:
                self._interrupted.add(cid)
            self.audio_input.reset()  # an Ogg stream cut short: the next send starts its own
            self._source.clear()  # new epoch: a tick already past its drain writes nothing
            self._inbox.put(Interrupt(self._promise(ConversationState.IDLE)))
        if cid:
            self._mode.interrupted(cid)

    @property
    def audio_format(self) -> AudioFormat:
        return self.audio_input.format

    def set_audio_format(self, audio_format: AudioFormat | str) -> None:
        """Take audio in another format from now on (``pcm_s16le`` or ``ogg_opus``; the
        sample rate stays the SDK's). Interrupts the current conversation (``idle``,
        ``userAction``); in Direct Mode a started connection closes (``disconnected``) and
        opens again with the new format (``connecting``, ``connected``), on a fresh token
        from ``token_provider``, else the one set with ``set_session_token``."""
        try:
            new = AudioFormat(audio_format)
        except ValueError:
            raise AvatarKitError(
                ErrorCode.UNSUPPORTED_AUDIO_FORMAT,
                f"audio format {audio_format!r}: {', '.join(f.value for f in AudioFormat)}",
            ) from None
        with self._lifecycle:
            self._require_open("set_audio_format()")
            self.interrupt()
            self.audio_input = AudioInput(new, self.config.sample_rate)
            self._mode.reconnect()

    def pause(self) -> None:
        """Freeze playback (the clock stops, buffers are kept)."""
        with self._lock:
            self._source.paused = True  # at once, not at the next tick
            self._inbox.put(Pause(self._promise(ConversationState.PAUSED)))

    def resume(self) -> None:
        """Play on from where ``pause()`` froze playback."""
        with self._lock:
            state = self.conversation_state
            if state == ConversationState.PAUSED:
                state = self._playback.unpaused_state  # as of the last tick
            self._inbox.put(Resume(self._promise(state)))

    def pause_rendering(self) -> None:
        """Stop drawing this avatar (its view skips the face and the draw from the next
        frame: an off-screen or hidden view costs the render thread nothing). Audio,
        the connection and motion buffering go on, so speech keeps playing and the face
        is where the audio is when ``resume_rendering()`` brings it back. Any thread."""
        self._rendering = False

    def resume_rendering(self) -> None:
        """Draw again from the next frame, posed at the current audio time. Any thread."""
        self._rendering = True

    @property
    def is_rendering(self) -> bool:
        """False between ``pause_rendering()`` and ``resume_rendering()`` (reads back at once)."""
        return self._rendering

    def dispose(self) -> None:
        """Close and release the mixer source (idempotent, safe from several threads)."""
        with self._lifecycle:
            if self._disposed:
                return
            self._disposed = True
            self.close()
            with contextlib.suppress(ValueError):
                self._mixer.on_device_lost.remove(self._device_lost)
            self._mixer.remove_source(self._source)

    # -- render thread ------------------------------------------------------------------

    def tick(self, dt: float, present_lead: float = 0.0) -> FacePose:
        """Advance by ``dt`` seconds of render time; returns the face to draw, posed for
        ``present_lead`` seconds from now (when the frame will be presented)."""
        self._clock += dt
        self._playback.present_lead = present_lead
        with self._lock:  # interrupt() clears and enqueues under it: both or neither seen
            self._playback.write_epoch = self._source.epoch
        self._drain()
        speech = self._playback.update()
        if speech is not None:
            self._last_speech = speech
        target, span = (1.0, BLEND_IN) if speech is not None else (0.0, BLEND_OUT)
        step = dt / span if span > 0 else 1.0
        w = self._speech_weight
        self._speech_weight = min(target, w + step) if target > w else max(target, w - step)
        idle = self._idle.sample(self._clock)
        # A plain blend: the motion model blinks during speech, idle blinks elsewhere
        # (keeping both would double the blink rate while speaking).
        pose = lerp_pose(idle, self._last_speech, self._speech_weight)
        self._timers.advance(self._clock)
        return pose

    def _report_health(self, _elapsed: float) -> None:
        self._health = self._playback.health()
        self._emit(self.on_buffer_health, self._health)

    def buffered(self) -> BufferHealth:
        """Fresh buffer health, taking in everything received so far (render thread)."""
        self._drain()
        self._health = self._playback.health()
        return self._health

    # -- internals ----------------------------------------------------------------------

    # -- for the modes (any thread) ------------------------------------------------------

    def post(self, message: InboxMessage) -> None:
        """Hand ``message`` to the render thread."""
        self._inbox.put(message)

    def known(self, conversation_id: str) -> bool | None:
        """Whether frames for ``conversation_id`` belong here: True for an id issued
        recently, False for one never issued, None for one interrupted (dropped quietly)."""
        with self._lock:
            if conversation_id in self._interrupted:
                return None
            return conversation_id in self._issued

    def take_audio(self, audio: bytes, end: bool, sample_rate: int | None) -> tuple[bytes, bytes]:
        """``(pcm to play, bytes for the wire)`` of a send (see ``AudioInput``)."""
        return self.audio_input.take(audio, end, sample_rate, self._conversation is None)

    def append(
        self, pcm: bytes, end: bool, forward: Forward | None = None, wire: bytes | None = None
    ) -> str:
        """Add audio to the current conversation (a new one if none), under the lock, so an
        interrupt() on another thread is ordered before or after all of it. ``forward``
        (the transport) may refuse first, leaving nothing behind; it queues our copy once
        it accepts, before the audio can reach the wire."""
        with self._lock:
            cid = self._conversation or new_req_id()
            message = Audio(cid, pcm, end)
            if forward is not None:
                accepted = lambda: self._inbox.put(message)  # noqa: E731
                forward(cid, pcm if wire is None else wire, end, accepted, len(pcm) // 2)
            else:
                self._inbox.put(message)
            if self._conversation is None:
                self._conversation = cid
                self._issued.append(cid)
            if end:
                self._conversation = None  # new audio after an end starts a new round
        return cid

    def _promise(self, state: ConversationState) -> int:
        """Show ``state`` until the render thread applies the call numbered by the result
        (called with ``_lock`` held, before the call's message is queued)."""
        self._seq += 1
        self._promised = (self._seq, state)
        return self._seq

    def _applied(self, seq: int) -> None:
        """The render thread applied user action ``seq``: the playback state is true again,
        unless a later action promised something else meanwhile."""
        with self._lock:
            if self._promised is not None and self._promised[0] == seq:
                self._promised = None

    def _drain(self) -> None:
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
            self._apply(item)

    def _apply(self, message: InboxMessage) -> None:
        playback = self._playback
        match message:
            case Audio(cid, pcm, end):
                with self._lock:
                    interrupted = cid in self._interrupted
                if not interrupted:
                    playback.conversation(cid).add_audio(pcm, end)
            case Motion(cid, frames, offset, end):
                conv = playback.find(cid)
                if conv is not None:
                    conv.add_motion(frames, offset, end)
            case Interrupt(seq):
                playback.interrupt()
                self._applied(seq)
            case Pause(seq):
                playback.pause()
                self._applied(seq)
            case Resume(seq):
                playback.resume()
                self._applied(seq)
            case Connection(state, reason):
                if state in (ConnectionState.FAILED, ConnectionState.DISCONNECTED):
                    for conv in playback.conversations:
                        conv.motion_done = True  # no motion will come: play audio only
                if state != self._emitted_connection:
                    self._emitted_connection = state
                    self._emit(self.on_connection_state, state, reason)
            case Failure(error):
                self._report(error)

    def _conversation_changed(self, state: ConversationState, reason: StateReason) -> None:
        if state in (ConversationState.IDLE, ConversationState.PLAYING):
            with self._lock:
                self._interrupted.clear()  # ids are unique: the set only guards in-flight data
        self._emit(self.on_conversation_state, state, reason)

    def net_state(
        self, state: ConnectionState, reason: StateReason, error: AvatarKitError | None
    ) -> None:
        self._inbox.put(Connection(state, reason))

    def net_motion(self, cid: str, frames: list[MotionFrame], offset: float, end: bool) -> None:
        self._inbox.put(Motion(cid, tuple(frames), offset, end))

    def net_error(self, error: AvatarKitError) -> None:
        self._inbox.put(Failure(error))

    def _device_lost(self, error: Exception) -> None:
        """The mixer's device went away (a device thread): the app hears it on the render
        thread as ``audioDeviceLost``; playback goes on through the null device."""
        self._inbox.put(Failure(AvatarKitError(ErrorCode.AUDIO_DEVICE_LOST, str(error))))

    def _report(self, error: AvatarKitError) -> None:
        log.warning("%s: %s", error.code, error.message)
        self._emit(self.on_error, error)

    def _emit(self, callback: Callable[..., object] | None, *args: object) -> None:
        call_app(callback, *args, what=getattr(callback, "__name__", "controller"))

    def _require_open(self, call: str) -> None:
        if self._disposed:
            raise AvatarKitError(ErrorCode.CONNECTION_CLOSED, f"{call} on a disposed controller")
