"""The local Motion Server and Console API (``avatarkit serve``), Spatius v2 compatible.

``create_app(config)`` builds the aiohttp application (Console API, ingress websocket,
avatar assets on one port); ``EmbeddedServer`` runs it on a thread for apps and tests.
"""

from __future__ import annotations

from avatarkit.server.app import create_app
from avatarkit.server.config import ServerConfig
from avatarkit.server.embedded import EmbeddedServer

__all__ = ["EmbeddedServer", "ServerConfig", "create_app"]
