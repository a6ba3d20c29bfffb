"""Wait for the GPU without holding the GIL.

moderngl keeps the GIL through every call, and a software rasteriser (llvmpipe) does a
frame's work inside ``glFinish``: 50-400 ms during which no other Python thread runs. The
audio device's callback is such a thread; starved that long, PortAudio underruns and
ALSA's PulseAudio plugin takes about 1.8 s to recover (speech comes out in blips). So the
frame loop waits through ``ctypes``, which releases the GIL around foreign calls, on the
GL library that dispatches to the current context (GLVND's libOpenGL, else libGL).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable

import moderngl

_LIBRARIES = ("libOpenGL.so.0", "libGL.so.1", ctypes.util.find_library("OpenGL"))


@functools.cache
def _gl_finish() -> Callable[[], None] | None:
    for name in _LIBRARIES:
        if not name:
            continue
        try:
            return ctypes.CDLL(name).glFinish  # CDLL (not PyDLL): the GIL is released
        except (OSError, AttributeError):
            continue
    return None


def wait_for_gpu(ctx: moderngl.Context) -> None:
    """Block until ``ctx`` (current on this thread) has finished all queued work, letting
    other threads run meanwhile; falls back to ``ctx.finish()`` without a GL library."""
    finish = _gl_finish()
    if finish is None:
        ctx.finish()
    else:
        finish()
