"""Runnable scenes built only from the public ``engine`` and ``avatarkit`` APIs:
``kiosk``, ``multi``, ``game``, ``golden`` and ``render_test`` (``python -m scenes.<name>``
or ``avatarkit demo <name>``). Modules starting with ``_`` are shared helpers, not scenes.
"""
