"""From articulation to a whole face: ARKit lips, brows, blinks, gaze and head motion.

``Coarticulation`` smooths the 100 Hz articulation track; ``FaceAnimator.animate`` runs
once per motion frame, in order. Their state (smoothers, springs, blink and saccade
timers, a seeded RNG) makes the result a deterministic function of the frame sequence:
any chunking of the audio gives the same face.

Conventions (shared with the controller): head pitch/yaw/roll in radians, positive pitch
nods the head down; gaze yaw right +, pitch up +.
"""

from __future__ import annotations

import math
import random

import numpy as np

from avatarkit.arkit import ARKIT_INDEX, NUM_BLENDSHAPES

# Coarticulation: one-pole smoothing of the 100 Hz articulation track, faster towards a
# target than away from it, so closures are reached and vowels open while the mouth
# never chatters. Per articulator: open close round spread dental tongue.
ATTACK_S = (0.012, 0.008, 0.025, 0.025, 0.012, 0.015)
RELEASE_S = (0.025, 0.020, 0.045, 0.045, 0.025, 0.025)
# Once the classifier hears silence, every articulator returns this fast: a speaker's
# mouth closes at the end of a phrase in a quick gesture (and an exponential release
# with the in-speech constants would still be visibly moving 150 ms on).
REST_RELEASE_S = 0.015
TRACK_DT = 0.01
SPEECH_S = 0.25  # speech-activity envelope (head sway, brows, blinks fade with it)
SPEECH_FLOOR = 0.15  # speech probability below this is silence (the classifier never says 0)
NOD_GAIN = 0.06  # radians of nod per fully emphasised syllable
NOD_HZ, SWAY = 2.2, (0.018, 0.045, 0.022)  # nod spring frequency; pitch/yaw/roll sway amplitudes
NOD_REFRACTORY_S = 0.35
EMPHASIS_LN, EMPHASIS_RANGE = (
    0.4,
    1.5,
)  # ln-loudness above the running level that starts/saturates emphasis
PHRASE_PAUSE_S = 0.5
# Time constants of the slower signals (they were per-frame steps tuned at 30 fps, so the
# face moved twice as fast at 60 fps): the running speech level emphasis is judged
# against, the brows rising with emphasis and settling after it, a saccade landing.
LEVEL_AVG_S, BROW_RISE_S, BROW_FALL_S, SACCADE_S = 1.1, 0.077, 0.54, 0.036
# The most mouthSmile speech makes (a fully spread vowel); avatars read a smile beyond it as
# the expression "happy" (``blendshapes.happy_weight``).
SPEECH_SMILE = 0.2
# A person's face comes to rest within about 150 ms of the last sound: head sway, nods,
# brows and gaze are scaled by a gate that holds through the short silences inside speech
# (stop closures, word joins) and then closes along an eased ramp that ends at exactly 0,
# so the face arrives at rest a fixed time after speech whatever it was doing (an
# exponential release never arrives: a large sway was still visibly moving 150 ms on).
GATE_HOLD_S, GATE_ATTACK_S, GATE_CLOSE_S = 0.04, 0.03, 0.05
# Sound this far below the running speech peak (ln band power: 40 dB) is breath, a faint
# release or room noise: it never restarts the gate's hold, however speech-like the
# classifier finds it. A person's face does not start again for it.
QUIET_LN = -40.0 * math.log(10.0) / 10.0
BLINK_INTERVAL_S = (2.0, 5.0)
BLINK_CLOSE_S, BLINK_OPEN_S = 0.07, 0.13
SACCADE_INTERVAL_S = (0.5, 2.0)
SACCADE_RANGE = (0.07, 0.04)  # gaze yaw, pitch radians
GAZE_PER_WEIGHT = 0.5  # radians of gaze that make a full eyeLook weight

_I = ARKIT_INDEX


def _pair(name: str) -> list[int]:
    return [_I[name + "Left"], _I[name + "Right"]]


def _voiced(p_speech: float) -> float:
    """The speech probability rescaled past ``SPEECH_FLOOR``: 0 at the floor and below
    (the classifier's residual in silence), 1 for certain speech."""
    return max(0.0, (p_speech - SPEECH_FLOOR) / (1.0 - SPEECH_FLOOR))


