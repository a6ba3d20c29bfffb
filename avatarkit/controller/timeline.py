"""Conversation timelines and audio-clock playback (render thread only).

Each conversation (one ``req_id`` / conversation id) owns one timeline: its audio sample
``n`` plays at ``n / sample_rate`` seconds and its motion frame ``i`` sits at
``i / fps`` seconds (plus the sample offset of a re-issued wire request after a
reconnect). Audio reaches the mixer source only once the conversation covers the start
rule (``Playback.start_need``): the jitter buffer of audio, and of motion the jitter
buffer less the device's latency, at least one frame. From then on the face is sampled
at the source's audible position, so the audio clock is the master and nothing is played
twice or skipped. Thresholds are named constants, as in ffplay.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from avatarkit.controller.lifecycle import Lifecycle, Phase
from avatarkit.controller.pose import FacePose, lerp_pose
from avatarkit.controller.states import BufferHealth, ConversationState, StateReason
from avatarkit.motion.frame import MotionFrame

if TYPE_CHECKING:
    from engine.audio.source import AudioSource

# Seconds of audio (and of motion, less the device latency) before an utterance starts.
# Streamed speech arrives in real time, so what is buffered at the start is the margin
# against late chunks for the whole utterance; 60 ms starts a TTS stream about 60 ms
# after its first chunk (the motion model's lookahead is 40 ms) and rides out a 60 ms gap.
JITTER_BUFFER = 0.06
MOTION_HOLD = 0.1  # seconds the face holds the last frame when motion runs short ...
MOTION_DECAY = 0.15  # ... then decays towards neutral with this time constant


class Conversation:
    """Audio and motion of one utterance, placed on its own timeline."""

    def __init__(self, conversation_id: str, sample_rate: int) -> None:
        self.id = conversation_id
        self.sample_rate = sample_rate
        self.pending: list[bytes] = []  # audio not yet handed to the mixer
        self.audio_samples = 0  # received so far
        self.audio_ended = False
        self.keys: deque[tuple[float, MotionFrame]] = deque()
        self.motion_end = 0.0  # seconds of the timeline covered by received motion
        self.motion_done = False  # the motion stream said end (or will never come)
        self.base: int | None = None  # source sample index of this timeline's sample 0
        self.written = 0  # samples handed to the mixer
        self.frame_period = 1 / 30

    @property
    def audio_seconds(self) -> float:
        return self.audio_samples / self.sample_rate

    @property
    def started(self) -> bool:
        return self.base is not None

    def add_audio(self, pcm: bytes, end: bool) -> None:
        if pcm:
            self.pending.append(pcm)
            self.audio_samples += len(pcm) // 2
        self.audio_ended = self.audio_ended or end

    def add_motion(self, frames: Sequence[MotionFrame], offset: float, end: bool) -> None:
        for frame in frames:
            t = offset + frame.index / frame.fps
            if not self.keys or t > self.keys[-1][0]:
                self.keys.append((t, frame))
            elif t > self.keys[0][0] and all(k[0] != t for k in self.keys):
                # Out of order (never on one websocket, possible through a relay): insert.
                at = next(i for i, k in enumerate(self.keys) if k[0] > t)
                self.keys.insert(at, (t, frame))
            self.frame_period = 1 / frame.fps
            self.motion_end = max(self.motion_end, t + self.frame_period)
        self.motion_done = self.motion_done or end

    def ready(self, audio_need: float, motion_need: float) -> bool:
        """Audio and motion cover what the start rule needs (or all there will ever be);
        motion at least its first frame."""
        if self.audio_ended and not self.audio_samples:
            return True  # nothing will ever come (a bare end): start, so it finishes at once
        audio_ok = self.audio_seconds >= audio_need or (self.audio_ended and self.audio_samples > 0)
        need = min(motion_need, self.audio_seconds) if self.audio_ended else motion_need
        motion_ok = self.motion_done or (self.motion_end > 0 and self.motion_end >= need)
        return audio_ok and motion_ok

    def motion_at(self, t: float) -> tuple[FacePose | None, float | None]:
        """The face at timeline time ``t`` (interpolated) and the motion time it shows."""
        keys = self.keys
        while len(keys) >= 2 and keys[1][0] <= t:
            keys.popleft()
        if not keys:
            return None, None
        t0, f0 = keys[0]
        if len(keys) >= 2 and t > t0:
            t1, f1 = keys[1]
            a = (t - t0) / (t1 - t0)
            pose = lerp_pose(_pose(f0), _pose(f1), a)
            return pose, t0 + a * (t1 - t0)
        if t <= t0:
            return _pose(f0), t0  # before the first frame: show it, the clock runs ahead
        if t <= t0 + self.frame_period:
            return _pose(f0), t  # the last frame covers its own period
        # Motion ran short: hold the last frame briefly, then decay towards neutral.
        over = t - t0 - self.frame_period - MOTION_HOLD
        k = 1.0 if over <= 0 else math.exp(-over / MOTION_DECAY)
        return _pose(f0).scaled(k), t0

    def finished(self, position: int) -> bool:
        return (
            self.audio_ended
            and self.base is not None  # started
            and not self.pending
            and position >= self.base + self.audio_samples
        )


def _pose(frame: MotionFrame) -> FacePose:
    return FacePose(frame.weights, frame.head, frame.gaze)


class Playback:
    """The jitter buffer and the audio clock of one avatar; ticked on the render thread.

    ``source`` is the avatar's mixer source. ``on_state(state, reason)`` fires on every
    conversation state change.
    """

    def __init__(
        self,
        source: AudioSource,
        sample_rate: int,
        jitter: float = JITTER_BUFFER,
        strict_sync: bool = False,
        on_state: Callable[[ConversationState, StateReason], None] | None = None,
    ) -> None:
        self.source = source
        self.sample_rate = sample_rate
        self.jitter = jitter
        self.strict_sync = strict_sync
        self.conversations: deque[Conversation] = deque()
        self.lifecycle = Lifecycle(on_state or (lambda state, reason: None))
        # Strict sync: motion ran short, so the feed holds audio back until the jitter
        # buffer refills (the lifecycle shows it as the STALLED phase).
        self.stalled = False
        self.audio_time = 0.0
        self.motion_time: float | None = None
        self.audio_underruns = 0
        self.motion_underruns = 0
        self._audio_dry = False
        self._motion_short = False
        # Seconds until the frame being posed is presented (``Scene.present_lead``): the
        # face shows where the sound will be then, not where it was at the update.
        self.present_lead = 0.0
        # The source epoch (``AudioSource.epoch``) this tick's inbox was drained against:
        # set by the controller; writes fail once another thread has cleared the source.
        self.write_epoch: int | None = None

    # -- input (already on the render thread) -------------------------------------------

    def conversation(self, conversation_id: str) -> Conversation:
        for conv in self.conversations:
            if conv.id == conversation_id:
                return conv
        conv = Conversation(conversation_id, self.sample_rate)
        self.conversations.append(conv)
        return conv

    def find(self, conversation_id: str) -> Conversation | None:
        return next((c for c in self.conversations if c.id == conversation_id), None)

    @property
    def state(self) -> ConversationState:
        return self.lifecycle.state

    @property
    def paused(self) -> bool:
        return self.lifecycle.paused

    @property
    def unpaused_state(self) -> ConversationState:
        """What ``state`` would be if not paused, as of the last update (any thread may
        read it: resume() answers with it at once)."""
        return self.lifecycle.running.state

    def interrupt(self) -> None:
        """Drop all audio and motion; the face blends back to idle."""
        self.conversations.clear()
        self.source.clear(new_epoch=False)  # we are the writer: our later writes are good
        self.stalled = False  # idle again, unpaused: the next utterance plays
        self.source.paused = False
        self.lifecycle.reset()

    def pause(self) -> None:
        self.source.paused = True
        self.lifecycle.pause()

    def resume(self) -> None:
        self.source.paused = False
        self.lifecycle.resume(self._running_phase())

    # -- the clock ----------------------------------------------------------------------

    def update(self) -> FacePose | None:
        """Advance to the source's audible position; the speech face, or None when silent."""
        self._feed_source()
        position = self.source.position()
        while self.conversations and self.conversations[0].finished(position):
            self.conversations.popleft()
        if not self.conversations:
            self.audio_time, self.motion_time = 0.0, None
            self._audio_dry = self._motion_short = False
            self.lifecycle.advance(Phase.IDLE, StateReason.PLAYBACK_END)
            return None
        conv = self.conversations[0]
        base = conv.base
        if base is None:  # not started
            self.lifecycle.advance(Phase.BUFFERING, StateReason.DATA_RECEIVED)
            return None
        t = max(0.0, (position - base) / self.sample_rate)
        self.audio_time = t
        self._check_underruns(conv, base, position, t)
        running = not (self.paused or self.stalled or self._audio_dry)
        ahead = (
            min(self.present_lead, conv.audio_samples / self.sample_rate - t) if running else 0.0
        )
        pose, self.motion_time = conv.motion_at(t + max(0.0, ahead))
        if self.stalled:
            self.lifecycle.advance(Phase.STALLED, StateReason.MOTION_UNDERRUN)
        else:
            self.lifecycle.advance(Phase.PLAYING, StateReason.JITTER_BUFFER_FILLED)
        return pose if pose is not None else FacePose()

    def health(self) -> BufferHealth:
        position = self.source.position()
        audio = motion = 0.0
        for conv in self.conversations:
            if conv.base is not None:  # started
                played = max(0, position - conv.base)
                audio += (conv.audio_samples - played) / self.sample_rate
                motion += max(0.0, conv.motion_end - played / self.sample_rate)
            else:
                audio += conv.audio_seconds
                motion += conv.motion_end
        return BufferHealth(
            audio * 1000, motion * 1000, self.audio_underruns, self.motion_underruns
        )

    def start_need(self) -> tuple[float, float]:
        """(audio, motion) seconds an utterance needs before it starts. Audio: the jitter
        buffer, the margin against late chunks (the device takes samples as soon as they
        are queued). Motion: less the device latency, since the face is sampled at the
        audible position, that much later, while motion keeps arriving."""
        return self.jitter, max(0.0, self.jitter - self.source.latency)

    # -- internals ----------------------------------------------------------------------

    def _feed_source(self) -> None:
        """Start ready conversations in order and hand their received audio to the mixer.

        Strict sync hands over audio only as far as motion covers it, so the device runs
        dry exactly where motion ends (a stall) instead of playing ahead of the face.
        """
        for conv in self.conversations:
            if not conv.started:
                if not conv.ready(*self.start_need()):
                    return
                conv.base = self.source.written  # right after everything queued before it
            self._write(conv, self._audio_limit(conv))
            if not conv.audio_ended or conv.pending:
                return  # later conversations wait for this one's audio to end

    def _audio_limit(self, conv: Conversation) -> float:
        """How many of ``conv``'s samples the mixer may have so far."""
        if not self.strict_sync or conv.motion_done:
            return math.inf
        if (
            self.stalled
            and conv.motion_end * self.sample_rate - conv.written < self.jitter * self.sample_rate
        ):
            return conv.written  # refill the jitter buffer before playing on
        return int(conv.motion_end * self.sample_rate)

    def _write(self, conv: Conversation, limit: float) -> None:
        while conv.pending and conv.written < limit:
            pcm = conv.pending[0]
            room = int(min(len(pcm) // 2, limit - conv.written))
            if not self.source.write(pcm[: 2 * room], epoch=self.write_epoch):
                return  # interrupted meanwhile (another thread): the next drain clears all
            conv.written += room
            if room * 2 == len(pcm):
                conv.pending.pop(0)
            else:
                conv.pending[0] = pcm[2 * room :]

    def _check_underruns(self, conv: Conversation, base: int, position: int, t: float) -> None:
        dry = not conv.audio_ended and position >= base + conv.audio_samples
        if dry and not self._audio_dry and not self.paused:
            self.audio_underruns += 1
        self._audio_dry = dry
        # Half a sample of tolerance: strict sync feeds audio to int(motion_end * rate).
        short = not conv.motion_done and t >= conv.motion_end - 0.5 / self.sample_rate
        if short and not self._motion_short and not self.paused:
            self.motion_underruns += 1
        self._motion_short = short
        if self.strict_sync:
            self.stalled = short

    def _running_phase(self) -> Phase:
        if not self.conversations:
            return Phase.IDLE
        if not self.conversations[0].started:
            return Phase.BUFFERING
        return Phase.STALLED if self.stalled else Phase.PLAYING


def silence(seconds: float, sample_rate: int) -> bytes:
    """PCM s16le silence (handy for tests and padding)."""
    return np.zeros(int(round(seconds * sample_rate)), "<i2").tobytes()
