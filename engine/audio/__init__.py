"""Audio output: a mixer of N sources over one device (PortAudio, null or virtual)."""

from __future__ import annotations

from engine.audio.devices import (
    AudioDevice,
    NullDevice,
    PyAudioDevice,
    VirtualDevice,
    open_device,
)
from engine.audio.mixer import Mixer, pan_gains
from engine.audio.source import AudioSource

__all__ = [
    "AudioDevice",
    "AudioSource",
    "Mixer",
    "NullDevice",
    "PyAudioDevice",
    "VirtualDevice",
    "open_device",
    "pan_gains",
]