class Coarticulation:
    """Asymmetric one-pole smoothing of articulation rows [n, 6] at 100 Hz, stateful.

    A row is the posterior-weighted mean of the visemes' targets, so it scales with the
    speech probability, and below ``SPEECH_FLOOR`` that probability is the classifier's
    residual in silence. Each row is shown in proportion to the probability above the
    floor: silence shows an exactly resting mouth, speech its full articulation.
    """

    def __init__(self) -> None:
        self._attack = [1.0 - math.exp(-TRACK_DT / tau) for tau in ATTACK_S]
        self._release = [1.0 - math.exp(-TRACK_DT / tau) for tau in RELEASE_S]
        self._rest = [1.0 - math.exp(-TRACK_DT / REST_RELEASE_S)] * len(RELEASE_S)
        self._state = [0.0] * len(ATTACK_S)

    def __call__(self, rows: np.ndarray, speech: np.ndarray) -> np.ndarray:
        """``rows`` [n, 6] targets; ``speech`` [n] the speech probability (below
        ``SPEECH_FLOOR``: silence, released at ``REST_RELEASE_S``)."""
        state, attack = self._state, self._attack
        out = []
        for target, p in zip(rows.tolist(), speech.tolist(), strict=True):
            voiced = _voiced(p)
            if voiced > 0.0:
                shown, release = voiced / p, self._release
            else:
                shown, release = 0.0, self._rest
            for j, value in enumerate(target):
                delta = value * shown - state[j]
                state[j] += delta * (attack[j] if delta > 0 else release[j])
            out.append(list(state))
        return np.array(out, np.float32).reshape(len(rows), len(state))


