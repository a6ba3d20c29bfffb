"""One guard for every app callback the SDK calls.

An app's callback runs on one of our threads (the render thread for the controller's and
the view's events, the event loop for load progress). An exception in it is the app's bug,
not ours: it is logged with its traceback and swallowed, so it can never stop the frame
loop, a download or a session. Every call of app code goes through ``call_app``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("avatarkit.callbacks")


def call_app(callback: Callable[..., Any] | None, *args: Any, what: str) -> bool:
    """Call ``callback(*args)`` if set; ``what`` names it in the log. Returns whether it ran
    without raising (False for ``None`` too)."""
    if callback is None:
        return False
    try:
        callback(*args)
    except Exception:  # the app's bug: report it, keep our thread alive
        log.exception("error in the app's %s callback", what)
        return False
    return True
