"""``scripts/apt_get.sh``: a held apt lock is waited for (bounded), with one message."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "apt_get.sh"
LOCKED = (
    "E: Could not get lock /var/lib/dpkg/lock-frontend. "
    "It is held by process 4242 (unattended-upgr)"
)

# A stand-in apt-get: reports the lock as held for the first $LOCKED_CALLS calls.
FAKE = f"""#!/usr/bin/env bash
n=$(cat "$COUNT" 2>/dev/null || echo 0); echo $((n + 1)) > "$COUNT"
if [ "$n" -lt "$LOCKED_CALLS" ]; then echo "{LOCKED}" >&2; exit 100; fi
echo "Setting up something ..."; exit 0
"""


def _run(tmp_path: Path, locked_calls: int, wait_s: int) -> subprocess.CompletedProcess:
    (tmp_path / "apt-get").write_text(FAKE)
    (tmp_path / "apt-get").chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{tmp_path}:{os.environ['PATH']}",
        "COUNT": str(tmp_path / "n"),
        "LOCKED_CALLS": str(locked_calls),
        "APT_LOCK_WAIT": str(wait_s),
        "APT_LOCK_POLL": "0.1",
    }
    env.pop("APT_LOCK_DEADLINE", None)
    return subprocess.run(
        ["bash", str(SCRIPT), "install", "xvfb"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.timeout(30)
def test_waits_for_a_held_lock_then_installs_quietly(tmp_path):
    result = _run(tmp_path, locked_calls=3, wait_s=20)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and re.fullmatch(
        r"\[setup\] another apt/dpkg process holds the lock; waiting up to (19|20)s", lines[0]
    )
    assert result.stderr == ""  # neither the lock errors nor apt's progress
    assert (tmp_path / "n").read_text().strip() == "4"


@pytest.mark.timeout(30)
def test_the_wait_is_bounded_and_the_reason_shown_once(tmp_path):
    started = time.monotonic()
    result = _run(tmp_path, locked_calls=10**6, wait_s=1)
    assert result.returncode == 1
    assert time.monotonic() - started < 10
    assert result.stderr.strip() == LOCKED
