"""Fixtures for the scene tests: a small headless stage (virtual clock, virtual audio)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from scenes._runtime import SceneOptions, Stage

SIZE = (384, 216)  # small: llvmpipe renders it fast, big enough for text


@pytest.fixture
def make_stage(tmp_path: Path):
    stages: list[Stage] = []

    def make(**changes) -> Stage:
        options = SceneOptions(headless=True, seconds=2.0, out=tmp_path, size=SIZE, fps=30)
        for key, value in changes.items():
            setattr(options, key, value)
        stage = Stage(options)
        stages.append(stage)
        return stage

    yield make
    for stage in stages:
        stage.close()


@pytest.fixture(name="step_until")
def step_until_fixture():
    return step_until


def step_until(
    stage: Stage, condition: Callable[[], bool], timeout: float = 10.0, max_frames: int = 600
) -> int:
    """Step frames (pausing a little in wall time: networks run in real time) until
    ``condition()`` holds; returns the frames stepped. Fails the test on timeout."""
    deadline = time.monotonic() + timeout
    for n in range(max_frames):
        if condition():
            return n
        if time.monotonic() > deadline:
            break
        stage.step()
        time.sleep(0.005)
    raise AssertionError(f"condition not met after {timeout} s")
