"""Where two surfaces cut through each other: the segments along which the triangles of
one mesh part cross those of another (a collar sunk into a shirt, a button into a coat).

Such a line is an edge on screen (one surface gives way to the other there) but no mesh
edge runs along it, so the edge capture's silhouettes and borders miss it and the post
pass's FXAA has only luma steps to guess it by. For two parts that hold still together
(one node, no morph targets, no skin) the segments are fixed in the node's space: worked
out once, as a triangle and barycentric weights per end, each frame places them exactly
from that triangle's captured corners (``EdgeCapture``), and they are drawn as edge lines.

Plain numpy, run where an edge plan is worked out (once per set of draws).
"""

from __future__ import annotations

import numpy as np

# Cell-sharing triangle pairs looked at for one pair of parts; past it (parts far denser
# than an avatar's, or huge triangles spanning most cells) their crossings are skipped.
MAX_CANDIDATES = 2_000_000


def crossings(
    a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Segments where triangles of part ``a`` cross triangles of part ``b``, each given
    as (indices, positions) in one space. Returns per segment A's triangle, B's
    triangle and each end as barycentric weights on A's corners: (n,), (n,), (n, 2, 3)."""
    ta_all = np.asarray(a[1], np.float64)[np.asarray(a[0], np.int64).reshape(-1, 3)]
    tb_all = np.asarray(b[1], np.float64)[np.asarray(b[0], np.int64).reshape(-1, 3)]
    pairs = _candidates(ta_all, tb_all)
    if pairs is None:
        return _none()
    ia, ib = pairs
    found, p, q = _segments(ta_all[ia], tb_all[ib])
    ia, ib = ia[found], ib[found]
    tris = ta_all[ia]
    weights = np.stack([_barycentric(tris, p), _barycentric(tris, q)], axis=1)
    return ia, ib, weights.astype(np.float32)


def _none() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros((0, 2, 3), np.float32)


def _candidates(ta: np.ndarray, tb: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Pairs (A triangle, B triangle) whose boxes overlap, found through a grid of cells
    about a triangle's size; None where there are none (or too many to look at)."""
    lo_a, hi_a, lo_b, hi_b = ta.min(1), ta.max(1), tb.min(1), tb.max(1)
    if not len(ta) or not len(tb):
        return None
    lo = np.maximum(lo_a.min(0), lo_b.min(0))
    hi = np.minimum(hi_a.max(0), hi_b.max(0))
    if (lo > hi).any():
        return None
    ia = np.nonzero(((lo_a <= hi) & (hi_a >= lo)).all(1))[0]
    ib = np.nonzero(((lo_b <= hi) & (hi_b >= lo)).all(1))[0]
    if not len(ia) or not len(ib):
        return None
    extents = np.concatenate([hi_a[ia] - lo_a[ia], hi_b[ib] - lo_b[ib]])
    span = np.maximum(hi - lo, 1e-12)
    cell = np.maximum(np.percentile(extents, 90, axis=0), span / 256)
    dims = np.floor(span / cell).astype(np.int64) + 1
    cells_a = _cells(lo_a[ia], hi_a[ia], lo, hi, cell, dims)
    cells_b = _cells(lo_b[ib], hi_b[ib], lo, hi, cell, dims)
    if cells_a is None or cells_b is None:
        return None
    (key_a, owner_a), (key_b, owner_b) = cells_a, cells_b
    order = np.argsort(key_b, kind="stable")
    key_b, owner_b = key_b[order], owner_b[order]
    first = np.searchsorted(key_b, key_a, "left")
    count = np.searchsorted(key_b, key_a, "right") - first
    total = int(count.sum())
    if total == 0 or total > MAX_CANDIDATES:
        return None
    which = np.repeat(np.arange(len(key_a)), count)
    at = np.arange(total) - np.repeat(np.cumsum(count) - count, count) + first[which]
    pair_keys = np.unique(owner_a[which] * len(ib) + owner_b[at])
    pa, pb = ia[pair_keys // len(ib)], ib[pair_keys % len(ib)]
    overlap = ((lo_a[pa] <= hi_b[pb]) & (hi_a[pa] >= lo_b[pb])).all(1)
    return pa[overlap], pb[overlap]


def _cells(lo, hi, origin, top, cell, dims) -> tuple[np.ndarray, np.ndarray] | None:
    """(cell key, triangle) for each grid cell each box touches (clipped to the shared
    box ``origin``..``top``); None past the candidate limit."""
    c_lo = np.floor((np.maximum(lo, origin) - origin) / cell).astype(np.int64)
    c_hi = np.floor((np.minimum(hi, top) - origin) / cell).astype(np.int64)
    c_lo, c_hi = np.minimum(c_lo, dims - 1), np.minimum(c_hi, dims - 1)
    sizes = c_hi - c_lo + 1
    count = sizes.prod(axis=1)
    total = int(count.sum())
    if total > MAX_CANDIDATES:
        return None
    owner = np.repeat(np.arange(len(lo)), count)
    k = np.arange(total) - np.repeat(np.cumsum(count) - count, count)
    sx, sy = sizes[owner, 0], sizes[owner, 1]
    at = c_lo[owner] + np.stack([k % sx, (k // sx) % sy, k // (sx * sy)], axis=1)
    return (at[:, 0] * dims[1] + at[:, 1]) * dims[2] + at[:, 2], owner


def _segments(ta: np.ndarray, tb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For triangle pairs (n, 3, 3): which cross (a strict crossing: coplanar and merely
    touching pairs do not) and, for those, the ends of the shared segment."""
    na, da = _plane(ta)
    nb, db = _plane(tb)
    sa = np.einsum("nkj,nj->nk", ta, nb) - db[:, None]  # A's corners against B's plane
    sb = np.einsum("nkj,nj->nk", tb, na) - da[:, None]
    found = _straddles(sa) & _straddles(sb)
    ta, tb, sa, sb, na, nb = ta[found], tb[found], sa[found], sb[found], na[found], nb[found]
    # Each triangle meets the other's plane along a segment; both lie on the planes'
    # line, and the triangles share the overlap of the two.
    pa, pb = _cut(ta, sa), _cut(tb, sb)
    direction = np.cross(na, nb)
    ua = np.einsum("nkj,nj->nk", pa, direction)
    ub = np.einsum("nkj,nj->nk", pb, direction)
    rows = np.arange(len(ta))[:, None]
    oa, ob = np.argsort(ua, axis=1), np.argsort(ub, axis=1)
    pa, ua, pb, ub = pa[rows, oa], ua[rows, oa], pb[rows, ob], ub[rows, ob]
    start = np.where((ua[:, 0] >= ub[:, 0])[:, None], pa[:, 0], pb[:, 0])
    end = np.where((ua[:, 1] <= ub[:, 1])[:, None], pa[:, 1], pb[:, 1])
    length = np.minimum(ua[:, 1], ub[:, 1]) - np.maximum(ua[:, 0], ub[:, 0])
    keep = length > 0
    index = np.nonzero(found)[0][keep]
    crossed = np.zeros(len(found), bool)
    crossed[index] = True
    return crossed, start[keep], end[keep]


def _plane(tris: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    normal = np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])
    return normal, np.einsum("nj,nj->n", normal, tris[:, 0])


def _straddles(side: np.ndarray) -> np.ndarray:
    return (side.max(axis=1) > 0) & (side.min(axis=1) < 0)


def _cut(tris: np.ndarray, side: np.ndarray) -> np.ndarray:
    """(n, 2, 3): where the edges of each triangle cross the plane its ``side`` values
    (signed distances of its corners) are measured from; a triangle straddling it has
    two such edges."""
    points, crossing = [], []
    for i, j in ((0, 1), (1, 2), (2, 0)):
        si, sj = side[:, i], side[:, j]
        crosses = (si > 0) != (sj > 0)
        t = np.where(crosses, si / np.where(crosses, si - sj, 1.0), 0.0)
        points.append(tris[:, i] + (tris[:, j] - tris[:, i]) * t[:, None])
        crossing.append(crosses)
    first_two = np.argsort(~np.stack(crossing, axis=1), axis=1, kind="stable")[:, :2]
    return np.stack(points, axis=1)[np.arange(len(tris))[:, None], first_two]


def _barycentric(tris: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(n, 3) weights of ``points`` (in the triangles' planes) on the triangles' corners."""
    e1, e2, e = tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0], points - tris[:, 0]
    d00, d01, d11 = (e1 * e1).sum(1), (e1 * e2).sum(1), (e2 * e2).sum(1)
    d20, d21 = (e * e1).sum(1), (e * e2).sum(1)
    denom = d00 * d11 - d01 * d01  # > 0: a straddling triangle has an area
    v = (d11 * d20 - d01 * d21) / denom
    w = (d00 * d21 - d01 * d20) / denom
    return np.stack([1.0 - v - w, v, w], axis=1)
