"""Scene-side components shared by the scenes: captions, the HUD and the connection
banner (with its reconnect watchdog).

These know about avatars; the overlay widgets they drive (``engine.ui``) do not.
"""

from __future__ import annotations

import logging
import time
from collections import deque

from avatarkit import AvatarView
from avatarkit.controller import ConnectionState, ConversationState
from engine import App, Component
from engine.events import KEY_DOWN, Event
from engine.ui import Overlay, Text

log = logging.getLogger("scenes")

CAPTION_HOLD_S = 1.2  # a caption stays this long after its line ends
RETRY_FAILED_S = 3.0  # the watchdog restarts a failed connection after this long
RECOVERED_NOTICE_S = 2.5  # "reconnected" (and other notes) stay on screen this long
WARN: tuple[int, int, int, int] = (255, 196, 80, 255)
GOOD: tuple[int, int, int, int] = (120, 230, 140, 255)


class Captions(Component):
    """Subtitles of what an avatar says, word by word on its audio clock when the line
    has word timings (spoken words bright, upcoming ones dim)."""

    def __init__(
        self,
        overlay: Overlay,
        view: AvatarView,
        offset: tuple[int, int] = (0, 36),
        max_width: float = 0.72,
        scale: float = 1.0,
    ) -> None:
        self.view = view
        offset = (round(offset[0] * scale), round(offset[1] * scale))
        size = round(30 * scale)
        self.text = overlay.add(
            Text(
                anchor="bottom",
                offset=offset,
                align="center",
                size=size,
                max_width=max_width,
                visible=False,
            )
        )
        self.line = None
        self._conversation: str | None = None
        self._quiet_for = 0.0

    def show(self, line, conversation_id: str) -> None:
        self.line, self._conversation = line, conversation_id
        self.text.text = line.text
        self.text.highlight = 0 if line.words else None
        self.text.visible = True
        self._quiet_for = 0.0

    @property
    def visible(self) -> bool:
        return self.text.visible

    def update(self, dt: float) -> None:
        if self.line is None:
            return
        controller = self.view.controller
        state = controller.conversation_state
        if state in (ConversationState.PLAYING, ConversationState.PAUSED):
            self._quiet_for = 0.0
            if self.line.words:
                t = controller.audio_time
                self.text.highlight = sum(1 for w in self.line.words if w.start <= t)
        elif state == ConversationState.IDLE:
            self._quiet_for += dt
            if self.text.highlight is not None:
                self.text.highlight = len(self.line.words)
            if self._quiet_for > CAPTION_HOLD_S:
                self.text.visible = False
                self.line = None


class Hud(Component):
    """F1 / H toggles: frame rate, per-avatar connection, playback and buffer health, memory."""

    KEYS = ("f1", "h")

    def __init__(
        self,
        overlay: Overlay,
        views: list[AvatarView],
        server=None,
        visible: bool = False,
        scale: float = 1.0,
        app: App | None = None,
    ) -> None:
        self.views = views
        self.server = server  # optional: anything with ``active_sessions``
        self.app = app  # optional: its render quality is shown (auto may change it)
        self.text = overlay.add(
            Text(
                anchor="top-left",
                offset=(16, 16),
                size=round(20 * scale),
                max_width=0.9,
                visible=visible,
            )
        )
        self._dts: deque[float] = deque(maxlen=60)
        self._walls: deque[float] = deque(maxlen=60)
        self._last_wall: float | None = None
        self._refresh = 0.0

    @property
    def visible(self) -> bool:
        return self.text.visible

    def on_event(self, event: Event) -> bool:
        if event.type == KEY_DOWN and event.key in self.KEYS:
            self.text.visible = not self.text.visible
            return True
        return False

    def update(self, dt: float) -> None:
        now = time.perf_counter()
        if self._last_wall is not None:
            self._walls.append(now - self._last_wall)
        self._last_wall = now
        self._dts.append(dt)
        self._refresh -= dt
        if not self.text.visible or self._refresh > 0:
            return
        self._refresh = 0.5  # re-lay the text twice a second, like the health reports
        fps = len(self._dts) / max(sum(self._dts), 1e-9)
        wall_ms = 1000 * sum(self._walls) / max(len(self._walls), 1)
        rows = [f"HUD   {fps:5.1f} fps   {wall_ms:5.1f} ms/frame   {rss_mb():6.1f} MB"]
        if self.app is not None:
            adapts = self.app.adaptive is not None
            adaptive = " (auto: adapts to the frame rate)" if adapts else ""
            rows.append(f"render quality {self.app.quality.name}{adaptive}")
        if self.server is not None:
            rows.append(f"motion server: {self.server.active_sessions} sessions")
        for view in self.views:
            c, h = view.controller, view.controller.buffer_health
            rows.append(
                f"{view.avatar.id:<6} {c.connection_state:<12} {c.conversation_state:<9} "
                f"audio {h.audio_ms:5.0f} ms  motion {h.motion_ms:5.0f} ms  underruns {h.underruns}"
            )
        self.text.text = "\n".join(rows)


class ConnectionBanner(Component):
    """Tells the operator when the Motion Server connection is down, and heals it.

    The controller reconnects by itself a few times (backoff); when it gives up
    (``failed``) this watchdog restarts it every few seconds, so a kiosk outlives any
    server outage. Idle animation keeps playing throughout.
    """

    def __init__(self, overlay: Overlay, views: list[AvatarView], scale: float = 1.0) -> None:
        self.views = views
        self.text = overlay.add(
            Text(
                anchor="top",
                offset=(0, 16),
                size=round(24 * scale),
                color=WARN,
                visible=False,
                align="center",
            )
        )
        self.outages = 0  # how many times the connection went down (observable)
        self._down = False
        self._failed_for = 0.0
        self._notice = 0.0

    def update(self, dt: float) -> None:
        states = [v.controller.connection_state for v in self.views]
        down = [
            s for s in states if s != ConnectionState.CONNECTED and s != ConnectionState.CONNECTING
        ]
        if down:
            if not self._down:
                self._down = True
                self.outages += 1
                log.warning("Motion Server connection lost (%s); reconnecting", ", ".join(down))
            failed = ConnectionState.FAILED in down
            self._failed_for = self._failed_for + dt if failed else 0.0
            self.text.color = WARN
            self.text.text = (
                "Motion Server unreachable - retrying; the avatar keeps idling"
                if failed
                else "Motion Server connection lost - reconnecting..."
            )
            self.text.visible = True
            if self._failed_for >= RETRY_FAILED_S:
                self._failed_for = 0.0
                for view in self.views:
                    if view.controller.connection_state == ConnectionState.FAILED:
                        view.controller.start()
        elif self._down and all(s == ConnectionState.CONNECTED for s in states):
            self._down = False
            log.warning("Motion Server reconnected")
            self._notice = RECOVERED_NOTICE_S
            self.text.color = GOOD
            self.text.text = "Motion Server reconnected"
        elif self._notice > 0:
            self._notice -= dt
            if self._notice <= 0:
                self.text.visible = False

    def notify(self, message: str) -> None:
        """Show an operator message for a few seconds (or until the next state change)."""
        self.text.text, self.text.color, self.text.visible = message, WARN, True
        self._notice = RECOVERED_NOTICE_S

    @property
    def message(self) -> str | None:
        return self.text.text if self.text.visible else None


def rss_mb() -> float:
    """Resident memory of this process in MB (Linux /proc; else the peak from resource)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        import os

        return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
