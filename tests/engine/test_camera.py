from __future__ import annotations

import numpy as np
import pytest

from engine import Camera


def _ndc(camera: Camera, aspect: float, points: np.ndarray) -> np.ndarray:
    clip = (
        np.c_[points, np.ones(len(points))]
        @ (camera.projection_matrix(aspect) @ camera.view_matrix()).T
    )
    return clip[:, :3] / clip[:, 3:4]


@pytest.mark.parametrize("aspect", [16 / 9, 1.0, 9 / 16])
@pytest.mark.parametrize("direction", [(0, 0, 1), (1, 0.5, 0.2), (0, 0.2, -1)])
def test_frame_bounds_fits_the_box_and_fills_the_view(aspect, direction):
    lo, hi = np.array([-0.2, 0.0, -0.1]), np.array([0.2, 0.5, 0.1])
    camera = Camera(fov_y=30).frame_bounds(lo, hi, direction=direction, aspect=aspect, margin=1.0)
    corners = np.array(
        [[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
    )
    ndc = _ndc(camera, aspect, corners)
    assert np.all(np.abs(ndc) <= 1.0)  # inside the frustum, near and far included
    assert np.abs(ndc[:, :2]).max() > 0.45  # and not a speck in the middle
    np.testing.assert_allclose(_ndc(camera, aspect, ((lo + hi) / 2)[None])[0, :2], 0, atol=1e-5)


def test_look_at_puts_the_target_in_the_centre_and_up_is_up():
    camera = Camera().look_at((3, 2, 5), (1, 1, 0))
    assert np.allclose(_ndc(camera, 1.5, np.array([[1, 1, 0]]))[0, :2], 0, atol=1e-6)
    above = _ndc(camera, 1.5, np.array([[1, 1.2, 0]]))[0]
    assert above[1] > 0


def test_view_follows_the_camera_edited_in_place():
    """The view is made again whenever the placement changes, however it is changed (the
    arrays edited in place too), and a caller cannot spoil the kept one."""
    camera = Camera().look_at((0.0, 0.0, 3.0), (0.0, 0.0, 0.0))
    first = camera.view_matrix()
    first[:] = 0.0  # the caller's copy
    np.testing.assert_allclose(camera.view_matrix()[:3, 3], [0.0, 0.0, -3.0], atol=1e-6)
    camera.position[:] = (1.0, 0.0, 3.0)
    camera.target[0] = 1.0
    np.testing.assert_allclose(camera.view_matrix()[:3, 3], [-1.0, 0.0, -3.0], atol=1e-6)
    camera.look_at((0.0, 0.0, 5.0), (0.0, 0.0, 0.0))
    np.testing.assert_allclose(camera.view_matrix()[:3, 3], [0.0, 0.0, -5.0], atol=1e-6)
