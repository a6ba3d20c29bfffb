"""Audio output: a mixer of N sources over one device (PortAudio, null or virtual)."""

from __future__ import annotations

from engine.audio.devices import (
    AudioDevice,
    NullDevice,
    PyAudioDevice,
    VirtualDevice,
    default_block,
    open_device,
    output_devices,
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
    "default_block",
    "open_device",
    "output_devices",
    "pan_gains",
]
