"""Procedural meshes as plain arrays (``positions``, ``normals``, ``uvs``, ``indices``),
ready for ``GltfBuilder.add_mesh`` or tests."""

from __future__ import annotations

import numpy as np


def cube(size: float = 1.0) -> dict[str, np.ndarray]:
    """A cube with flat faces (24 vertices, 12 triangles), centred on the origin."""
    h = size / 2
    faces = [  # normal, up, right
        ((1, 0, 0), (0, 1, 0), (0, 0, -1)),
        ((-1, 0, 0), (0, 1, 0), (0, 0, 1)),
        ((0, 1, 0), (0, 0, -1), (1, 0, 0)),
        ((0, -1, 0), (0, 0, 1), (1, 0, 0)),
        ((0, 0, 1), (0, 1, 0), (1, 0, 0)),
        ((0, 0, -1), (0, 1, 0), (-1, 0, 0)),
    ]
    positions, normals, uvs, indices = [], [], [], []
    for f, face in enumerate(faces):
        n, up, right = (np.array(v, np.float32) for v in face)
        for u, v in ((0, 0), (1, 0), (1, 1), (0, 1)):
            positions.append((n + right * (2 * u - 1) + up * (2 * v - 1)) * h)
            normals.append(n)
            uvs.append((u, 1 - v))
        b = 4 * f
        indices += [b, b + 1, b + 2, b, b + 2, b + 3]
    return {
        "positions": np.array(positions, np.float32),
        "normals": np.array(normals, np.float32),
        "uvs": np.array(uvs, np.float32),
        "indices": np.array(indices, np.uint32),
    }


def uv_sphere(radius: float = 1.0, rings: int = 32, segments: int = 64) -> dict[str, np.ndarray]:
    """A UV sphere: ``(rings + 1) * (segments + 1)`` vertices, ``2 * rings * segments``
    triangles."""
    theta = np.linspace(0, np.pi, rings + 1, dtype=np.float32)  # from +y down
    phi = np.linspace(0, 2 * np.pi, segments + 1, dtype=np.float32)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    normals = np.stack([np.sin(t) * np.sin(p), np.cos(t), np.sin(t) * np.cos(p)], axis=-1).reshape(
        -1, 3
    )
    uvs = np.stack([p / (2 * np.pi), t / np.pi], axis=-1).reshape(-1, 2)
    r = np.arange(rings)[:, None]
    s = np.arange(segments)[None, :]
    a = r * (segments + 1) + s
    b = a + segments + 1
    quads = np.stack([a, b, a + 1, a + 1, b, b + 1], axis=-1).reshape(-1)
    return {
        "positions": (normals * radius).astype(np.float32),
        "normals": normals.astype(np.float32),
        "uvs": uvs.astype(np.float32),
        "indices": quads.astype(np.uint32),
    }
