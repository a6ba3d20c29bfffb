"""Where bundled assets live (an editable install reads them from the repository)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = Path(os.environ.get("AVATARKIT_ASSETS", REPO_ROOT / "assets"))
AVATARS_DIR = ASSETS_DIR / "avatars"
SPEECH_DIR = ASSETS_DIR / "speech"
MODELS_DIR = ASSETS_DIR / "models"
