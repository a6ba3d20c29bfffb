"""Download progress for the CLI: a live bar on a terminal, one final line otherwise.

On a terminal ``tqdm`` draws the bar (bytes fraction, rate, time left); piped into a log
or a CI job, per-chunk updates are noise, so only the outcome is printed.
"""

from __future__ import annotations

import shutil
import sys
from typing import TextIO


class Progress:
    """``update(fraction)`` as a download goes, then ``finish(state)`` once."""

    def __init__(
        self, label: str, stream: TextIO | None = None, *, final_line: bool = True
    ) -> None:
        """``final_line``: print the outcome line (off where the command prints its own)."""
        self.label = label
        self.final_line = final_line
        self.stream = stream or sys.stderr
        self.fraction = 0.0
        self._bar = None
        if _isatty(self.stream):
            try:
                from tqdm import tqdm
            except ImportError:  # an install without tqdm still gets its final line
                tqdm = None
            if tqdm is not None:
                # a terminal that reports its size as 0x0 (a pty nobody sized) would hide the bar
                size = shutil.get_terminal_size((80, 24))  # falls back where a side is 0
                self._bar = tqdm(
                    total=100,
                    desc=label,
                    unit="%",
                    file=self.stream,
                    leave=True,
                    ncols=min(size.columns, 100),
                    nrows=size.lines,
                    bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}",
                )

    def update(self, fraction: float) -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        if self._bar is not None and fraction > self.fraction:
            self._bar.n = round(fraction * 100, 2)  # absolute, so float steps never sum past 100
            self._bar.refresh()
        self.fraction = max(self.fraction, fraction)

    def finish(self, state: str) -> None:
        """The outcome line; a failure prints none (the CLI's coded error line says it)."""
        if self._bar is not None:
            self._bar.close()
        if state != "failed" and self.final_line:
            print(f"{self.label}: {state} ({self.fraction * 100:.0f}%)", file=self.stream)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or fake stream
        return False
