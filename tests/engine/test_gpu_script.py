"""benchmarks/gpu.sh runs anywhere: on a software rasteriser it says so and stops."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_script_says_no_gpu_on_a_software_rasteriser(app):
    if not app.software:
        pytest.skip("a real GPU here: gpu.sh would run the whole benchmark set")
    run = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu.sh")],
        env={"PY": sys.executable, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "GL renderer: " in run.stdout
    assert "no GPU" in run.stdout, run.stdout
