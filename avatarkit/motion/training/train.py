"""Rebuild ``assets/models/motion_mlp.npz``: espeak corpus -> features -> MLP (PyTorch CPU).

    .venv/bin/pip install torch   # training only; inference is numpy
    .venv/bin/python -m avatarkit.motion.training.train [--utterances 8000] [--epochs 18]

About 12 minutes on one core of a shared 2-core machine. Training voices and words never
overlap the held-out ones the benchmark uses (see ``voices.py`` and ``sentences.py``).
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np

from avatarkit.motion.features import LOG_FLOOR, NUM_MELS, QUIET_LEVEL, SpeechMean
from avatarkit.motion.model import MODEL_PATH
from avatarkit.motion.training.corpus import augment, features_and_labels, make_clips
from avatarkit.motion.visemes import ARTICULATION, VISEMES

PAST, AHEAD, LEAD = 9, 3, 1
HIDDEN = 192
PROJECTED = 16  # dimensions each 10 ms frame is reduced to before the window MLP
ARTICULATION_WEIGHT = 4.0


def build(clips, seed: int, ahead: int, lead: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per clip: level-normalised log-mels and viseme labels (leading the audio by ``lead``)."""
    rng = random.Random(seed)
    out = []
    for clip in clips:
        mels, lab = features_and_labels(augment(clip, rng))
        # Target the face ``lead`` frames ahead: the runtime's coarticulation smoothing lags
        # by about that much, and lips lead the sound they shape anyway.
        out.append((mels, np.concatenate([lab[lead:], np.repeat(lab[-1:], lead)])))
    return out


def stack(data, prior: np.ndarray, ahead: int):
    """Concatenated rows, running speech means, labels and window centres, padded as the
    stream is: PAST silent rows before each clip (mean = prior), ``ahead`` after it."""
    start_row = np.full((PAST, NUM_MELS), np.log(LOG_FLOOR) - QUIET_LEVEL, np.float32)
    rows, means, labels, centres, offset = [], [], [], [], 0
    for mels, lab in data:
        running = SpeechMean(prior)(mels)
        rows.append(np.concatenate([start_row, mels, np.repeat(mels[-1:], ahead, axis=0)]))
        means.append(
            np.concatenate(
                [np.repeat(prior[None], PAST, 0), running, np.repeat(running[-1:], ahead, 0)]
            )
        )
        labels.append(lab)
        centres.append(offset + PAST + np.arange(len(mels)))
        offset += len(rows[-1])
    return (
        np.concatenate(rows),
        np.concatenate(means),
        np.concatenate(labels),
        np.concatenate(centres),
    )


def main() -> None:
    import torch
    from torch import nn

    parser = argparse.ArgumentParser()
    parser.add_argument("--utterances", type=int, default=8000)
    parser.add_argument("--epochs", type=int, default=18)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--ahead", type=int, default=AHEAD, help="lookahead feature frames (10 ms each)"
    )
    parser.add_argument("--lead", type=int, default=LEAD, help="frames the target leads the audio")
    parser.add_argument("--out", default=str(MODEL_PATH))
    args = parser.parse_args()
    ahead = args.ahead
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)

    t0 = time.time()
    train_clips = build(
        make_clips(args.utterances, "train", 0), seed=1, ahead=ahead, lead=args.lead
    )
    valid_clips = build(
        make_clips(max(100, args.utterances // 12), "heldout", 99),
        seed=2,
        ahead=ahead,
        lead=args.lead,
    )
    frames = np.concatenate([mels for mels, _ in train_clips])
    mean, std = frames.mean(axis=0), frames.std(axis=0) + 1e-3
    train, valid = stack(train_clips, mean, ahead), stack(valid_clips, mean, ahead)
    print(
        f"corpus: {len(train[2])} train / {len(valid[2])} valid frames in {time.time() - t0:.0f}s"
    )

    def tensors(data):
        rows, means, labels, centres = data
        z = [
            torch.from_numpy(np.clip((a - mean) / std, -5, 5).astype(np.float32))
            for a in (rows, means)
        ]
        return z[0], z[1], torch.from_numpy(labels), torch.from_numpy(centres)

    xt, mt, yt, ct = tensors(train)
    xv, mv, yv, cv = tensors(valid)
    offsets = torch.arange(-PAST, ahead + 1)

    def batch(x, m, centres):
        return x[centres[:, None] + offsets].reshape(len(centres), -1), m[centres + ahead]

    width = PAST + 1 + ahead

    class Net(nn.Module):
        """Per-frame linear projection (mels -> PROJECTED), then an MLP over the window."""

        def __init__(self) -> None:
            super().__init__()
            self.project = nn.Linear(NUM_MELS, PROJECTED, bias=False)
            self.mlp = nn.Sequential(
                nn.Linear((width + 1) * PROJECTED, HIDDEN), nn.ReLU(), nn.Dropout(0.1),
                nn.Linear(HIDDEN, HIDDEN), nn.ReLU(), nn.Dropout(0.1),
                nn.Linear(HIDDEN, len(VISEMES)),
            )  # fmt: skip

        def forward(self, x, m):
            window = self.project(x.view(len(x), width, NUM_MELS)).flatten(1)
            return self.mlp(torch.cat([window, self.project(m)], dim=1))

    net = Net()
    steps_per_epoch = len(yt) // 512
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, 2e-3, total_steps=args.epochs * steps_per_epoch
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
    table = torch.from_numpy(ARTICULATION)
    # Opening and closing matter most to the eye (and to the aperture benchmark).
    articulator_weights = torch.tensor([3.0, 2.0, 1.0, 1.0, 1.0, 0.5])
    for epoch in range(args.epochs):
        net.train()
        perm = torch.randperm(len(yt))
        for step in range(steps_per_epoch):
            idx = perm[step * 512 : (step + 1) * 512]
            x, m = batch(xt, mt, ct[idx])
            logits = net(x + 0.1 * torch.randn_like(x), m)
            # Cross-entropy for the classes plus the error of the articulation the runtime
            # actually uses (posteriors @ table): that is what the face shows.
            articulation = torch.softmax(logits, 1) @ table
            error = ((articulation - table[yt[idx]]) ** 2) @ articulator_weights
            loss = loss_fn(logits, yt[idx]) + ARTICULATION_WEIGHT * error.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        net.eval()
        with torch.no_grad():
            pred = torch.cat(
                [net(*batch(xv, mv, cv[i : i + 4096])).argmax(1) for i in range(0, len(cv), 4096)]
            )
        acc = (pred == yv).float().mean().item()
        print(
            f"epoch {epoch + 1}: loss {loss.item():.3f} held-out frame accuracy {acc:.3f} "
            f"({time.time() - t0:.0f}s)"
        )

    linears = [m for m in net.mlp if isinstance(m, nn.Linear)]
    params = {
        f"w{i}": m.weight.detach().numpy().T.astype(np.float32) for i, m in enumerate(linears)
    }
    params["project"] = net.project.weight.detach().numpy().T.astype(np.float32)
    params |= {f"b{i}": m.bias.detach().numpy().astype(np.float32) for i, m in enumerate(linears)}
    np.savez_compressed(
        args.out,
        past=PAST,
        ahead=ahead,
        lead=args.lead,
        num_layers=len(linears),
        mean=mean,
        std=std,
        visemes=np.array(VISEMES),
        **params,
    )
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
