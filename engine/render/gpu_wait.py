"""Wait for the GPU without holding the GIL.

moderngl keeps the GIL through every call, and a software rasteriser (llvmpipe) does a
frame's work inside ``glFinish``, or inside whichever draw call finds its queue of
binned scenes full: 50-400 ms during which no other Python thread runs. The audio
device's callback is such a thread; starved that long, PortAudio underruns and ALSA's
PulseAudio plugin takes about 1.8 s to recover (speech comes out in blips). So the frame
loop flushes and waits through ``ctypes``, which releases the GIL around foreign calls,
on the GL library that dispatches to the current context (GLVND's libOpenGL, else libGL).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any

import moderngl

_LIBRARIES = ("libOpenGL.so.0", "libGL.so.1", ctypes.util.find_library("OpenGL"))


@functools.cache
def gl_function(function: str) -> Any:
    """A GL entry point of the library that dispatches to the current context, called
    without the GIL; None where no GL library is found. Callers set its ``argtypes``."""
    for name in _LIBRARIES:
        if not name:
            continue
        try:
            return getattr(ctypes.CDLL(name), function)  # CDLL, not PyDLL: GIL released
        except (OSError, AttributeError):
            continue
    return None


def wait_for_gpu(ctx: moderngl.Context) -> None:
    """Block until ``ctx`` (current on this thread) has finished all queued work, letting
    other threads run meanwhile; falls back to ``ctx.finish()`` without a GL library."""
    finish = gl_function("glFinish")
    if finish is None:
        ctx.finish()
    else:
        finish()


def flush_gpu() -> None:
    """Hand the queued draws to the rasteriser threads, GIL released: a software
    rasteriser that has to wait for room in its queue waits here, not inside a draw."""
    flush = gl_function("glFlush")
    if flush is not None:
        flush()
