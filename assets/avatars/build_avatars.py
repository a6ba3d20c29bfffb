"""Generate the bundled avatars: stylised busts with the 52 ARKit blendshapes.

Run ``python assets/avatars/build_avatars.py`` to rewrite every ``<id>/<id>.glb`` and
``<id>/manifest.json`` here. Pure numpy + pygltflib, no downloads, no unseeded
randomness: the same code always writes the same bytes.

Layout: +Y up, the face looks down +Z, metres, the origin at the bottom of the bust.
Every part is built from a parametric grid, so its texture is painted by evaluating a
colour function over the same parameters (the engine reads textures, not vertex
colours). The face parts (skin, eyes, lids, lashes, brows, teeth, tongue, mouth) are
primitives of one mesh ``Face`` with all 52 ARKit targets; hair, ears, neck and clothes
form the static mesh ``Body``.

Blendshapes are displacement fields with smooth (Gaussian / smoothstep) falloff over
the rest shape; the jaw is a rotation about a hinge near the ears, and the lips are
split by a seam of duplicated vertices so the mouth can open onto a dark cavity.
"""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pygltflib
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # run from a checkout without installing

from avatarkit.arkit import ARKIT_NAMES  # noqa: E402
from avatarkit.package_build import write_package  # noqa: E402

# Head-local landmarks (metres; head centre at the origin).
HEAD_CENTRE_Y = 0.36  # height of the head centre above the bust origin
MOUTH_Y = -0.047
MOUTH_HALF_WIDTH = 0.024
EYE_X, EYE_Y = 0.032, 0.012
EYE_RADIUS = 0.0125
JAW_PIVOT = np.array([0.0, -0.004, -0.018])
JAW_OPEN_ANGLE = 0.30  # radians at jawOpen = 1
NECK_PIVOT = (0.0, -0.075, -0.02)  # head-local point the head turns about
HEAD_NODE = "Head"
DEG = np.pi / 180
HAIR_LINING_ROWS = 4  # of the hair's rows from the rim up whose inside is drawn
SCALP_MARGIN = 0.2  # radians inside the hairline past which the skin is left out


