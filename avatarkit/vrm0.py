"""VRM 0.x models face -Z: turned to face +Z when loaded, as every other avatar does.

UniVRM 0.x writes its models looking down glTF's -Z (VRM 1.0 and glTF look down +Z).
Framing, the view's camera, the scenes' lights and the contact sheet all take the face
to look along +Z, so a VRM 0.x model would show the back of its head. ``face_forward``
turns the roots of its scene half round about Y once, right after parsing (as three-vrm's
``VRMUtils.rotateVRM0`` does); skinned vertices follow their joints. Pure data, on
whichever thread parses the file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from engine.transform import quat_from_euler, quat_multiply

if TYPE_CHECKING:
    from engine import GltfAsset

_TURNED = "_avatarkit_vrm0_turned"  # set on an asset face_forward turned


def is_vrm0(asset: GltfAsset) -> bool:
    """A VRM 0.x document (a ``VRM`` extension and no VRM 1.0 ``VRMC_vrm``)."""
    ext = asset.extensions
    return isinstance(ext.get("VRM"), dict) and "VRMC_vrm" not in ext


def faces_back(asset: GltfAsset) -> bool:
    """True for a VRM 0.x asset still facing -Z (not turned by ``face_forward``)."""
    return is_vrm0(asset) and not getattr(asset, _TURNED, False)


def face_forward(asset: GltfAsset) -> bool:
    """Turn a VRM 0.x asset's scene half round about Y, in place, once; True if turned."""
    if not faces_back(asset):
        return False
    half = quat_from_euler(yaw=np.pi)
    turn = np.diag([-1.0, 1.0, -1.0, 1.0]).astype(np.float32)
    for index in dict.fromkeys(asset.roots):
        transform = asset.nodes[index].transform
        if transform.matrix is not None:
            transform.matrix = turn @ transform.matrix
        else:
            transform.rotation = quat_multiply(half, transform.rotation)
            transform.translation = transform.translation * turn[0:3, 0:3].diagonal()
    setattr(asset, _TURNED, True)
    return True
