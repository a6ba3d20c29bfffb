"""Backend Mode server SDK: a backend's session with the Motion Server (spatius-shaped)."""

from __future__ import annotations

from avatarkit.server_sdk.session import AvatarSession, SessionConfig, new_avatar_session

__all__ = ["AvatarSession", "SessionConfig", "new_avatar_session"]
