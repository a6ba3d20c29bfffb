"""``avatarkit --help`` and every command's parser start without the heavy libraries:
building the parser loads no numpy, moderngl, engine renderer, aiohttp or PyAV (each
command imports what it uses when it runs)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("numpy", "moderngl", "engine.app", "aiohttp", "av", "pygame")

PROBE = f"""
import sys
from avatarkit.cli import build_parser
build_parser()
print(",".join(m for m in {HEAVY!r} if m in sys.modules))
"""


def test_building_the_parser_loads_no_heavy_library():
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "", f"the parser imported {out.stdout.strip()}"


def test_a_command_still_finds_what_it_imports_late(capsys):
    """The names the commands import when they run resolve (the engine's lazy exports)."""
    import engine
    from avatarkit.cli import main

    assert main(["avatars"]) == 0
    assert "ava" in capsys.readouterr().out
    for name in engine.__all__:
        assert getattr(engine, name) is not None
    assert set(engine.__all__) <= set(dir(engine))
