"""Where the bundled runtime data lives: the package ``avatarkit.data``.

In a checkout that data is ``assets/`` (the editable install maps it there); in a wheel it
is ``site-packages/avatarkit/data``. Both are found the same way, through
``importlib.resources``, so an installed copy never looks for a repository it lacks.
``AVATARKIT_ASSETS`` points somewhere else instead (a folder with the same layout).
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

# The checkout (meaningful in the editable install only: examples, tests, golden images).
REPO_ROOT = Path(__file__).resolve().parent.parent


def _bundled_data() -> Path:
    try:
        root = files("avatarkit.data")
    except ModuleNotFoundError:  # a source tree on sys.path without any install
        return REPO_ROOT / "assets"
    # Installed packages are plain folders (wheels unpack, the editable install maps a
    # folder), so the traversable is a real path; callers need one for glob, open, str.
    return Path(str(root))


ASSETS_DIR = (
    Path(os.environ["AVATARKIT_ASSETS"]) if os.environ.get("AVATARKIT_ASSETS") else _bundled_data()
)
AVATARS_DIR = ASSETS_DIR / "avatars"
SPEECH_DIR = ASSETS_DIR / "speech"
MODELS_DIR = ASSETS_DIR / "models"