# ----------------------------------------------------------------------------- maths
def smoothstep(e0: float, e1: float, x):
    t = np.clip((np.asarray(x, dtype=np.float64) - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def gauss2(x, y, cx, cy, sx, sy):
    return np.exp(-0.5 * (((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))


def rotate(points: np.ndarray, axis, angle, pivot) -> np.ndarray:
    """Rotate points (N,3) about an axis through pivot; angle may be per point (N,)."""
    k = np.asarray(axis, dtype=np.float64)
    k = k / np.linalg.norm(k)
    v = points - pivot
    a = np.asarray(angle, dtype=np.float64).reshape(-1, 1)
    cos, sin = np.cos(a), np.sin(a)
    rotated = v * cos + np.cross(k, v) * sin + np.outer(v @ k, k) * (1 - cos)
    return rotated + pivot


def grid_faces(rows: int, cols: int, wrap: bool) -> np.ndarray:
    """Two triangles per cell of a rows x cols vertex grid (row-major)."""
    c_end = cols if wrap else cols - 1
    r, c = np.meshgrid(np.arange(rows - 1), np.arange(c_end), indexing="ij")
    a = r * cols + c
    b = r * cols + (c + 1) % cols
    d = (r + 1) * cols + c
    e = (r + 1) * cols + (c + 1) % cols
    tris = np.stack([np.stack([a, d, b], -1), np.stack([b, d, e], -1)], -2)
    return tris.reshape(-1, 3)


def vertex_normals(positions: np.ndarray, faces: np.ndarray) -> np.ndarray:
    p = positions[faces]
    n = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    out = np.zeros_like(positions)
    for i in range(3):
        np.add.at(out, faces[:, i], n)
    length = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(length, 1e-12)


def orient_outward(positions: np.ndarray, faces: np.ndarray, centre) -> np.ndarray:
    """Flip the winding if most faces point towards ``centre`` (keeps normals outward)."""
    p = positions[faces]
    n = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    if np.sum(np.einsum("ij,ij->i", n, p.mean(axis=1) - centre)) < 0:
        faces = faces[:, ::-1].copy()
    return faces


def noise2(u, v, seed: int, octaves: int = 3):
    """Deterministic smooth noise from a few seeded sines (about -1..1)."""
    rng = np.random.default_rng(seed)
    total = np.zeros_like(np.asarray(u, dtype=np.float64))
    for o in range(octaves):
        f = 2.0**o
        for _ in range(3):
            a, b, ph = rng.uniform(-4, 4), rng.uniform(-4, 4), rng.uniform(0, 2 * np.pi)
            total += np.sin(f * (a * u + b * v) * 2 * np.pi + ph) / (f * 3)
    return total / 1.2


def facing_out_of_the_mouth(normals: np.ndarray, keep: float = 0.3) -> np.ndarray:
    """Normals bent towards +Z (out of the mouth), keeping ``keep`` of their own shape.

    Inside the mouth no light arrives from behind or the side; with their true normals
    the back teeth and the tongue catch the rim light (a backlight meant for the
    silhouette), which washed the tongue pale and the back teeth grey-green."""
    bent = keep * normals + (1 - keep) * np.array([0.0, 0.0, 1.0])
    return bent / np.linalg.norm(bent, axis=1, keepdims=True)


def texture_from(fn, width: int, height: int) -> np.ndarray:
    """Paint an RGB texture by evaluating fn(u, v) at texel centres (v=0 top row)."""
    u = (np.arange(width) + 0.5) / width
    v = (np.arange(height) + 0.5) / height
    uu, vv = np.meshgrid(u, v)
    rgb = fn(uu, vv)
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


# ----------------------------------------------------------------------------- styles
@dataclass(frozen=True)
class Style:
    id: str
    name: str
    skin: tuple[float, float, float]
    lips: tuple[float, float, float]
    iris: tuple[float, float, float]
    hair: tuple[float, float, float]
    hair_style: str  # crop | bob | bun | curls
    shirt: tuple[float, float, float]
    collar: tuple[float, float, float]
    width: float = 0.074  # half-widths of the head ellipsoid
    height: float = 0.100
    depth: float = 0.090
    jaw_taper: float = 0.26
    chin: float = 0.006
    nose: float = 1.0  # nose size factor
    brow_thickness: float = 1.0
    lashes: float = 1.0
    neck: float = 0.053  # neck radius
    seed: int = 1


STYLES = (
    Style(
        id="ava", name="Ava", skin=(0.93, 0.76, 0.66), lips=(0.78, 0.40, 0.42),
        iris=(0.24, 0.45, 0.62), hair=(0.36, 0.20, 0.11), hair_style="bob",
        shirt=(0.20, 0.42, 0.55), collar=(0.93, 0.92, 0.88),
        width=0.077, height=0.097, jaw_taper=0.22, chin=0.004, nose=0.85, brow_thickness=0.8,
        lashes=1.3, seed=11,
    ),
    Style(
        id="kai", name="Kai", skin=(0.62, 0.43, 0.31), lips=(0.55, 0.30, 0.28),
        iris=(0.30, 0.19, 0.10), hair=(0.07, 0.06, 0.06), hair_style="crop",
        shirt=(0.30, 0.38, 0.52), collar=(0.86, 0.85, 0.80),
        width=0.081, height=0.099, jaw_taper=0.14, chin=0.008, nose=1.1, brow_thickness=1.25,
        lashes=0.7, neck=0.058, seed=22,
    ),
    Style(
        id="mei", name="Mei", skin=(0.93, 0.77, 0.64), lips=(0.84, 0.45, 0.47),
        iris=(0.22, 0.14, 0.08), hair=(0.05, 0.05, 0.07), hair_style="bun",
        shirt=(0.70, 0.42, 0.48), collar=(0.95, 0.93, 0.90),
        width=0.078, height=0.095, depth=0.088, jaw_taper=0.22, chin=0.003, nose=0.8,
        brow_thickness=0.85, lashes=1.2, seed=33,
    ),
    Style(
        id="noor", name="Noor", skin=(0.45, 0.29, 0.20), lips=(0.42, 0.22, 0.22),
        iris=(0.18, 0.11, 0.06), hair=(0.10, 0.07, 0.06), hair_style="curls",
        shirt=(0.86, 0.62, 0.30), collar=(0.35, 0.25, 0.18),
        width=0.080, height=0.098, jaw_taper=0.17, chin=0.006, nose=1.05, brow_thickness=1.1,
        lashes=1.1, neck=0.056, seed=44,
    ),
)  # fmt: skip


# ----------------------------------------------------------------------------- parts
@dataclass
class Part:
    """One primitive: positions, normals, UVs, triangles, material and ARKit deltas."""

    name: str
    positions: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray | None
    material: str
    deltas: dict[str, np.ndarray] = field(default_factory=dict)
    normals: np.ndarray | None = None

    def finish(self) -> Part:
        if self.normals is None:
            self.normals = vertex_normals(self.positions, self.faces)
        return self


def lining(part: Part, faces: np.ndarray) -> Part:
    """The back of ``part``'s ``faces`` (a mask) as a part of its own: their vertices
    copied with normals turned inward, targets kept, winding flipped. Lining only where a
    thin surface's back can show lets the material be one-sided: a back-face pass would
    run every triangle of it through a software rasteriser again."""
    assert part.normals is not None
    chosen = part.faces[faces]
    used = np.unique(chosen)
    remap = np.zeros(len(part.positions), np.int64)
    remap[used] = np.arange(len(used))
    return Part(
        f"{part.name}_lining",
        part.positions[used],
        remap[chosen][:, ::-1],
        None if part.uvs is None else part.uvs[used],
        part.material,
        {name: delta[used] for name, delta in part.deltas.items()},
        -part.normals[used],
    )


def sphere_dirs(theta, phi):
    """Unit directions: theta from +Y (0 = top), phi around Y from +Z towards +X."""
    st = np.sin(theta)
    return np.stack([st * np.sin(phi), np.cos(theta), st * np.cos(phi)], axis=-1)


class HeadShape:
    """The rest surface of the head as a function of (theta, phi), before eye sockets."""

    def __init__(self, s: Style) -> None:
        self.s = s

    def point(self, theta, phi) -> np.ndarray:
        s = self.s
        d = sphere_dirs(np.asarray(theta, float), np.asarray(phi, float))
        ry = np.where(d[..., 1] > 0, s.height, s.height * 1.02)
        rz = np.where(d[..., 2] > 0, s.depth, s.depth * 1.06)
        p = d * np.stack([np.full_like(ry, s.width), ry, rz], -1)
        x, y, z = p[..., 0], p[..., 1], p[..., 2]
        # Narrow the lower face towards the chin; flatten the cheeks a little.
        lower = smoothstep(-0.015, -0.10, y)
        x = x * (1.0 - s.jaw_taper * lower)
        z = z - 0.012 * lower * smoothstep(0.0, -0.06, z)  # tuck the under-jaw back
        front = smoothstep(0.15, 0.65, d[..., 2])
        z = z + front * self.relief(x, y)
        return np.stack([x, y, z], -1)

    def relief(self, x, y):
        """Forward displacement of the facial features at (x, y)."""
        s, ax = self.s, np.abs(x)
        nose_profile = np.interp(
            -y, [-0.032, -0.012, 0.008, 0.020, 0.027, 0.033, 0.040],
            [0.0, 0.0025, 0.0085, 0.0155, 0.0165, 0.0075, 0.0],
        )  # fmt: skip
        nose_width = np.interp(-y, [-0.03, 0.0, 0.025, 0.04], [0.0045, 0.0050, 0.0075, 0.0085])
        nose = s.nose * nose_profile * np.exp(-0.5 * (x / nose_width) ** 2)
        nostrils = 0.006 * s.nose * gauss2(ax, y, 0.0115 * s.nose, -0.028, 0.0055, 0.005)
        brow = 0.004 * gauss2(ax, y, 0.030, 0.030, 0.020, 0.008)
        socket = -0.004 * gauss2(ax, y, EYE_X, EYE_Y, 0.014, 0.010)
        cheek = 0.005 * gauss2(ax, y, 0.043, -0.012, 0.015, 0.013)
        muzzle = 0.007 * gauss2(x, y, 0.0, MOUTH_Y, 0.022, 0.017)
        upper_lip = 0.0032 * gauss2(x, y, 0.0, MOUTH_Y + 0.0045, 0.013, 0.0035)
        lower_lip = 0.0040 * gauss2(x, y, 0.0, MOUTH_Y - 0.006, 0.012, 0.004)
        chin = (s.chin + 0.003) * gauss2(x, y, 0.0, -0.080, 0.014, 0.011)
        return nose + nostrils + brow + socket + cheek + muzzle + upper_lip + lower_lip + chin

    def normal(self, theta, phi) -> np.ndarray:
        e = 1e-4
        dt = self.point(theta + e, phi) - self.point(theta - e, phi)
        dp = self.point(theta, phi + e) - self.point(theta, phi - e)
        n = np.cross(dt, dp)
        n = n / np.linalg.norm(n, axis=-1, keepdims=True)
        outward = np.sign(np.sum(n * self.point(theta, phi), axis=-1, keepdims=True))
        return n * np.where(outward == 0, 1, outward)

    def front_params(self, x, y):
        """(theta, phi) of the front surface point above (x, y) (upper face only)."""
        theta = np.arccos(np.clip(y / self.s.height, -1, 1))
        phi = np.arcsin(np.clip(x / (self.s.width * np.sin(theta)), -1, 1))
        return theta, phi


def warped(n: int, centres: list[tuple[float, float, float]], lo: float, hi: float) -> np.ndarray:
    """n samples over [lo, hi], denser around (centre, width, gain) bumps."""
    fine = np.linspace(lo, hi, 4000)
    density = np.ones_like(fine)
    for c, w, g in centres:
        density += g * np.exp(-0.5 * ((fine - c) / w) ** 2)
    cdf = np.concatenate([[0], np.cumsum((density[1:] + density[:-1]) / 2)])
    return np.interp(np.linspace(0, cdf[-1], n), cdf, fine)


# ----------------------------------------------------------------------------- face fields
class FaceRig:
    """Landmarks and the displacement fields shared by every skin-like part."""

    def __init__(self, s: Style, shape: HeadShape) -> None:
        self.s, self.shape = s, shape
        eyes = []
        for side in (1, -1):  # subject's left eye is at +X
            th, ph = shape.front_params(side * EYE_X, EYE_Y)
            surface = shape.point(th, ph)
            eyes.append(np.array([side * EYE_X, EYE_Y, surface[2] - EYE_RADIUS + 0.0045]))
        self.eye_left, self.eye_right = eyes
        th_m, ph_m = shape.front_params(0.0, 0.02)
        self.mouth_z = float(shape.point(np.arccos(MOUTH_Y / (s.height * 1.02)), 0.0)[2])

    def jaw_line(self, x):
        """Height of the upper/lower face divide: the mouth line, rising to the jaw hinge."""
        ax = np.abs(x)
        return MOUTH_Y + (JAW_PIVOT[1] - MOUTH_Y) * smoothstep(MOUTH_HALF_WIDTH, 0.075, ax)

    def jaw_weight(
        self,
        p: np.ndarray,
        lower_seam: np.ndarray | None = None,
        upper_seam: np.ndarray | None = None,
    ) -> np.ndarray:
        x, y, z = p[:, 0], p[:, 1], p[:, 2]
        below = self.jaw_line(x) - y
        # Below the line the lower lip follows the jaw fully at the centre and half at the
        # corners (a rounded opening), reaching full further down; above the line only the
        # cheeks beyond the corners follow, up to half. Every column grows monotonically
        # downwards, so no vertex ever overtakes the one above it (no folds).
        ax = np.abs(x)
        corner = 1.0 - 0.5 * smoothstep(MOUTH_HALF_WIDTH - 0.012, MOUTH_HALF_WIDTH, ax)
        lower = corner + (1.0 - corner) * smoothstep(0.0, 0.012, below)
        soft = np.maximum(0.0006, 0.8 * (ax - MOUTH_HALF_WIDTH))
        upper = np.where(ax < MOUTH_HALF_WIDTH, 0.0, 0.5 * smoothstep(-soft, 0.0, below))
        is_lower = below > 1e-5 if lower_seam is None else (below > 1e-5) | lower_seam
        w = np.where(is_lower, lower, upper)
        if upper_seam is not None:
            # The upper lip's edge stays, except towards the corners, where it follows the
            # jaw most of the way down to the lower lip's edge (0.35 of its 0.5 at the
            # corner; all of it folds the skin under mouthClose): the opening narrows into
            # each corner instead of ending in a notch.
            w = np.where(upper_seam, 0.7 * (1.0 - corner), w)
        # The back of the under-jaw blends into the (static) neck.
        return w * smoothstep(-0.05, 0.01, z)

    def fields(self, p: np.ndarray, jaw: np.ndarray) -> dict[str, np.ndarray]:
        """ARKit name -> (N,3) deltas for skin-like points p with jaw weights."""
        x, y, z = p[:, 0], p[:, 1], p[:, 2]
        n = len(p)
        front = smoothstep(0.0, 0.05, z)
        out: dict[str, np.ndarray] = {}

        def vec(dx=0.0, dy=0.0, dz=0.0, w=1.0):
            d = np.zeros((n, 3))
            d[:, 0], d[:, 1], d[:, 2] = dx, dy, dz
            return d * np.asarray(w).reshape(-1, 1) if np.ndim(w) else d * w

        jaw_rot = rotate(p, (1, 0, 0), JAW_OPEN_ANGLE * jaw, JAW_PIVOT) - p
        out["jawOpen"] = jaw_rot
        out["jawForward"] = vec(dz=0.006, w=jaw)
        out["jawLeft"] = vec(dx=0.007, w=jaw)
        out["jawRight"] = vec(dx=-0.007, w=jaw)

        mouth = front * gauss2(x, y, 0.0, MOUTH_Y, 0.020, 0.011)
        lip_band = (
            front * gauss2(x, y, 0.0, MOUTH_Y, 0.018, 0.007) * smoothstep(0.032, 0.02, np.abs(x))
        )
        upper, lower = 1.0 - jaw, jaw
        # mouthClose: the lips meet over an open jaw (lower lip follows back up).
        close_rot = rotate(p, (1, 0, 0), -JAW_OPEN_ANGLE * 0.78 * jaw, JAW_PIVOT) - p
        out["mouthClose"] = close_rot * (lip_band * lower)[:, None] + vec(
            dy=-0.0045, w=lip_band * upper
        )
        out["mouthFunnel"] = (
            vec(dz=0.007, w=lip_band)
            + np.stack([-0.45 * x * lip_band, np.zeros(n), np.zeros(n)], -1)
            + vec(dy=0.005, w=lip_band * upper * gauss2(x, y, 0, MOUTH_Y, 0.011, 0.02))
            + vec(dy=-0.007, w=lip_band * lower * gauss2(x, y, 0, MOUTH_Y, 0.011, 0.02))
        )
        out["mouthPucker"] = vec(dz=0.010, w=lip_band) + np.stack(
            [-0.5 * x * lip_band, np.zeros(n), np.zeros(n)], -1
        )
        out["mouthLeft"] = vec(dx=0.008, w=mouth)
        out["mouthRight"] = vec(dx=-0.008, w=mouth)
        out["mouthRollLower"] = vec(dy=0.002, dz=-0.004, w=lip_band * lower)
        out["mouthRollUpper"] = vec(dy=-0.002, dz=-0.004, w=lip_band * upper)
        chin = front * gauss2(x, y, 0.0, -0.070, 0.02, 0.016)
        out["mouthShrugLower"] = vec(dy=0.004, dz=0.003, w=lip_band * lower + 0.6 * chin)
        out["mouthShrugUpper"] = vec(dy=0.003, dz=0.002, w=lip_band * upper)
        for side, suffix in ((1, "Left"), (-1, "Right")):
            cx = side * MOUTH_HALF_WIDTH
            corner = front * gauss2(x, y, cx, MOUTH_Y, 0.011, 0.010)
            half = front * gauss2(x, y, side * 0.011, MOUTH_Y, 0.011, 0.008)
            cheek = front * gauss2(x, y, side * 0.042, -0.020, 0.014, 0.013)
            out[f"mouthSmile{suffix}"] = vec(side * 0.005, 0.007, -0.002, corner) + vec(
                dy=0.003, dz=0.002, w=cheek
            )
            out[f"mouthFrown{suffix}"] = vec(dy=-0.006, w=corner)
            out[f"mouthDimple{suffix}"] = vec(side * 0.003, 0.0, -0.004, corner)
            out[f"mouthStretch{suffix}"] = vec(side * 0.006, -0.003, -0.001, corner)
            out[f"mouthPress{suffix}"] = vec(
                dy=-0.0015, dz=-0.001, w=half * lip_band * upper
            ) + vec(dy=0.0025, dz=-0.001, w=half * lip_band * lower)
            out[f"mouthLowerDown{suffix}"] = vec(
                dy=-0.005, dz=0.001, w=half * lower * smoothstep(-0.035, -0.05, y)
            )
            out[f"mouthUpperUp{suffix}"] = vec(
                dy=0.005, dz=0.001, w=half * upper * smoothstep(-0.025, -0.04, y)
            )
            out[f"cheekSquint{suffix}"] = vec(
                dy=0.004, dz=0.001, w=front * gauss2(x, y, side * 0.038, -0.006, 0.013, 0.009)
            )
            out[f"noseSneer{suffix}"] = vec(
                dy=0.003, dz=0.001, w=front * gauss2(x, y, side * 0.011, -0.018, 0.007, 0.008)
            )
            brow = front * gauss2(x, y, side * 0.032, EYE_Y + 0.024, 0.020, 0.010)
            inner = front * gauss2(x, y, side * 0.016, EYE_Y + 0.022, 0.010, 0.010)
            outer = front * gauss2(x, y, side * 0.046, EYE_Y + 0.020, 0.012, 0.010)
            out[f"browDown{suffix}"] = vec(dy=-0.005, dz=0.001, w=brow) + vec(
                dx=-side * 0.003, w=inner
            )
            out[f"browOuterUp{suffix}"] = vec(dy=0.006, w=outer)
        inner_both = front * (
            gauss2(x, y, 0.016, EYE_Y + 0.022, 0.011, 0.011)
            + gauss2(x, y, -0.016, EYE_Y + 0.022, 0.011, 0.011)
        )
        out["browInnerUp"] = vec(dy=0.007, w=np.minimum(inner_both, 1.0))
        puff = front * (
            gauss2(x, y, 0.040, -0.040, 0.014, 0.016) + gauss2(x, y, -0.040, -0.040, 0.014, 0.016)
        )
        out["cheekPuff"] = np.stack([np.sign(x) * 0.008 * puff, np.zeros(n), 0.004 * puff], -1)
        out["tongueOut"] = vec(dy=-0.004, w=lip_band * lower)
        return out


# ----------------------------------------------------------------------------- builders
class AvatarBuilder:
    def __init__(self, s: Style) -> None:
        self.s = s
        self.shape = HeadShape(s)
        self.rig = FaceRig(s, self.shape)
        self.textures: dict[str, np.ndarray] = {}
        self.materials: dict[str, dict] = {}

    def material(
        self, name: str, color=(1, 1, 1), texture: np.ndarray | None = None, rough=0.6, double=True
    ):
        if texture is not None:
            self.textures[name] = texture
        self.materials[name] = {
            "color": color,
            "texture": name if texture is not None else None,
            "rough": rough,
            "double": double,
        }
        return name

    # -- skin ---------------------------------------------------------------------
    def hair_line(self, phi):
        """Polar angle of the hairline around the head (0 = crown) for the scalp tint."""
        back = np.cos(phi)  # 1 front, -1 back
        style = self.s.hair_style
        front_edge = {"crop": 0.80, "bob": 0.92, "bun": 0.86, "curls": 0.80}[style]
        side_edge = {"crop": 1.55, "bob": 2.10, "bun": 1.55, "curls": 1.70}[style]
        back_edge = {"crop": 1.95, "bob": 2.20, "bun": 1.95, "curls": 2.0}[style]
        line = np.where(
            back > 0,
            side_edge + (front_edge - side_edge) * np.abs(back) ** 1.5,
            side_edge + (back_edge - side_edge) * (-back),
        )
        # Locks: a gently scalloped edge reads as hair rather than a helmet.
        scallop = {"crop": 0.03, "bob": 0.02, "bun": 0.015, "curls": 0.05}[style]
        return line + scallop * np.abs(np.cos(phi * 9.0))

    def skin_color(self, theta, phi):
        s = self.s
        p = self.shape.point(theta, phi)
        x, y, z = p[..., 0], p[..., 1], p[..., 2]
        ax = np.abs(x)
        base = np.array(s.skin)
        col = np.broadcast_to(base, p.shape).copy()
        col *= (1 + 0.025 * noise2(theta * 3, phi * 3, s.seed))[..., None]
        front = smoothstep(0.0, 0.05, z)[..., None]
        blush = (front[..., 0] * gauss2(ax, y, 0.044, -0.024, 0.016, 0.013))[..., None]
        col = col * (1 - 0.28 * blush) + 0.28 * blush * base * np.array([1.06, 0.80, 0.78])
        tip = (front[..., 0] * gauss2(x, y, 0, -0.022, 0.008, 0.008))[..., None]
        col = col * (1 - 0.15 * tip) + 0.15 * tip * base * np.array([1.05, 0.82, 0.80])
        nostril = (front[..., 0] * gauss2(ax, y, 0.0072 * s.nose, -0.0295, 0.0022, 0.0016))[
            ..., None
        ]
        col = col * (1 - 0.55 * nostril)
        lids = (front[..., 0] * gauss2(ax, y, EYE_X, EYE_Y + 0.004, 0.016, 0.011))[..., None]
        col = col * (1 - 0.10 * lids) + 0.10 * lids * base * np.array([0.85, 0.75, 0.78])
        # Lips: a cupid's bow on top, a fuller curve below.
        t = np.clip(ax / MOUTH_HALF_WIDTH, 0, 1)
        upper_h = 0.0075 * (1 - t**2) ** 0.6 * (
            1 - 0.18 * np.exp(-((x / 0.004) ** 2))
        ) + 0.0012 * np.exp(-(((ax - 0.007) / 0.004) ** 2))
        lower_h = 0.0095 * (1 - t**2) ** 0.5
        dy = y - MOUTH_Y
        inside = np.where(dy > 0, upper_h - dy, lower_h + dy)
        lip = (
            smoothstep(-0.0005, 0.0009, inside) * (ax < MOUTH_HALF_WIDTH + 0.002) * front[..., 0]
        )[..., None]
        col = (
            col * (1 - lip)
            + lip * np.array(s.lips) * (1 - 0.25 * np.exp(-((dy / 0.0012) ** 2)))[..., None]
        )
        # Scalp under the hair takes the hair colour, so gaps in the hair never show skin.
        scalp = smoothstep(0.06, -0.02, theta - self.hair_line(phi))[..., None]
        col = col * (1 - scalp) + scalp * np.array(s.hair) * 0.8
        return col

    def skin(self) -> Part:
        s, rig = self.s, self.rig
        theta_m = float(np.arccos(MOUTH_Y / (s.height * 1.02)))
        theta_e = float(np.arccos(EYE_Y / s.height))
        thetas = warped(47, [(theta_m, 0.12, 3.0), (theta_e, 0.14, 1.8)], 0.025, np.pi - 0.05)
        k = int(np.argmin(np.abs(thetas - theta_m)))
        thetas[k] = theta_m
        phis = warped(62, [(0.0, 0.5, 2.6)], -np.pi, np.pi)[:-1]  # -pi..pi, back seam duplicated
        phis = np.concatenate([phis, [np.pi]])
        tt, pp = np.meshgrid(thetas, phis, indexing="ij")
        pos = self.shape.point(tt, pp).reshape(-1, 3)
        rows, cols = tt.shape
        uv = np.stack([(pp + np.pi) / (2 * np.pi), tt / np.pi], -1).reshape(-1, 2)
        faces = grid_faces(rows, cols, wrap=False)
        # Lip seam: the mouth row's central vertices are duplicated; faces below use the copies.
        seam_cols = np.nonzero(np.abs(pos[k * cols : (k + 1) * cols, 0]) < MOUTH_HALF_WIDTH)[0]
        seam_cols = seam_cols[pos[k * cols + seam_cols, 2] > 0]
        originals = k * cols + seam_cols
        copies = len(pos) + np.arange(len(seam_cols))
        remap = np.arange(len(pos))
        remap[originals] = copies
        below = faces.min(axis=1) >= k * cols  # faces between rows k and k+1 touch row k from below
        faces[below] = remap[faces[below]]
        pos = np.concatenate([pos, pos[originals]])
        uv = np.concatenate([uv, uv[originals]])
        lower_seam = np.zeros(len(pos), bool)
        lower_seam[copies] = True
        # Tuck the lip line inward so the parted lips read as rolled, not paper-thin.
        seam = np.zeros(len(pos), bool)
        seam[originals] = seam[copies] = True
        tuck = np.where(seam, 1.0, 0.0) * smoothstep(
            MOUTH_HALF_WIDTH, MOUTH_HALF_WIDTH - 0.008, np.abs(pos[:, 0])
        )
        pos[:, 2] -= 0.0035 * tuck
        # Poles: fan caps.
        top = len(pos)
        bottom = top + 1
        pos = np.concatenate(
            [
                pos,
                self.shape.point(np.array([0.0]), np.array([0.0])),
                self.shape.point(np.array([np.pi]), np.array([0.0])),
            ]
        )
        uv = np.concatenate([uv, [[0.5, 0.0], [0.5, 1.0]]])
        lower_seam = np.concatenate([lower_seam, [False, False]])
        c = np.arange(cols - 1)
        cap_top = np.stack([np.full_like(c, top), c + 1, c], -1)
        last = (rows - 1) * cols
        cap_bottom = np.stack([np.full_like(c, bottom), last + c, last + c + 1], -1)
        faces = np.concatenate([faces, cap_top, cap_bottom])
        pos = self.eye_sockets(pos)
        faces = orient_outward(pos, faces, np.zeros(3))
        normals = vertex_normals(pos, faces)
        # The duplicated back-seam column must share normals with its twin.
        first, last_col = np.arange(rows) * cols, np.arange(rows) * cols + cols - 1
        avg = normals[first] + normals[last_col]
        avg /= np.linalg.norm(avg, axis=1, keepdims=True)
        normals[first] = normals[last_col] = avg
        upper_seam = np.zeros(len(pos), bool)
        upper_seam[originals] = True
        jaw = rig.jaw_weight(pos, lower_seam, upper_seam)
        part = Part("skin", pos, faces, uv, "skin", normals=normals)
        part.deltas = rig.fields(pos, jaw)
        self.eyelid_skin(part)
        # Skin well inside the hairline is never seen (the hair covers it, head turns carry
        # both): drop its still triangles, which cost a software rasteriser as much as seen
        # ones. The vertices stay (the other parts' fields are built on this numbering).
        theta = np.concatenate([tt.ravel(), tt.ravel()[originals], [0.0, np.pi]])
        phi = np.concatenate([pp.ravel(), pp.ravel()[originals], [0.0, 0.0]])
        hidden = theta < self.hair_line(phi) - SCALP_MARGIN
        for delta in part.deltas.values():  # a target moving it by 0.1 mm stays under the hair
            hidden &= np.linalg.norm(delta, axis=1) < 1e-4
        part.faces = part.faces[~hidden[part.faces].all(axis=1)]
        self.material(
            "skin",
            texture=texture_from(
                lambda u, v: self.skin_color(v * np.pi, u * 2 * np.pi - np.pi), 512, 512
            ),
            rough=0.55,
            double=False,
        )
        self.jaw_pos = pos
        return part

    def eye_sockets(self, pos: np.ndarray) -> np.ndarray:
        """Sink the skin in front of each eyeball behind it, so the eye shows through."""
        for c in (self.rig.eye_left, self.rig.eye_right):
            v = pos - c
            r = np.linalg.norm(v, axis=1)
            d = v / np.maximum(r, 1e-9)[:, None]
            # Elliptical cone around the forward axis: wider than tall.
            ang = np.sqrt(
                (np.arctan2(d[:, 0], d[:, 2]) / (62 * DEG)) ** 2
                + (np.arcsin(np.clip(d[:, 1], -1, 1)) / (44 * DEG)) ** 2
            )
            w = smoothstep(1.25, 0.95, ang) * (d[:, 2] > 0) * smoothstep(0.027, 0.019, r)
            target = EYE_RADIUS - 0.0012
            new_r = np.where(r > target, r + w * (target - r), r)
            pos = c + d * new_r[:, None]
        return pos

    def eyelid_skin(self, part: Part) -> None:
        """Skin just above/below the eyes follows blinks and squints a little."""
        p = part.positions
        x, y = p[:, 0], p[:, 1]
        for side, suffix in ((1, "Left"), (-1, "Right")):
            above = gauss2(x, y, side * EYE_X, EYE_Y + 0.014, 0.014, 0.006) * (p[:, 2] > 0)
            below = gauss2(x, y, side * EYE_X, EYE_Y - 0.014, 0.013, 0.006) * (p[:, 2] > 0)
            part.deltas[f"eyeBlink{suffix}"] = np.outer(above, [0, -0.0025, 0]) + np.outer(
                below, [0, 0.001, 0]
            )
            part.deltas[f"eyeSquint{suffix}"] = np.outer(below, [0, 0.003, 0.0005]) + np.outer(
                above, [0, -0.0012, 0]
            )
            part.deltas[f"eyeWide{suffix}"] = np.outer(above, [0, 0.002, 0])

    # -- eyes ----------------------------------------------------------------------
    def eye_color(self, u, v):
        alpha = v * 180.0  # polar angle from the gaze axis, degrees
        iris = np.array(self.s.iris)
        sclera = np.array([0.96, 0.94, 0.91])
        col = np.broadcast_to(sclera, alpha.shape + (3,)).copy()
        col *= (1 - 0.08 * smoothstep(40, 90, alpha))[..., None] * np.array([1.0, 0.97, 0.97])
        streak = 1 + 0.18 * np.sin(u * 2 * np.pi * 23) * smoothstep(11, 18, alpha)
        iris_col = (
            iris * (1.3 - 0.65 * smoothstep(10.5, 25.5, alpha))[..., None] * streak[..., None]
        )
        in_iris = smoothstep(27.2, 25.8, alpha)[..., None]
        col = col * (1 - in_iris) + in_iris * iris_col
        pupil = smoothstep(10.2, 9.0, alpha)[..., None]
        col = col * (1 - pupil) + pupil * 0.03
        return col

    def eye(self, centre: np.ndarray, side: int) -> Part:
        alphas = (
            np.array([1, 4, 8.6, 10, 11.5, 17, 24.5, 26.2, 27.8, 32, 42, 58, 82, 115, 165]) * DEG
        )
        psis = np.linspace(0, 2 * np.pi, 23)
        aa, ss = np.meshgrid(alphas, psis, indexing="ij")
        bulge = 1 + 0.07 * np.cos(np.clip(aa / (28 * DEG), 0, 1) * np.pi / 2) ** 2
        local = (
            np.stack([np.sin(aa) * np.cos(ss), np.sin(aa) * np.sin(ss), np.cos(aa)], -1)
            * (EYE_RADIUS * bulge)[..., None]
        )
        pos = local.reshape(-1, 3) + centre
        uv = np.stack([ss / (2 * np.pi), aa / np.pi], -1).reshape(-1, 2)
        faces = grid_faces(len(alphas), len(psis), wrap=False)
        tip = len(pos)
        pos = np.concatenate([pos, [centre + [0, 0, EYE_RADIUS * 1.07]]])
        uv = np.concatenate([uv, [[0.5, 0.0]]])
        c = np.arange(len(psis) - 1)
        faces = np.concatenate([faces, np.stack([np.full_like(c, tip), c, c + 1], -1)])
        faces = orient_outward(pos, faces, centre)
        normals = vertex_normals(pos, faces)
        seam_a = np.arange(len(alphas)) * len(psis)
        seam_b = seam_a + len(psis) - 1
        avg = normals[seam_a] + normals[seam_b]
        normals[seam_a] = normals[seam_b] = avg / np.linalg.norm(avg, axis=1, keepdims=True)
        part = Part(f"eye_{'L' if side > 0 else 'R'}", pos, faces, uv, "eye", normals=normals)
        suffix = "Left" if side > 0 else "Right"
        # Gaze: rotate the eyeball about its centre. "In" looks towards the nose.
        looks = {
            "Up": ((1, 0, 0), -20 * DEG), "Down": ((1, 0, 0), 22 * DEG),
            "In": ((0, 1, 0), -side * 26 * DEG), "Out": ((0, 1, 0), side * 26 * DEG),
        }  # fmt: skip
        for name, (axis, angle) in looks.items():
            part.deltas[f"eyeLook{name}{suffix}"] = (
                rotate(pos, axis, np.full(len(pos), angle), centre) - pos
            )
        self.material(
            "eye", texture=texture_from(self.eye_color, 64, 256), rough=0.15, double=False
        )
        return part

    # -- lids ----------------------------------------------------------------------
    def lid_edges(self, side: int, u, mode: str = "rest"):
        """Upper and lower lid-edge elevations (radians) along u in -1..1 (inner..outer)."""
        meet = np.where(u > 0, 3.0, -4.0) * np.abs(u) * DEG
        bell = np.clip(1 - u**2, 0, 1)
        upper = meet + 23 * DEG * bell**0.7  # just over the top of the iris: relaxed, not startled
        lower = meet - 19 * DEG * bell**0.8
        return upper, lower

    def lids(self, centre: np.ndarray, side: int) -> list[Part]:
        suffix = "Left" if side > 0 else "Right"
        beta_c = 58 * DEG
        betas = np.linspace(-1.3, 1.3, 27)  # in units of beta_c, negative = inner corner
        ts = np.array([0.0, 0.03, 0.1, 0.22, 0.4, 0.65, 1.0])

        def lid(upper: bool, edge, radius, lash=False):
            # Rows: a margin rolled onto the eyeball, the edge, then out over the socket.
            far = (108 if upper else -100) * DEG
            rows = []
            rows.append(self.lid_points(centre, side, betas * beta_c, edge, EYE_RADIUS + 0.0002))
            for t in ts:
                rows.append(
                    self.lid_points(
                        centre, side, betas * beta_c, edge + t * (far - edge), radius + 0.0006 * t
                    )
                )
            return np.stack(rows).reshape(-1, 3)

        def lashes(edge, scale):
            rows = []
            for i, out in enumerate((0.0, 0.0016, 0.0032)):
                tilt = edge + (i * 5 * DEG)
                r = EYE_RADIUS + 0.0011 + out * scale
                rows.append(
                    self.lid_points(centre, side, betas * beta_c, tilt, r, lash_lift=out * scale)
                )
            return np.stack(rows).reshape(-1, 3)

        u = np.clip(betas, -1, 1)
        u_side = u * side  # outer corner is +X for the left eye
        up_rest, low_rest = self.lid_edges(side, u)
        states = {
            "rest": (up_rest, low_rest),
            f"eyeBlink{suffix}": (
                low_rest - 1.5 * DEG,
                low_rest + 2 * DEG * np.clip(1 - u**2, 0, 1),
            ),
            f"eyeSquint{suffix}": (
                up_rest - 5 * DEG * np.clip(1 - u**2, 0, 1),
                low_rest + 9 * DEG * np.clip(1 - u**2, 0, 1),
            ),
            f"eyeWide{suffix}": (
                up_rest + 10 * DEG * np.clip(1 - u**2, 0, 1),
                low_rest - 2 * DEG * np.clip(1 - u**2, 0, 1),
            ),
            f"eyeLookUp{suffix}": (
                up_rest + 7 * DEG * np.clip(1 - u**2, 0, 1),
                low_rest + 4 * DEG * np.clip(1 - u**2, 0, 1),
            ),
            f"eyeLookDown{suffix}": (
                up_rest - 11 * DEG * np.clip(1 - u**2, 0, 1),
                low_rest - 4 * DEG * np.clip(1 - u**2, 0, 1),
            ),
            f"cheekSquint{suffix}": (up_rest, low_rest + 4 * DEG * np.clip(1 - u**2, 0, 1)),
        }
        del u_side
        radius_up, radius_low = EYE_RADIUS + 0.0011, EYE_RADIUS + 0.0008
        rows = len(ts) + 1
        cols = len(betas)
        faces = grid_faces(rows, cols, wrap=False)
        uv_rows = np.concatenate([[0.0], 0.06 + 0.94 * ts])
        uv = np.stack(np.meshgrid(np.linspace(0, 1, cols), uv_rows), -1).reshape(-1, 2)
        parts = []
        for upper in (True, False):
            pick = 0 if upper else 1
            rest = lid(upper, states["rest"][pick], radius_up if upper else radius_low)
            f = orient_outward(rest, faces, centre)
            part = Part(f"lid_{'upper' if upper else 'lower'}_{suffix[0]}", rest, f, uv, "lid")
            for name, edges in states.items():
                if name != "rest":
                    part.deltas[name] = (
                        lid(upper, edges[pick], radius_up if upper else radius_low) - rest
                    )
            parts.append(part)
        if self.s.lashes > 0:
            rest = lashes(up_rest, self.s.lashes)
            f = grid_faces(3, cols, wrap=False)
            part = Part(f"lashes_{suffix[0]}", rest, f, None, "lashes")
            for name, edges in states.items():
                if name != "rest":
                    part.deltas[name] = lashes(edges[0], self.s.lashes) - rest
            parts.append(part)
        skin = np.array(self.s.skin)
        self.material(
            "lid",
            texture=texture_from(
                lambda uu, vv: (
                    skin
                    * (1 - 0.55 * smoothstep(0.12, 0.04, vv) - 0.06 * smoothstep(0.1, 0.5, vv))[
                        ..., None
                    ]
                    * np.array([1, 0.95, 0.95])
                ),
                4,
                64,
            ),
            rough=0.5,
        )
        self.material("lashes", color=(0.05, 0.04, 0.04), rough=0.8)
        return parts

    def lid_points(self, centre, side, beta, elevation, radius, lash_lift=0.0):
        """Points on a sphere around the eye: beta = azimuth (+ towards the outer corner)."""
        b = beta * side
        el = np.broadcast_to(elevation, np.shape(beta))
        d = np.stack([np.cos(el) * np.sin(b), np.sin(el), np.cos(el) * np.cos(b)], -1)
        return (
            centre + d * np.asarray(radius).reshape(-1, 1)
            if np.ndim(radius)
            else centre + d * radius
        )

    # -- brows ---------------------------------------------------------------------
    def brows(self, side: int) -> Part:
        s = np.linspace(0, 1, 14)
        x = side * (EYE_X - 0.017 + 0.041 * s)
        y = EYE_Y + 0.019 + 0.006 * np.sin(np.pi * s**0.75) - 0.002 * s
        half = (0.0032 * (1 - 0.55 * s) + 0.0006) * self.s.brow_thickness
        rows = []
        for off, lift in ((-1.0, 0.0006), (0.0, 0.0022), (1.0, 0.0006)):
            th, ph = self.shape.front_params(x, y + off * half)
            p = self.shape.point(th, ph) + self.shape.normal(th, ph) * lift
            rows.append(p)
        pos = np.stack(rows).reshape(-1, 3)
        faces = orient_outward(pos, grid_faces(3, len(s), wrap=False), np.zeros(3))
        part = Part(f"brow_{'L' if side > 0 else 'R'}", pos, faces, None, "brow")
        fields = self.rig.fields(pos, np.zeros(len(pos)))
        part.deltas = {k: v for k, v in fields.items() if k.startswith("brow")}
        self.material("brow", color=tuple(np.array(self.s.hair) * 0.8), rough=0.9)
        return part

    # -- mouth interior --------------------------------------------------------------
    def teeth(self, upper: bool) -> Part:
        z0 = self.rig.mouth_z - (0.0105 if upper else 0.0125)
        u = np.linspace(-0.88, 0.88, 29)
        arc = np.stack([0.0185 * u, np.zeros_like(u), z0 - 0.009 * u**2 - 0.014 * u**4], -1)
        tangent = np.gradient(arc, axis=0)
        normal = np.cross(tangent, [0, 1, 0])
        normal /= np.linalg.norm(normal, axis=1, keepdims=True)  # points outwards (+Z at the front)
        if normal[15, 2] < 0:
            normal = -normal
        # A shallow scallop: deeper notches are a pixel or less at 640x360, where they
        # alias into a saw-toothed biting edge.
        scallop = 0.0004 * np.abs(np.sin(u * np.pi * 3.5)) ** 0.5
        sign = 1 if upper else -1
        edge_y = MOUTH_Y + sign * (0.0010 + scallop) - (0.0050 if upper else 0.0)
        root_y = MOUTH_Y + sign * 0.0085
        # Cross-section: gum front, tooth front, biting edge, tooth back, gum back.
        heights = [
            root_y,
            MOUTH_Y + sign * 0.0068,
            edge_y + sign * 0.0008,
            edge_y,
            edge_y + sign * 0.0008,
            root_y,
        ]
        depth = [0.0016, 0.0012, 0.0006, -0.0015, -0.0036, -0.0040]
        rows = []
        for h, dp in zip(heights, depth, strict=True):
            rows.append(
                arc
                + normal * dp
                + np.outer(np.ones_like(u), [0, 0, 0])
                + np.stack(
                    [np.zeros_like(u), h if np.ndim(h) else np.full_like(u, h), np.zeros_like(u)],
                    -1,
                )
            )
        pos = np.stack(rows).reshape(-1, 3)
        faces = grid_faces(len(rows), len(u), wrap=False)
        faces = orient_outward(pos, faces, np.array([0, MOUTH_Y + sign * 0.004, z0 - 0.03]))
        v_rows = np.array([0.0, 0.28, 0.6, 0.75, 0.9, 1.0])
        uv = np.stack(np.meshgrid(np.linspace(0, 1, len(u)), v_rows), -1).reshape(-1, 2)
        normals = facing_out_of_the_mouth(vertex_normals(pos, faces))
        name = "teeth_upper" if upper else "teeth_lower"
        part = Part(name, pos, faces, uv, "teeth", normals=normals)
        part.deltas = self.rigid_mouth(pos, 0.0 if upper else 1.0)
        gum = np.array([0.80, 0.42, 0.45])
        enamel = np.array([0.95, 0.93, 0.86])
        shadow = np.array([0.32, 0.13, 0.13])  # the mouth's dark red: shadow is warm, not grey

        def teeth_tex(uu, vv):
            shade = 1 - 0.65 * smoothstep(0.35, 1.0, np.abs(2 * uu - 1))  # back teeth sit in shadow
            col = (
                gum * (1 - smoothstep(0.22, 0.3, vv))[..., None]
                + enamel * smoothstep(0.22, 0.3, vv)[..., None]
            )
            return col * shade[..., None] + shadow * (1 - shade)[..., None]

        # One-sided, as the tongue: their backs face into the mouth and never show (the
        # same pixels in 144 views and poses), and a back-face pass redraws every triangle.
        self.material("teeth", texture=texture_from(teeth_tex, 32, 64), rough=0.35, double=False)
        return part

    def rigid_mouth(self, pos: np.ndarray, jaw: float) -> dict[str, np.ndarray]:
        """Deltas of a part that moves rigidly with the jaw (jaw=1) or the skull (jaw=0)."""
        if jaw == 0.0:
            return {}
        w = np.full(len(pos), jaw)
        return {
            "jawOpen": rotate(pos, (1, 0, 0), JAW_OPEN_ANGLE * w, JAW_PIVOT) - pos,
            "jawForward": np.outer(w, [0, 0, 0.006]),
            "jawLeft": np.outer(w, [0.007, 0, 0]),
            "jawRight": np.outer(w, [-0.007, 0, 0]),
        }

    def tongue(self) -> Part:
        z0 = self.rig.mouth_z - 0.038
        th = np.linspace(0.05, np.pi - 0.05, 10)
        ph = np.linspace(0, 2 * np.pi, 17)
        tt, pp = np.meshgrid(th, ph, indexing="ij")
        d = sphere_dirs(tt, pp)
        pos = (d * [0.016, 0.0065, 0.026]).reshape(-1, 3) + [0, MOUTH_Y - 0.0085, z0]
        pos[:, 1] += (
            0.004 * (pos[:, 1] > MOUTH_Y - 0.0085) * np.exp(-((pos[:, 0] / 0.004) ** 2)) * -0.4
        )  # centre groove
        faces = orient_outward(
            pos, grid_faces(len(th), len(ph), wrap=False), np.array([0, MOUTH_Y - 0.0085, z0])
        )
        normals = facing_out_of_the_mouth(vertex_normals(pos, faces))
        part = Part("tongue", pos, faces, None, "tongue", normals=normals)
        part.deltas = self.rigid_mouth(pos, 1.0)
        front = smoothstep(z0 - 0.01, z0 + 0.026, pos[:, 2])
        part.deltas["tongueOut"] = np.outer(front, [0, -0.004, 0.032]) + np.outer(
            1 - front, [0, -0.002, 0.016]
        )
        self.material("tongue", color=(0.78, 0.36, 0.38), rough=0.35, double=False)
        return part

    def mouth_cavity(self) -> Part:
        centre = np.array([0.0, MOUTH_Y - 0.004, self.rig.mouth_z - 0.027])
        th = np.linspace(0.0, 98 * DEG, 10)  # polar angle from the back (-Z): open at the front
        ph = np.linspace(0, 2 * np.pi, 21)
        tt, pp = np.meshgrid(th, ph, indexing="ij")
        d = np.stack([np.sin(tt) * np.cos(pp), np.sin(tt) * np.sin(pp), -np.cos(tt)], -1)
        pos = (d * [0.028, 0.018, 0.025]).reshape(-1, 3) + centre
        faces = grid_faces(len(th), len(ph), wrap=False)
        faces = orient_outward(pos, faces, centre)[:, ::-1].copy()  # we only ever see its inside
        # Normals face out of the mouth: the interior stays evenly dark, with no rim light.
        normals = np.tile([0.0, 0.0, 1.0], (len(pos), 1))
        part = Part("mouth", pos, faces, None, "mouth", normals=normals)
        # The floor of the mouth follows the jaw at the front; the throat at the back stays.
        w = smoothstep(-0.004, 0.004, MOUTH_Y - pos[:, 1]) * smoothstep(
            centre[2] - 0.022, centre[2] + 0.005, pos[:, 2]
        )
        part.deltas = {"jawOpen": rotate(pos, (1, 0, 0), JAW_OPEN_ANGLE * w, JAW_PIVOT) - pos}
        self.material("mouth", color=(0.12, 0.03, 0.035), rough=1.0, double=False)
        return part

    # -- body ------------------------------------------------------------------------
    def hair(self) -> list[Part]:
        s = self.s
        style = s.hair_style
        phis = np.linspace(-np.pi, np.pi, 53)
        ts = np.linspace(0, 1, 19)
        line = self.hair_line(phis)
        tt = ts[:, None] * (line[None, :] + 0.04)
        pp = np.broadcast_to(phis, tt.shape)
        base = self.shape.point(tt, pp)
        n = self.shape.normal(np.maximum(tt, 0.02), pp)
        back = np.cos(pp)
        thickness = {"crop": 0.010, "bob": 0.013, "bun": 0.006, "curls": 0.022}[style]
        crown = 1 - ts[:, None] ** 2
        thick = thickness * (0.45 + 0.55 * crown) + 0.012 * crown * (style != "bun")
        if style == "crop":
            thick = (
                thick + 0.006 * smoothstep(0.3, -0.6, back) * crown
            )  # fuller at the back of the crown
            quiff = smoothstep(0.2, 0.9, back) * np.exp(-(((ts[:, None] - 0.55) / 0.25) ** 2))
            thick = thick + 0.010 * quiff  # volume swept up at the front
            clumps = np.abs(noise2(pp * 1.6, tt * 2.2, s.seed + 7, octaves=2))
            thick = thick + 0.004 * clumps * (0.3 + crown) * smoothstep(
                0.05, 0.3, ts[:, None]
            )  # short tufts
        if style == "curls":
            thick = thick * (1 + 0.22 * np.sin(pp * 11) * np.sin(tt * 13)) + 0.004 * np.sin(
                pp * 23 + tt * 17
            )
        pos = base + n * thick[..., None]
        if style == "bob":
            # Below ear level the hair hangs straight instead of hugging the jaw.
            r_xz = np.linalg.norm(pos[..., [0, 2]], axis=-1)
            hang = np.maximum.accumulate(np.where(tt > 1.3, r_xz, 0), axis=0)
            scale = np.where(tt > 1.3, np.maximum(hang / np.maximum(r_xz, 1e-6), 1.0), 1.0)
            pos[..., 0] *= scale
            pos[..., 2] *= scale
            # Fringe: the front edge falls forward and down over the forehead.
            fringe = smoothstep(0.3, 0.9, back) * smoothstep(0.5, 1.0, ts[:, None])
            pos[..., 2] += 0.006 * fringe
            pos[..., 1] -= 0.010 * fringe
        # A rim row rolling back to the scalp gives the edge thickness.
        rim = base[-1] + n[-1] * 0.001
        grid = np.concatenate([pos, rim[None]], 0)
        rows, cols = grid.shape[:2]
        p = grid.reshape(-1, 3) + [0, 0, 0]
        faces = orient_outward(p, grid_faces(rows, cols, wrap=False), np.zeros(3))
        uv = np.stack(
            np.meshgrid((phis + np.pi) / (2 * np.pi), np.concatenate([ts, [1.0]])), -1
        ).reshape(-1, 2)
        hair = Part("hair", p, faces, uv, "hair").finish()
        # Its inside where it stands off the head (the lowest rows) shows from below and
        # beside the jaw: lined there, so the rest is one-sided.
        parts = [hair, lining(hair, faces.min(axis=1) >= (rows - 1 - HAIR_LINING_ROWS) * cols)]
        hair_col = np.array(s.hair)

        def hair_tex(uu, vv):
            strands = 0.16 * noise2(uu * 40, vv * 0.5, s.seed + 5, octaves=2) + 0.08 * np.sin(
                uu * 2 * np.pi * 90
            )
            sheen = 0.35 * np.exp(-(((vv - 0.35) / 0.12) ** 2))
            lift = np.clip(strands + sheen, -0.3, 1.0)[..., None]
            # Dark hair shows its strands as a warm brown sheen, light hair as a brighter tint.
            highlight = np.maximum(hair_col * 1.8, np.array([0.22, 0.16, 0.12]))
            return np.where(
                lift > 0, hair_col + (highlight - hair_col) * lift, hair_col * (1 + lift)
            )

        # One-sided: its rim rolls back to the scalp, and its inside lies on the hair-tinted
        # scalp (a second, back-face pass would redraw every hair triangle).
        self.material("hair", texture=texture_from(hair_tex, 256, 128), rough=0.7, double=False)
        if style == "bun":
            centre = self.shape.point(np.array(0.55), np.array(np.pi)) * 1.0 + [0, 0.022, -0.012]
            th = np.linspace(0.08, np.pi - 0.08, 12)
            ph = np.linspace(0, 2 * np.pi, 19)
            tt2, pp2 = np.meshgrid(th, ph, indexing="ij")
            d = sphere_dirs(tt2, pp2)
            r = 0.030 * (1 + 0.06 * np.sin(pp2 * 6 + tt2 * 4))
            bun = (d * r[..., None]).reshape(-1, 3) + centre
            f = orient_outward(bun, grid_faces(len(th), len(ph), wrap=False), centre)
            uvb = np.stack([pp2 / (2 * np.pi), tt2 / np.pi], -1).reshape(-1, 2)
            parts.append(Part("hair_bun", bun, f, uvb, "hair"))
        return parts

    def ears(self) -> list[Part]:
        parts = []
        th = np.linspace(0.15, np.pi - 0.15, 10)
        ph = np.linspace(0, 2 * np.pi, 17)
        tt, pp = np.meshgrid(th, ph, indexing="ij")
        d = sphere_dirs(tt, pp)
        for side in (1, -1):
            local = d * [0.007, 0.026, 0.017]
            local[..., 0] += np.where(local[..., 0] * side < 0, 0.0, 0.0)
            centre = np.array([side * (self.s.width * 0.97), -0.004, -0.008])
            pos = rotate(
                local.reshape(-1, 3), (1, 0, 0), np.full(local.size // 3, -0.18), np.zeros(3)
            )
            pos = rotate(pos, (0, 1, 0), np.full(len(pos), side * 0.35), np.zeros(3)) + centre
            faces = orient_outward(pos, grid_faces(len(th), len(ph), wrap=False), centre)
            parts.append(Part(f"ear_{'L' if side > 0 else 'R'}", pos, faces, None, "skin_plain"))
        return parts

    def neck(self) -> Part:
        ys = np.linspace(-0.27, -0.052, 10)
        ph = np.linspace(0, 2 * np.pi, 28, endpoint=False)
        yy, pp = np.meshgrid(ys, ph, indexing="ij")
        r = self.s.neck + 0.010 * smoothstep(-0.13, -0.20, yy)  # flares into the shoulders
        # Its top (hidden inside the head) recedes at the front, clear of the mouth cavity.
        recede = 0.018 * smoothstep(-0.09, -0.055, yy) * np.clip(np.cos(pp), 0, None)
        pos = np.stack([r * np.sin(pp), yy, r * np.cos(pp) * 1.02 - 0.028 - recede], -1).reshape(
            -1, 3
        )
        faces = grid_faces(len(ys), len(ph), wrap=True)
        faces = orient_outward(pos, faces, np.array([0.0, -0.15, -0.028]))
        return Part("neck", pos, faces, None, "skin_plain")

    def torso(self) -> list[Part]:
        s = self.s
        # Profile: (height, half-width, half-depth) from the bottom of the bust up to the neckline.
        prof = np.array([
            [-0.40, 0.180, 0.095], [-0.32, 0.192, 0.098], [-0.26, 0.200, 0.096],
            [-0.232, 0.196, 0.092], [-0.214, 0.182, 0.086], [-0.202, 0.158, 0.079],
            [-0.193, 0.128, 0.072], [-0.186, 0.098, 0.066],
            [-0.181, s.neck + 0.022, 0.062], [-0.178, s.neck + 0.010, 0.060],
        ])  # fmt: skip
        prof[:, 0] += 0.04  # shoulders sit a little higher: a shorter neck reads friendlier
        ys = np.interp(
            np.linspace(0, 1, 16) ** 0.6, [0, 1], [prof[0, 0], prof[-1, 0]]
        )  # denser at the shoulders
        a = np.interp(ys, prof[:, 0], prof[:, 1])
        b = np.interp(ys, prof[:, 0], prof[:, 2])
        for _ in range(2):  # smooth the piecewise-linear profile
            a[1:-1] = 0.25 * a[:-2] + 0.5 * a[1:-1] + 0.25 * a[2:]
            b[1:-1] = 0.25 * b[:-2] + 0.5 * b[1:-1] + 0.25 * b[2:]
        ph = np.linspace(0, 2 * np.pi, 40, endpoint=False)
        yy, pp = np.meshgrid(ys, ph, indexing="ij")
        expo = 2.0 / 2.8  # superellipse: boxier shoulders
        sx = np.sign(np.sin(pp)) * np.abs(np.sin(pp)) ** expo
        sz = np.sign(np.cos(pp)) * np.abs(np.cos(pp)) ** expo
        pos = np.stack([a[:, None] * sx, yy, b[:, None] * sz - 0.012], -1).reshape(-1, 3)
        faces = orient_outward(
            pos, grid_faces(len(ys), len(ph), wrap=True), np.array([0, -0.25, -0.012])
        )
        parts = [
            Part("shirt", pos, faces, None, "shirt"),
            *self.shirt_caps(pos.reshape(len(ys), len(ph), 3)),
        ]
        # Collar: a soft band around the neckline.
        ring = np.linspace(0, 2 * np.pi, 33) + np.pi  # its one seam sits at the back
        tube = np.linspace(0, 2 * np.pi, 6, endpoint=False)
        rr, tb = np.meshgrid(ring, tube, indexing="ij")
        R = self.s.neck + 0.012 + 0.0065 * np.cos(tb)
        cy = (
            -0.136 + 0.008 * np.sin(tb) - 0.010 * smoothstep(0.3, 1.0, np.cos(rr))
        )  # dips at the front
        collar = np.stack([R * np.sin(rr), cy, R * np.cos(rr) * 1.02 - 0.012], -1).reshape(-1, 3)
        faces = grid_faces(len(ring), len(tube), wrap=True)
        faces = orient_outward(
            collar,
            faces,
            collar.reshape(len(ring), len(tube), 3)
            .mean(axis=1)
            .repeat(len(tube), axis=0)
            .mean(axis=0),
        )
        parts.append(Part("collar", collar, faces, None, "collar"))
        # Closed (caps), so one-sided: a software rasteriser pays for every triangle of a
        # double-sided material twice (engine.render.renderer: _render_sides).
        self.material("shirt", color=s.shirt, rough=0.9, double=False)
        self.material("collar", color=s.collar, rough=0.8, double=False)
        self.material("skin_plain", color=s.skin, rough=0.6, double=False)
        return parts

    def shirt_caps(self, grid: np.ndarray) -> list[Part]:
        """Close the shirt's tube: a disc under the bust, and a yoke from the neckline
        sloping down to just inside the neck (hidden there and behind the collar)."""
        bottom, top = grid[0], grid[-1]
        n = len(top)
        ring = np.arange(n)
        centre = bottom.mean(axis=0, keepdims=True)
        fan = np.stack([ring, (ring + 1) % n, np.full(n, n)], -1)
        disc = np.concatenate([bottom, centre])
        ph = np.linspace(0, 2 * np.pi, n, endpoint=False)
        r = self.s.neck - 0.004
        inner = np.stack(
            [r * np.sin(ph), np.full(n, top[0, 1] - 0.03), r * np.cos(ph) * 1.02 - 0.028], -1
        )
        yoke = np.concatenate([top, inner])
        return [
            Part(
                "shirt_bottom",
                disc,
                orient_outward(disc, fan, centre[0] + [0, 0.1, 0]),
                None,
                "shirt",
            ),
            Part(
                "shirt_yoke",
                yoke,
                orient_outward(yoke, grid_faces(2, n, wrap=True), yoke.mean(axis=0) - [0, 0.1, 0]),
                None,
                "shirt",
            ),
        ]

    # -- assembly -------------------------------------------------------------------
    def build(self) -> tuple[list[Part], list[Part], list[Part]]:
        rig = self.rig
        face = [
            self.skin(),
            self.mouth_cavity(),
            self.teeth(True),
            self.teeth(False),
            self.tongue(),
        ]
        for centre, side in ((rig.eye_left, 1), (rig.eye_right, -1)):
            face.append(self.eye(centre, side))
            face.extend(self.lids(centre, side))
            face.append(self.brows(side))
        # Occluders first: hair and clothes are drawn before the skin they cover, whose
        # hidden fragments then fail the depth test before shading (a sixth of a frame's
        # lit fragments on a software rasteriser).
        head = [*self.hair(), *self.ears()]
        body = [*self.torso(), self.neck()]
        return [p.finish() for p in face], [p.finish() for p in head], [p.finish() for p in body]


# ----------------------------------------------------------------------------- glTF
class GlbWriter:
    def __init__(self) -> None:
        self.gltf = pygltflib.GLTF2(
            asset=pygltflib.Asset(generator="avatarkit build_avatars.py", version="2.0")
        )
        self.blob = bytearray()
        self._zero_cache: dict[int, int] = {}

    def _view(self, data: bytes, target: int | None) -> int:
        while len(self.blob) % 4:
            self.blob.append(0)
        self.gltf.bufferViews.append(
            pygltflib.BufferView(
                buffer=0, byteOffset=len(self.blob), byteLength=len(data), target=target
            )
        )
        self.blob.extend(data)
        return len(self.gltf.bufferViews) - 1

    def accessor(
        self,
        array: np.ndarray,
        kind: str,
        target: int | None = pygltflib.ARRAY_BUFFER,
        minmax: bool = False,
    ) -> int:
        if array.dtype == np.uint16:
            ctype = pygltflib.UNSIGNED_SHORT
        elif array.dtype == np.uint32:
            ctype = pygltflib.UNSIGNED_INT
        else:
            array = array.astype(np.float32)
            ctype = pygltflib.FLOAT
        view = self._view(np.ascontiguousarray(array).tobytes(), target)
        acc = pygltflib.Accessor(bufferView=view, componentType=ctype, count=len(array), type=kind)
        if minmax:
            acc.min = [float(v) for v in array.min(axis=0)]
            acc.max = [float(v) for v in array.max(axis=0)]
        self.gltf.accessors.append(acc)
        return len(self.gltf.accessors) - 1

    def zeros(self, n: int) -> int:
        """One shared all-zero delta accessor per vertex count (most targets touch few parts)."""
        if n not in self._zero_cache:
            self._zero_cache[n] = self.accessor(
                np.zeros((n, 3), np.float32), pygltflib.VEC3, minmax=True
            )
        return self._zero_cache[n]

    def image(self, rgb: np.ndarray) -> int:
        buf = io.BytesIO()
        Image.fromarray(rgb, "RGB").save(buf, format="PNG", optimize=True)
        view = self._view(buf.getvalue(), None)
        self.gltf.images.append(pygltflib.Image(bufferView=view, mimeType="image/png"))
        self.gltf.textures.append(pygltflib.Texture(source=len(self.gltf.images) - 1, sampler=0))
        return len(self.gltf.textures) - 1

    def write(
        self,
        builder: AvatarBuilder,
        face: list[Part],
        head: list[Part],
        body: list[Part],
        path: Path,
    ) -> None:
        g = self.gltf
        g.samplers.append(
            pygltflib.Sampler(magFilter=pygltflib.LINEAR, minFilter=pygltflib.LINEAR_MIPMAP_LINEAR)
        )
        mat_index = {}
        for name, m in builder.materials.items():
            linear = [
                float(c) ** 2.2 for c in m["color"]
            ]  # factors are linear; our palette is sRGB
            pbr = pygltflib.PbrMetallicRoughness(
                baseColorFactor=[*linear, 1.0], metallicFactor=0.0, roughnessFactor=m["rough"]
            )
            if m["texture"]:
                pbr.baseColorTexture = pygltflib.TextureInfo(
                    index=self.image(builder.textures[m["texture"]])
                )
            g.materials.append(
                pygltflib.Material(name=name, pbrMetallicRoughness=pbr, doubleSided=m["double"])
            )
            mat_index[name] = len(g.materials) - 1
        for mesh_name, parts, morphs in (
            ("Face", face, True),
            ("Hair", head, False),
            ("Body", body, False),
        ):
            prims = []
            for part in parts:
                n = len(part.positions)
                attrs = pygltflib.Attributes(
                    POSITION=self.accessor(part.positions, pygltflib.VEC3, minmax=True),
                    NORMAL=self.accessor(part.normals, pygltflib.VEC3),
                )
                if part.uvs is not None:
                    attrs.TEXCOORD_0 = self.accessor(part.uvs, pygltflib.VEC2)
                idx_dtype = np.uint16 if n < 65536 else np.uint32
                prim = pygltflib.Primitive(
                    attributes=attrs,
                    indices=self.accessor(
                        part.faces.reshape(-1).astype(idx_dtype),
                        pygltflib.SCALAR,
                        pygltflib.ELEMENT_ARRAY_BUFFER,
                    ),
                    material=mat_index[part.material],
                    extras={"part": part.name},
                )
                if morphs:
                    prim.targets = []
                    for name in ARKIT_NAMES:
                        delta = part.deltas.get(name)
                        if delta is None or not np.any(np.abs(delta) > 1e-7):
                            prim.targets.append({"POSITION": self.zeros(n)})
                        else:
                            prim.targets.append(
                                {"POSITION": self.accessor(delta, pygltflib.VEC3, minmax=True)}
                            )
                prims.append(prim)
            mesh = pygltflib.Mesh(name=mesh_name, primitives=prims)
            if morphs:
                mesh.weights = [0.0] * len(ARKIT_NAMES)
                mesh.extras = {"targetNames": list(ARKIT_NAMES)}
            g.meshes.append(mesh)
        # The Head node pivots at the top of the neck, so a head pose turns face and hair
        # together while the neck and shoulders stay put.
        pivot = [0.0, HEAD_CENTRE_Y + NECK_PIVOT[1], NECK_PIVOT[2]]
        to_centre = [0.0, -NECK_PIVOT[1], -NECK_PIVOT[2]]
        g.nodes = [
            pygltflib.Node(name="Avatar", children=[1, 4]),
            pygltflib.Node(name=HEAD_NODE, translation=pivot, children=[3, 2]),  # hair first
            pygltflib.Node(name="Face", mesh=0, translation=to_centre),
            pygltflib.Node(name="Hair", mesh=1, translation=to_centre),
            pygltflib.Node(name="Body", mesh=2, translation=[0.0, HEAD_CENTRE_Y, 0.0]),
        ]
        g.scenes = [pygltflib.Scene(name="Scene", nodes=[0])]
        g.scene = 0
        g.buffers = [pygltflib.Buffer(byteLength=len(self.blob))]
        g.set_binary_blob(bytes(self.blob))
        path.write_bytes(b"".join(g.save_to_bytes()))


def folded_triangles(part: Part) -> dict[str, int]:
    """Per blendshape, how many front-facing triangles it turns over (should be none)."""
    p = part.positions[part.faces]
    rest = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    front = p.mean(axis=1)[:, 2] > 0.03
    folds = {}
    for name, delta in part.deltas.items():
        q = (part.positions + delta)[part.faces]
        moved = np.cross(q[:, 1] - q[:, 0], q[:, 2] - q[:, 0])
        count = int(((np.einsum("ij,ij->i", rest, moved) < 0) & front).sum())
        if count:
            folds[name] = count
    return folds


def triangle_count(parts: list[Part]) -> int:
    return sum(len(p.faces) for p in parts)


def build(style: Style, out_dir: Path) -> Path:
    builder = AvatarBuilder(style)
    face, head, body = builder.build()
    folds = folded_triangles(face[0])
    if folds:
        raise RuntimeError(f"{style.id}: blendshapes fold the skin over: {folds}")
    pkg = out_dir / style.id
    pkg.mkdir(parents=True, exist_ok=True)
    glb = pkg / f"{style.id}.glb"
    GlbWriter().write(builder, face, head, body, glb)
    write_package(
        pkg,
        avatar_id=style.id,
        name=style.name,
        version="1.0.0",
        model=glb.name,
        framing={
            "head_center": [0.0, HEAD_CENTRE_Y + 0.005, 0.0],
            "camera_distance": 0.62,
            "bust_center": [0.0, HEAD_CENTRE_Y - 0.12, 0.0],
            "bust_camera_distance": 1.05,
            "up_axis": "+Y",
            "forward_axis": "+Z",
            "units": "meters",
        },
        extra={
            "triangles": triangle_count(face) + triangle_count(head) + triangle_count(body),
            "head_node": HEAD_NODE,
            "generator": "assets/avatars/build_avatars.py",
        },
    )
    return glb


def main(argv: list[str] | None = None) -> int:
    wanted = set(argv or sys.argv[1:])
    for style in STYLES:
        if wanted and style.id not in wanted:
            continue
        glb = build(style, HERE)
        print(f"{style.id}: {glb.relative_to(HERE)} ({glb.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
