"""Every Python block of README.md and docs/*.md runs (conventions: docs_blocks.py)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import docs_blocks  # noqa: E402

BLOCKS = docs_blocks.python_blocks()


@pytest.fixture(scope="module")
def display():
    with docs_blocks.virtual_display() as name:
        yield name


def test_the_readme_snippet_is_among_them():
    assert any(b.path.name == "README.md" and b.runs and "load_blocking" in b.code for b in BLOCKS)


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
@pytest.mark.timeout(120)
def test_block(block, display, tmp_path):
    ast.parse(block.code)  # a norun block must still be Python
    if not block.runs:
        pytest.skip("norun block")
    result = docs_blocks.run_block(block, tmp_path, display)
    assert result.returncode == 0, f"{block.id} failed:\n{result.stdout}{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
