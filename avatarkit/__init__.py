"""AvatarKit for Python: open, self-hostable real-time talking avatars."""

__version__ = "0.1.0"
