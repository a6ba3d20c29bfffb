"""pygame adds nothing to a command's stderr: not its banner, and not the deprecation
warning an older setuptools' ``pkg_resources`` raises when pygame looks up its data (the
one-line errors of ``tests/firsthour`` broke on it in an environment with setuptools < 81).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pygame")

# What setuptools < 81 does on import: a UserWarning naming itself deprecated.
FAKE_PKG_RESOURCES = """
import warnings
warnings.warn("pkg_resources is deprecated as an API. See https://setuptools.pypa.io",
              UserWarning, stacklevel=2)
def resource_exists(*args): return False
def resource_stream(*args): raise OSError
"""


def _stderr(tmp_path: Path, code: str) -> str:
    (tmp_path / "pkg_resources.py").write_text(FAKE_PKG_RESOURCES)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.getcwd()]))
    env.pop("PYGAME_HIDE_SUPPORT_PROMPT", None)
    result = subprocess.run(
        [sys.executable, "-W", "default", "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stderr + result.stdout


def test_pygame_imports_quietly(tmp_path):
    noisy = _stderr(tmp_path, "import pygame")
    assert "pkg_resources is deprecated" in noisy  # the fake does what setuptools does
    quiet = _stderr(tmp_path, "from engine.quiet_pygame import import_pygame; import_pygame()")
    assert quiet == ""
    # The engine's own modules that use pygame import it the same way.
    assert _stderr(tmp_path, "import engine.ui.widgets") == ""
