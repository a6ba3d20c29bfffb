"""Ensembles of trained lip-sync nets: one weights file that averages several nets' logits
(for the benchmark), and the distillation targets of ``train.py --teachers``.

    .venv/bin/python -m avatarkit.motion.training.distill OUT.npz A.npz B.npz [...]
    .venv/bin/python benchmarks/lipsync.py --weights OUT.npz

Measured on 2026-12-05 (docs/motion-model.md, training notes): three nets' average has a
higher aperture r than each of them on every corpus but costs three nets (74x real time as
one dense file, under the 200x bar), and one net of the shipped size trained on their
posteriors did not keep the gain. Off by default; kept so that stronger teachers can be
tried the same way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avatarkit.motion.features import NUM_MELS
from avatarkit.motion.model import VisemeNet
from avatarkit.motion.visemes import VISEMES


def teacher_probabilities(paths, xt, mt, ct, batch, norm, context):
    """Posteriors of an ensemble of trained nets (their averaged logits) for every training
    frame ``ct`` (``batch(xt, mt, centres)`` gathers the windows, normalised by ``norm``,
    this run's mean and std), or None without teachers. Each teacher sees the features
    normalised its own way."""
    import torch

    if not paths:
        return None
    mean, std = (torch.from_numpy(a.astype(np.float32)) for a in norm)
    total = torch.zeros(len(ct), len(VISEMES))
    for path in paths:
        net = VisemeNet(path)  # the runtime's loader: a bad file is motionModelUnavailable
        if (net.past, net.ahead) != context or net.taps:
            raise SystemExit(f"teacher {path}: another context than {context}, or taps")
        with torch.no_grad():
            for i in range(0, len(ct), 65536):
                x, m = batch(xt, mt, ct[i : i + 65536])
                total[i : i + 65536] += _logits(net, x, m, mean, std)
        print(f"teacher {path}: done")
    return torch.softmax(total / len(paths), 1)


def _logits(net: VisemeNet, x, m, mean, std):
    """``net``'s logits in torch for windows ``x`` and running means ``m`` normalised by
    ``mean``/``std`` (this run's): renormalised the net's own way, then its layers."""
    import torch

    def project(z):
        own = (z * std + mean - torch.from_numpy(net.mean)) * torch.from_numpy(net.scale)
        return own.clamp(-5, 5) @ torch.from_numpy(net.projection)

    h = torch.cat([project(x.view(len(x), -1, NUM_MELS)).flatten(1), project(m)], 1)
    for i, (w, b) in enumerate(net.layers):  # w: [out, in], b: [out, 1]
        h = h @ torch.from_numpy(w).T + torch.from_numpy(b[:, 0])
        h = h.relu() if i < len(net.layers) - 1 else h
    return h


def merge(paths: list[Path], out: Path) -> None:
    """One weights file computing the average of the nets' logits: projections side by
    side, hidden layers block-diagonal (dense: the runtime has no sparse path). Members
    must share the window and, within rounding, the feature normalisation (the first's is
    used)."""
    nets = [dict(np.load(p)) for p in paths]
    first = nets[0]
    for path, net in zip(paths, nets, strict=True):
        same_norm = np.abs(net["mean"] - first["mean"]).max() < 0.05 and (
            np.abs(net["std"] / first["std"] - 1).max() < 0.02
        )
        plain = not len(net.get("taps", ())) and int(net["num_layers"]) == 3
        window = (int(net["past"]), int(net["ahead"])) == (int(first["past"]), int(first["ahead"]))
        if not (same_norm and plain and window):
            raise SystemExit(f"{path}: another window, normalisation or shape than {paths[0]}")
    width = int(first["past"]) + 1 + int(first["ahead"])
    widths = [n["project"].shape[1] for n in nets]
    frame_at = np.cumsum([0, *widths])  # member m's dims of each frame: frame_at[m]..
    layers = []
    for i in range(3):
        rows = [n[f"w{i}"].shape[0] for n in nets]
        cols = [n[f"w{i}"].shape[1] for n in nets]
        w = np.zeros((sum(rows), sum(cols) if i < 2 else cols[0]), np.float32)
        row_at, col_at = np.cumsum([0, *rows]), np.cumsum([0, *cols])
        for m, n in enumerate(nets):
            if i == 0:  # input rows: frame f, dim d of member m -> f * total + frame_at[m] + d
                k = np.arange(rows[m])
                target = (k // widths[m]) * frame_at[-1] + frame_at[m] + k % widths[m]
            else:
                target = np.arange(row_at[m], row_at[m + 1])
            if i < 2:
                w[target, col_at[m] : col_at[m + 1]] = n[f"w{i}"]
            else:
                w[target] = n[f"w{i}"] / len(nets)
        layers.append(w)
    assert layers[0].shape[0] == (width + 1) * frame_at[-1]
    np.savez_compressed(
        out,
        **{k: first[k] for k in ("past", "ahead", "lead", "mean", "std", "visemes") if k in first},
        taps=np.zeros(0, np.int64),
        pool=1,
        num_layers=3,
        project=np.concatenate([n["project"] for n in nets], axis=1),
        **{f"w{i}": w for i, w in enumerate(layers)},  # type: ignore[arg-type]  # stub: **bool
        b0=np.concatenate([n["b0"] for n in nets]),
        b1=np.concatenate([n["b1"] for n in nets]),
        b2=np.mean([n["b2"] for n in nets], axis=0),
    )


if __name__ == "__main__":
    import sys

    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    merge([Path(p) for p in sys.argv[2:]], Path(sys.argv[1]))
    print(f"saved {sys.argv[1]}")
