"""The glTF fuzzer in CI: mutants of every bundled GLB, zero uncoded errors, slow loads,
hangs or memory blow-ups. It runs in a child process so a hang is a timeout here and the
child's peak RSS is its own. ``AVATARKIT_GLTF_FUZZ_MUTANTS`` (per GLB) and
``AVATARKIT_GLTF_FUZZ_SEED`` scale or vary it (CI: 750 per GLB, about 30 s on 2 cores)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FUZZER = Path(__file__).with_name("gltf_fuzz.py")
MUTANTS = int(os.environ.get("AVATARKIT_GLTF_FUZZ_MUTANTS", "750"))
SEED = int(os.environ.get("AVATARKIT_GLTF_FUZZ_SEED", "14"))

pytestmark = pytest.mark.timeout(600)


def test_gltf_fuzzer_finds_nothing():
    done = subprocess.run(
        [sys.executable, str(FUZZER), "--seed", str(SEED), "--mutants", str(MUTANTS)],
        capture_output=True,
        text=True,
        timeout=max(
            120, MUTANTS * 4 * 0.1
        ),  # a hang is caught inside at 10 s; this is the backstop
    )
    lines = done.stdout.strip().splitlines()
    # A hang ends the child from its watchdog ("HANG <mutant>" and every stack): no summary.
    assert lines and lines[-1].startswith("{"), (done.stdout[-3000:], done.stderr[-3000:])
    summary = json.loads(lines[-1])
    assert done.returncode == 0 and summary["finding_count"] == 0, "\n".join(lines[-20:])
    assert summary["mutants"] == 4 * MUTANTS
    # Every kind of outcome was reached: the mutants are not all rejected at the door.
    assert {"loaded", "invalidGltf", "gltfLimitExceeded", "gltfUriNotAllowed"} <= set(
        summary["outcomes"]
    )
    assert summary["peak_rss_growth_mb"] < 256 and summary["slowest_ms"] < 1000


def test_one_mutant_replays(capsys):
    sys.path.insert(0, str(FUZZER.parent))
    import gltf_fuzz

    assert gltf_fuzz.main(["--seed", str(SEED), "--mutants", "3", "--only", "kai:2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("kai:2: ") and json.loads(out.strip().splitlines()[-1])["mutants"] == 1
