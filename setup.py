"""Package discovery that pyproject.toml cannot express: everything else is there.

``assets/`` (runtime data) is installed as the package ``avatarkit.data`` without moving
it in the checkout; ``packages.find`` cannot add a mapped package next to the ones it
discovers, so discovery happens here and new subpackages still need no listing.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["engine*", "avatarkit*", "scenes*"]), "avatarkit.data"],
    package_dir={"avatarkit.data": "assets"},
)
