"""A manifest with a wrong JSON shape is ``invalidAvatarMetadata``, never a stray exception."""

from __future__ import annotations

import pytest

from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.package import Manifest

GOOD = {
    "id": "kai",
    "model": "kai.glb",
    "files": [{"name": "kai.glb", "size": 1, "sha256": "0" * 64}],
}


@pytest.mark.parametrize(
    "field,value",
    [("blendshapes", [1]), ("blendshapes", "arkit52"), ("framing", [0, 1]), ("framing", "close")],
)
def test_wrong_shapes_are_invalid_metadata(field, value):
    assert Manifest.from_json(GOOD).id == "kai"
    with pytest.raises(AvatarKitError) as info:
        Manifest.from_json({**GOOD, field: value}, "test")
    assert info.value.code == ErrorCode.INVALID_AVATAR_METADATA
