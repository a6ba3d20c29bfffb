"""pygame, imported without the noise it prints into a command's stderr beside our one-line
errors: its support banner, and the deprecation warning its package-data lookup raises
wherever an older setuptools provides ``pkg_resources`` (many users' environments do).
"""

from __future__ import annotations

import os
import warnings
from types import ModuleType


def import_pygame() -> ModuleType:
    """The pygame module, imported quietly the first time (later imports reuse it)."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "pkg_resources is deprecated", UserWarning)
        import pygame
    return pygame
