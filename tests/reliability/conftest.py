"""Reliability tests share the server fixtures of tests/conftest.py; this makes
``reliability_helpers`` importable."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # reliability_helpers
