"""AvatarKit's runtime data: bundled avatars, speech lines and motion-model weights.

Installed as the package ``avatarkit.data`` (``setup.py`` maps this folder there), so a
wheel carries it and ``avatarkit.paths`` finds it with ``importlib.resources``. The
generator scripts beside the data are for the checkout only and stay out of the wheel.
"""