class FaceAnimator:
    """Per-frame state machine in plain floats: a frame costs a few microseconds."""

    def __init__(self, fps: int, seed: int = 0) -> None:
        self.dt = dt = 1.0 / fps
        self._speech_k = 1.0 - math.exp(-dt / SPEECH_S)
        self._rng = random.Random(seed)
        self._speech = 0.0  # smoothed speech activity 0..1
        self._loud_avg = 0.0
        self._brow = 0.0
        self._t = 0.0
        self._nod_pos, self._nod_vel = 0.0, 0.0
        self._last_nod = -1.0
        self._phase = [self._rng.uniform(0, 2 * math.pi) for _ in range(4)]
        self._next_blink = self._rng.uniform(*BLINK_INTERVAL_S) * 0.5
        self._blink_start = -1.0
        self._silent_for = 0.0
        self._next_saccade = self._rng.uniform(*SACCADE_INTERVAL_S)
        self._gaze_target = (0.0, 0.0)
        self._gaze = [0.0, 0.0]
        self._gate = 0.0  # before easing: rises exponentially, falls linearly
        self._gate_attack = 1.0 - math.exp(-dt / GATE_ATTACK_S)
        self._gate_step = dt / GATE_CLOSE_S
        self._level_k, self._saccade_k = (
            1.0 - math.exp(-dt / tau) for tau in (LEVEL_AVG_S, SACCADE_S)
        )
        self._brow_rise, self._brow_fall = (
            1.0 - math.exp(-dt / tau) for tau in (BROW_RISE_S, BROW_FALL_S)
        )

    def animate(self, articulation: np.ndarray, speech: np.ndarray, loudness: np.ndarray):
        """Per frame: (coarticulated) articulation [n, 6], speech probability [n], loudness
        (ln, vs peak) [n].

        Returns weights [n, 52], head [n, 3], gaze [n, 2] (float32).
        """
        rows = []  # per frame: the mapping's terms, then head (3), then gaze (2)
        for art, p_speech, loud in zip(
            articulation.tolist(), speech.tolist(), loudness.tolist(), strict=True
        ):
            voiced = _voiced(p_speech)
            self._speech += (voiced - self._speech) * self._speech_k
            heard = voiced > 0.3 and loud > QUIET_LN
            pause = self._silent_for  # the silence this frame ends, if it is speech
            self._silent_for = 0.0 if heard else pause + self.dt
            gate = self._speaking(voiced)
            head = [gate * v for v in self._head(voiced, loud, art[0])]
            blink = self._blink(heard, pause)
            gaze = [gate * v for v in self._saccade()]
            o, c, r, s, d, t = art
            yaw, pitch = gaze[0] / GAZE_PER_WEIGHT, gaze[1] / GAZE_PER_WEIGHT
            rows.append((
                o, c, r, s, d, t, o * c, o * d, o * c * d, r * o, r * s, gate * self._brow, blink,
                max(yaw, 0.0), max(-yaw, 0.0), max(pitch, 0.0), max(-pitch, 0.0), *head, *gaze,
            ))  # fmt: skip
            self._t += self.dt
        table = np.array(rows, np.float32).reshape(len(rows), _NUM_TERMS + 5)  # one conversion
        weights = table[:, :_NUM_TERMS] @ _MAPPING
        np.minimum(np.maximum(weights, 0.0, out=weights), 1.0, out=weights)
        return weights, table[:, _NUM_TERMS : _NUM_TERMS + 3], table[:, _NUM_TERMS + 3 :]

    def _speaking(self, voiced: float) -> float:
        """The rest gate: opens with speech, holds ``GATE_HOLD_S`` into a silence (counted
        from the last frame heard as speech: louder than ``QUIET_LN`` too), then closes
        within ``GATE_CLOSE_S``, eased at both ends (smoothstep)."""
        held = voiced > 0.05 or self._silent_for < GATE_HOLD_S
        if held:
            self._gate += (1.0 - self._gate) * self._gate_attack
        else:
            self._gate = max(0.0, self._gate - self._gate_step)
        g = self._gate
        return g * g * (3.0 - 2.0 * g)

    def _head(self, voiced: float, loud: float, opening: float) -> tuple[float, float, float]:
        """Nods on emphasised syllables (a damped spring kicked by each) plus a slow sway."""
        if voiced > 0.5:
            self._loud_avg += (loud - self._loud_avg) * self._level_k
        # Emphasis: a syllable clearly louder than the running speech level; brows follow it.
        emphasis = (
            min(1.0, max(0.0, (loud - self._loud_avg - EMPHASIS_LN) / EMPHASIS_RANGE)) * voiced
        )
        rate = self._brow_rise if emphasis > self._brow else self._brow_fall
        self._brow += (emphasis - self._brow) * rate
        if emphasis > 0.35 and opening > 0.4 and self._t - self._last_nod > NOD_REFRACTORY_S:
            self._nod_vel += NOD_GAIN * emphasis * 2 * math.pi * NOD_HZ
            self._last_nod = self._t
        w = 2 * math.pi * NOD_HZ  # critically damped: one dip and back, no wobble
        self._nod_vel += (-w * w * self._nod_pos - 2 * w * self._nod_vel) * self.dt
        self._nod_pos += self._nod_vel * self.dt
        t, p, s = 2 * math.pi * self._t, self._phase, self._speech
        return (
            s * SWAY[0] * math.sin(0.31 * t + p[0]) + self._nod_pos,
            s * SWAY[1] * (0.7 * math.sin(0.17 * t + p[1]) + 0.3 * math.sin(0.43 * t + p[2])),
            s * SWAY[2] * math.sin(0.23 * t + p[3]),
        )

    def _blink(self, heard: bool, pause: float) -> float:
        """Blinks while speaking (the client's idle animation blinks in silence); a phrase
        after a pause (``pause`` s of silence before this frame) often starts with one."""
        t = self._t
        if heard:
            if pause > PHRASE_PAUSE_S and self._rng.random() < 0.5:
                self._next_blink = t
            if t >= self._next_blink and self._speech > 0.3:
                self._blink_start = t
                self._next_blink = t + self._rng.uniform(*BLINK_INTERVAL_S)
        since = t - self._blink_start
        if 0 <= since < BLINK_CLOSE_S:
            return math.sin(0.5 * math.pi * since / BLINK_CLOSE_S)
        if BLINK_CLOSE_S <= since < BLINK_CLOSE_S + BLINK_OPEN_S:
            return math.cos(0.5 * math.pi * (since - BLINK_CLOSE_S) / BLINK_OPEN_S)
        return 0.0

    def _saccade(self) -> tuple[float, float]:
        """Small gaze jumps while speaking, back to centre (idle's job) in silence."""
        if self._t >= self._next_saccade:
            self._gaze_target = (
                self._rng.uniform(-1, 1) * SACCADE_RANGE[0],
                self._rng.uniform(-1, 1) * SACCADE_RANGE[1],
            )
            self._next_saccade = self._t + self._rng.uniform(*SACCADE_INTERVAL_S)
        g = self._gaze
        for j in range(2):  # a saccade lands in about 70 ms
            g[j] += (self._gaze_target[j] * self._speech - g[j]) * self._saccade_k
        return g[0], g[1]


