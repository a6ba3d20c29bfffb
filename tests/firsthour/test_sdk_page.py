"""docs/sdk.md is the app developer's page: every error code has a row saying what to do."""

from __future__ import annotations

import re
from pathlib import Path

from avatarkit.errors import ErrorCode

PAGE = (Path(__file__).resolve().parents[2] / "docs" / "sdk.md").read_text(encoding="utf-8")


def test_every_error_code_has_a_row():
    section = PAGE.split("## Errors: every code, and what to do", 1)[1].split("\n## ", 1)[0]
    rows = {
        code
        for line in section.splitlines()
        if line.startswith("| `")
        for code in re.findall(r"`(\w+)`", line.split("|")[1])
    }
    assert rows >= {c.value for c in ErrorCode}, sorted({c.value for c in ErrorCode} - rows)


def test_the_console_api_call_is_shown():
    assert "X-Api-Key" in PAGE and "expireAt" in PAGE and "session-tokens" in PAGE
    assert "curl " in PAGE