# The face is linear in a few products of the articulators (and the eye/brow signals),
# so one small matrix product maps a whole batch of frames onto the 52 channels.
_TERMS = (
    "o",
    "c",
    "r",
    "s",
    "d",
    "t",
    "oc",
    "od",
    "ocd",
    "ro",
    "rs",
    "brow",
    "blink",
    "right",
    "left",
    "up",
    "down",
)
_T = {name: i for i, name in enumerate(_TERMS)}
_NUM_TERMS = len(_TERMS)


def _mapping() -> np.ndarray:
    """[terms, 52]: a hand-set mapping, see docs/motion-model.md.

    The jaw carries most of the opening; lips close and press on p/b/m, funnel/pucker
    round, stretch/smile spread; the lower lip rolls in under the upper teeth for f/v.
    """
    m = np.zeros((len(_TERMS), NUM_BLENDSHAPES))

    def put(channels: str | list[int], **terms: float) -> None:
        cols = [_I[channels]] if isinstance(channels, str) else channels
        for term, value in terms.items():
            m[_T[term], cols] = value

    # jawOpen = 0.62 o (1 - 0.85 c)(1 - 0.5 d)
    put("jawOpen", o=0.62, oc=-0.62 * 0.85, od=-0.31, ocd=0.62 * 0.425)
    put("mouthClose", c=0.35)
    put(_pair("mouthPress"), c=0.6)
    put("mouthShrugLower", c=0.25)
    # lowerDown = 0.45 o (1 - c)(1 - d) + 0.1 t; upperUp = 0.22 o (1 - c) + 0.45 d
    put(_pair("mouthLowerDown"), o=0.45, oc=-0.45, od=-0.45, ocd=0.45, t=0.1)
    put(_pair("mouthUpperUp"), o=0.22, oc=-0.22, d=0.45)
    put("mouthRollLower", d=0.6)
    put("mouthRollUpper", d=0.1)
    put("mouthFunnel", r=0.7 * 0.35, ro=0.7)  # funnel = 0.7 r (0.35 + o)
    put("mouthPucker", r=0.9, ro=-0.45)  # pucker = 0.9 r (1 - 0.5 o)
    put(_pair("mouthStretch"), s=0.35, rs=-0.35)  # stretch = 0.35 s (1 - r)
    put(_pair("mouthSmile"), s=SPEECH_SMILE)
    put(_pair("cheekSquint"), s=0.12)
    put("tongueOut", t=0.3)
    put("browInnerUp", brow=0.45)
    put(_pair("browOuterUp"), brow=0.3)
    put(_pair("eyeBlink"), blink=1.0)
    put([_I["eyeLookOutRight"], _I["eyeLookInLeft"]], right=1.0)
    put([_I["eyeLookOutLeft"], _I["eyeLookInRight"]], left=1.0)
    put(_pair("eyeLookUp"), up=1.0)
    put(_pair("eyeLookDown"), down=1.0)
    return m.astype(np.float32)


_MAPPING = _mapping()


def lip_aperture(weights: np.ndarray) -> np.ndarray:
    """How open the lips look, from ARKit weights [n, 52] (the benchmark's aperture measure).

    Jaw plus lower lip, minus lip closing and pressing, floored at 0: closed is closed.
    """
    w = np.asarray(weights)
    lower = w[:, _pair("mouthLowerDown")].mean(axis=1)
    press = w[:, _pair("mouthPress")].mean(axis=1)
    return np.maximum(0.0, w[:, _I["jawOpen"]] + 0.5 * lower - w[:, _I["mouthClose"]] - 0.5 * press)


def mouth_moves(track: np.ndarray, hysteresis: float = 0.05) -> int:
    """Opening/closing movements in an aperture track: direction changes larger than
    ``hysteresis`` (the benchmark's and the tests' measure of chatter)."""
    count, direction, extreme = 0, 0, track[0]
    for value in track[1:]:
        if direction >= 0 and value < extreme - hysteresis:
            count, direction, extreme = count + (direction > 0), -1, value
        elif direction <= 0 and value > extreme + hysteresis:
            count, direction, extreme = count + (direction < 0), 1, value
        elif (direction > 0 and value > extreme) or (direction < 0 and value < extreme):
            extreme = value
    return count
