"""Rebuild ``assets/models/motion_mlp.npz``: speech from three synthesizers -> features -> MLP.

    .venv/bin/pip install -e .[train]  # torch, Piper, Kokoro, PocketSphinx: never at run time
    .venv/bin/python -m avatarkit.motion.training.train [--espeak 4000] [--taps ''] [--pool 4]

The Piper and Kokoro utterances are synthesized and aligned once into ``.cache/motion-corpus``
(about 30 minutes on one core the first time); the training itself takes about 25 minutes
on a shared 2-core machine. Training voices, words and sentence templates never overlap the
held-out ones the benchmark uses (``voices.py``, ``kokoro.py``, ``sentences.py``); the real
human recordings (``human.py``) are only watched, never trained on.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np

from avatarkit.motion.features import LOG_FLOOR, NUM_MELS, QUIET_LEVEL, SpeechMean
from avatarkit.motion.model import MODEL_PATH, VisemeNet
from avatarkit.motion.training.corpus import (
    WARP,
    augment,
    cached_clips,
    features_and_labels,
    make_clips,
)
from avatarkit.motion.training.distill import teacher_probabilities
from avatarkit.motion.training.human import human_clips
from avatarkit.motion.training.stops import connected_stops
from avatarkit.motion.visemes import ARTICULATION, VISEMES

PAST, AHEAD, LEAD = 9, 3, 1
HIDDEN = 256
PROJECTED = 16  # dimensions each 10 ms frame is reduced to before the window MLP
ARTICULATION_WEIGHT = 4.0
# A coarse longer past (issue 12: the closure of short stops): per tap, the mean of POOL
# projected frames ending TAP frames back; ``--taps 10,14,18,22,26`` covers 100-290 ms
# before the current frame. Off by default: see docs/motion-model.md for the measured run.
TAPS, POOL = (), 4
CONV_DILATIONS = (1, 2, 3)  # ``--conv``: kernel 3 each, a receptive field of 13 frames
RUNS_PER_STEP = 32  # ``--closure-runs``: p/b/m segments beside each batch of 512 frames
PP_INDEX = VISEMES.index("PP")


def taps_given(text: str) -> bool:
    return any(t.strip() for t in text.split(","))


def _featurise(job) -> tuple[np.ndarray, np.ndarray]:
    clip, seed, lead, augmented, stops, real_warp, world = job
    rng = random.Random(seed)
    if stops:
        clip = connected_stops(clip, rng, stops)
    if augmented:
        warp = real_warp if real_warp and clip.voice.startswith("real:") else WARP
        clip = augment(clip, rng, warp=warp, world=world)
    mels, lab = features_and_labels(clip)
    # Target the face ``lead`` frames ahead: the runtime's coarticulation smoothing lags
    # by about that much, and lips lead the sound they shape anyway.
    return mels, np.concatenate([lab[lead:], np.repeat(lab[-1:], lead)])


def build(
    clips,
    seed: int,
    ahead: int,
    lead: int,
    augmented: bool = True,
    stops: float = 0.0,
    real_warp: tuple = (),
    world: float = 0.0,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per clip: level-normalised log-mels and viseme labels (leading the audio by ``lead``),
    on every core; ``stops``: the share of p/b/m closures made connected-speech-like;
    ``real_warp``: the vocal-tract scale range for real recordings (default ``WARP``);
    ``world``: the share of clips re-voiced by vocoder (``corpus.revoiced``)."""
    from multiprocessing import Pool

    jobs = [
        (clip, seed * 1_000_003 + i, lead, augmented, stops, real_warp, world)
        for i, clip in enumerate(clips)
    ]
    with Pool() as pool:
        return pool.map(_featurise, jobs, chunksize=16)


def stack(data, prior: np.ndarray, ahead: int, span: int = PAST):
    """Concatenated rows, running speech means, labels and window centres, padded as the
    stream is: ``span`` silent rows before each clip (mean = prior), ``ahead`` after it."""
    start_row = np.full((span, NUM_MELS), np.log(LOG_FLOOR) - QUIET_LEVEL, np.float32)
    rows, means, labels, centres, offset = [], [], [], [], 0
    for mels, lab in data:
        running = SpeechMean(prior)(mels)
        rows.append(np.concatenate([start_row, mels, np.repeat(mels[-1:], ahead, axis=0)]))
        means.append(
            np.concatenate(
                [np.repeat(prior[None], span, 0), running, np.repeat(running[-1:], ahead, 0)]
            )
        )
        labels.append(lab)
        centres.append(offset + span + np.arange(len(mels)))
        offset += len(rows[-1])
    return (
        np.concatenate(rows),
        np.concatenate(means),
        np.concatenate(labels),
        np.concatenate(centres),
    )


def closure_runs(labels: np.ndarray, centres: np.ndarray, pad: int = 1) -> np.ndarray:
    """Each run of p/b/m examples, ``pad`` examples wider on both sides within its clip, as
    example indices [runs, longest] (-1 pads): the segments ``--closure-runs`` teaches."""
    is_pp = labels == PP_INDEX
    # A run ends where the label changes or the next example belongs to another clip.
    joined = np.diff(centres) == 1
    continues = is_pp[:-1] & is_pp[1:] & joined  # example i and i + 1 share a run
    starts = np.flatnonzero(is_pp & ~np.concatenate([[False], continues]))
    ends = np.flatnonzero(is_pp & ~np.concatenate([continues, [False]]))
    runs = []
    for lo, hi in zip(starts, ends, strict=True):
        for _ in range(pad):
            lo -= lo > 0 and joined[lo - 1]
            hi += hi + 1 < len(labels) and joined[hi]
        runs.append(np.arange(lo, hi + 1))
    out = np.full((len(runs), max((len(r) for r in runs), default=0)), -1, np.int64)
    for i, r in enumerate(runs):
        out[i, : len(r)] = r
    return out


def frequency_masked(x, count: int, width: int):
    """``x`` [batch, frames * NUM_MELS] z-scored windows with ``count`` random bands of up
    to ``width`` mel channels set to the mean (0) across the whole window, per example."""
    import torch

    mels = torch.arange(NUM_MELS)
    keep = torch.ones(len(x), NUM_MELS)
    for _ in range(count):
        widths = torch.randint(0, width + 1, (len(x), 1))
        starts = (torch.rand(len(x), 1) * (NUM_MELS - widths + 1)).long()
        keep *= ~((mels >= starts) & (mels < starts + widths))
    return (x.view(len(x), -1, NUM_MELS) * keep[:, None, :]).view(len(x), -1)


def main() -> None:
    import torch
    from torch import nn

    parser = argparse.ArgumentParser()
    parser.add_argument("--espeak", type=int, default=3500, help="espeak-ng utterances")
    parser.add_argument("--piper", type=int, default=1600, help="Piper utterances (0: none)")
    parser.add_argument("--kokoro", type=int, default=160, help="Kokoro utterances (0: none)")
    parser.add_argument(
        "--pico",
        type=int,
        default=0,
        help="SVOX Pico utterances (en-US; pico2wave from Debian non-free libttspico-utils)",
    )
    parser.add_argument(
        "--vtl",
        type=int,
        default=0,
        help="VocalTractLab articulatory utterances (pip install vocaltractlab-cython)",
    )
    parser.add_argument(
        "--kokoro-blend",
        type=int,
        default=0,
        help="more Kokoro utterances, each by a mix of two training voices (new sentences)",
    )
    parser.add_argument(
        "--kokoro-copies",
        type=int,
        default=None,
        help="augmented copies of each plain Kokoro utterance (default: 3 x --repeat)",
    )
    parser.add_argument(
        "--blend-copies",
        type=int,
        default=None,
        help="augmented copies of each blended Kokoro utterance (default: --repeat)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=2,
        help="augmented copies of each Piper utterance (Kokoro: three times as many)",
    )
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--ahead", type=int, default=AHEAD, help="lookahead feature frames (10 ms each)"
    )
    parser.add_argument("--lead", type=int, default=LEAD, help="frames the target leads the audio")
    parser.add_argument(
        "--close-weight", type=float, default=3.0, help="loss weight of lip closure (p/b/m)"
    )
    parser.add_argument(
        "--taps",
        default=",".join(map(str, TAPS)),
        help="frames back of each pooled past tap, comma-separated ('': none, the old shape)",
    )
    parser.add_argument("--pool", type=int, default=POOL, help="frames averaged per tap")
    parser.add_argument(
        "--projected", type=int, default=PROJECTED, help="dimensions each frame is reduced to"
    )
    parser.add_argument("--hidden", type=int, default=HIDDEN, help="units per hidden layer")
    parser.add_argument(
        "--teachers",
        default="",
        help="weights files (comma-separated) whose averaged logits the net also learns from",
    )
    parser.add_argument(
        "--distill", type=float, default=0.6, help="share of the teachers in the targets"
    )
    parser.add_argument(
        "--connected-stops",
        type=float,
        default=0.0,
        help="share of training p/b/m closures made shorter and voiced (stops.py)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="another training run of the same recipe"
    )
    parser.add_argument(
        "--average-last",
        type=int,
        default=0,
        help="save the mean of the weights at the ends of the last N epochs (0: the last's)",
    )
    parser.add_argument(
        "--speaker-norm",
        action="store_true",
        help="each frame minus the speaker's running mean spectrum before the projection",
    )
    parser.add_argument(
        "--conv",
        type=int,
        default=0,
        help="channels of a dilated temporal convolution over the window (0: the plain MLP)",
    )
    parser.add_argument(
        "--espeak-weight",
        type=float,
        default=1.0,
        help="loss weight of espeak-ng frames other than p/b/m closures (which keep 1)",
    )
    parser.add_argument(
        "--closure-runs",
        type=float,
        default=0.0,
        help="weight of a per-segment loss: each p/b/m run (10 ms either side) must close "
        "the lips at its likeliest frame (0: off)",
    )
    parser.add_argument(
        "--real",
        type=int,
        default=0,
        help="augmented copies of each real human recording (real.py; 0: none)",
    )
    parser.add_argument(
        "--real-warp",
        default="",
        help="vocal-tract scale range LO,HI for the real recordings: more speakers from few "
        "(default: the synthetic voices' 0.88,1.14)",
    )
    parser.add_argument(
        "--freq-mask",
        default="",
        help="N,WIDTH: N bands of up to WIDTH mel channels blanked per training window "
        "(SpecAugment's frequency masks; default none)",
    )
    parser.add_argument(
        "--world",
        type=float,
        default=0.0,
        help="share of training clips re-voiced by the WORLD vocoder: pitch and formants "
        "changed apart (PyPI pyworld)",
    )
    parser.add_argument("--out", default=str(MODEL_PATH))
    args = parser.parse_args()
    if args.conv and taps_given(args.taps):
        parser.error("--conv needs a plain window (no --taps)")
    ahead = args.ahead
    taps = [-int(t) for t in args.taps.split(",") if t.strip()]
    pool = args.pool if taps else 1
    span = max([PAST] + [pool - 1 - t for t in taps])  # as ``VisemeNet.span``
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)

    t0 = time.time()
    clips = make_clips(args.espeak, "train", 0)
    espeak_clips = len(clips)  # first in the corpus
    voices = (
        ("piper", args.piper),
        ("kokoro", args.kokoro),
        ("pico", args.pico),
        ("vtl", args.vtl),
    )
    for source, count in voices:
        if count:
            copies = args.repeat  # Kokoro: fewer, costlier clips, more copies of each
            if source == "kokoro":
                copies = 3 * args.repeat if args.kokoro_copies is None else args.kokoro_copies
            clips += cached_clips(count, "train", 0, source) * copies
    if args.kokoro_blend:  # new speakers and sentences
        blend_copies = args.repeat if args.blend_copies is None else args.blend_copies
        clips += cached_clips(args.kokoro_blend, "train", 1, "kokoro-blend") * blend_copies
    if args.real:
        from avatarkit.motion.training.real import real_clips

        clips += real_clips() * args.real
    real_warp = tuple(float(v) for v in args.real_warp.split(",")) if args.real_warp else ()
    train_clips = build(
        clips,
        seed=1 + args.seed,
        ahead=ahead,
        lead=args.lead,
        stops=args.connected_stops,
        real_warp=real_warp,
        world=args.world,
    )
    watched = {"espeak-ng": build(make_clips(300, "heldout", 99), 2, ahead, args.lead)}
    for source, count in voices:
        if count:
            watched[source] = build(
                cached_clips(20 if source == "kokoro" else 40, "heldout", 99, source),
                3,
                ahead,
                args.lead,
            )
    watched["human"] = build(human_clips(), 4, ahead, args.lead, augmented=False)
    frames = np.concatenate([mels for mels, _ in train_clips])
    mean, std = frames.mean(axis=0), frames.std(axis=0) + 1e-3
    train = stack(train_clips, mean, ahead, span)
    valid = {name: stack(data, mean, ahead, span) for name, data in watched.items()}
    print(
        f"corpus: {len(clips)} utterances, {len(train[2])} train frames in {time.time() - t0:.0f}s"
    )

    def tensors(data):
        rows, means, labels, centres = data
        z = [
            torch.from_numpy(np.clip((a - mean) / std, -5, 5).astype(np.float32))
            for a in (rows, means)
        ]
        return z[0], z[1], torch.from_numpy(labels), torch.from_numpy(centres)

    xt, mt, yt, ct = tensors(train)
    # Per-frame loss weights: espeak-ng's own spectra weigh less, its closures in full.
    espeak_frames = sum(len(lab) for _, lab in train_clips[:espeak_clips])
    frame_weight = torch.ones(len(yt))
    frame_weight[:espeak_frames] = args.espeak_weight
    frame_weight[yt == PP_INDEX] = 1.0
    valid_tensors = {name: tensors(data) for name, data in valid.items()}
    runs = torch.from_numpy(closure_runs(train[2], train[3])) if args.closure_runs else None
    # Dense window, then each tap's pooled frames (newest first): [window + taps * pool].
    offsets = torch.tensor(
        list(range(-PAST, ahead + 1)) + [t - i for t in taps for i in range(pool)]
    )

    def batch(x, m, centres):
        rows = centres[:, None] + offsets
        frames = x[rows] - m[rows] if args.speaker_norm else x[rows]
        return frames.reshape(len(centres), -1), m[centres + ahead]

    width = PAST + 1 + ahead
    gathered = width + len(taps) * pool  # frames per example
    projected, hidden = args.projected, args.hidden
    inputs = (width + len(taps) + 1) * projected  # window, pooled taps, running mean

    class Net(nn.Module):
        """Per-frame linear projection (mels -> PROJECTED), then an MLP over the window."""

        def __init__(self) -> None:
            super().__init__()
            self.project = nn.Linear(NUM_MELS, projected, bias=False)
            self.mlp = nn.Sequential(
                nn.Linear(inputs, hidden), nn.ReLU(), nn.Dropout(0.1),
                nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(0.1),
                nn.Linear(hidden, len(VISEMES)),
            )  # fmt: skip

        def forward(self, x, m):
            frames = self.project(x.view(len(x), gathered, NUM_MELS))
            window = frames[:, :width].flatten(1)
            pooled = frames[:, width:].reshape(len(x), len(taps), pool, projected).mean(2)
            return self.mlp(torch.cat([window, pooled.flatten(1), self.project(m)], dim=1))

    class ConvNet(nn.Module):
        """Per-frame projection, then a dilated temporal convolution whose receptive field
        is the window (13 -> 11 -> 7 -> 1 positions), the speaker's mean feeding its first
        layer; a small MLP on the last position. Weights are shared across time."""

        def __init__(self, channels: int) -> None:
            super().__init__()
            self.project = nn.Linear(NUM_MELS, projected, bias=False)
            self.speaker = nn.Linear(projected, channels, bias=False)
            self.convs = nn.ModuleList(
                nn.Conv1d(projected if i == 0 else channels, channels, 3, dilation=d)
                for i, d in enumerate(CONV_DILATIONS)
            )
            self.drop = nn.Dropout(0.1)
            self.mlp = nn.Sequential(
                nn.Linear(channels, hidden), nn.ReLU(), nn.Dropout(0.1),
                nn.Linear(hidden, len(VISEMES)),
            )  # fmt: skip

        def forward(self, x, m):
            h = self.project(x.view(len(x), width, NUM_MELS)).transpose(1, 2)
            for i, conv in enumerate(self.convs):
                h = conv(h)
                if i == 0:
                    h = h + self.speaker(self.project(m))[:, :, None]
                h = self.drop(torch.relu(h))
            return self.mlp(h[:, :, 0])

    if args.conv and 1 + 2 * sum(CONV_DILATIONS) != width:
        parser.error(f"the convolution's receptive field does not cover {width} frames")
    net = ConvNet(args.conv) if args.conv else Net()
    teachers = [Path(t) for t in args.teachers.split(",") if t.strip()]
    if teachers and taps:
        parser.error("--teachers needs a plain window (no --taps)")
    soft = teacher_probabilities(teachers, xt, mt, ct, batch, (mean, std), (PAST, ahead))
    if soft is not None:
        agree = (soft.argmax(1) == yt).float().mean().item()
        print(f"teachers agree with the labels on {agree:.3f} of the training frames")
    steps_per_epoch = len(yt) // 512
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, 2e-3, total_steps=args.epochs * steps_per_epoch
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05, reduction="none")
    table = torch.from_numpy(ARTICULATION)
    # Opening and closing matter most to the eye (and to the aperture benchmark).
    articulator_weights = torch.tensor([3.0, args.close_weight, 1.0, 1.0, 1.0, 0.5])

    def held_out_accuracy() -> str:
        net.eval()
        scores = []
        with torch.no_grad():
            for name, (xv, mv, yv, cv) in valid_tensors.items():
                pred = torch.cat(
                    [
                        net(*batch(xv, mv, cv[i : i + 4096])).argmax(1)
                        for i in range(0, len(cv), 4096)
                    ]
                )
                scores.append(f"{name} {(pred == yv).float().mean().item():.3f}")
        return ", ".join(scores)

    masks = tuple(int(v) for v in args.freq_mask.split(",")) if args.freq_mask else ()
    snapshots: list[dict[str, torch.Tensor]] = []
    for epoch in range(args.epochs):
        net.train()
        perm = torch.randperm(len(yt))
        for step in range(steps_per_epoch):
            idx = perm[step * 512 : (step + 1) * 512]
            x, m = batch(xt, mt, ct[idx])
            if masks:
                x = frequency_masked(x, *masks)
            logits = net(x + 0.1 * torch.randn_like(x), m)
            # Cross-entropy for the classes plus the error of the articulation the runtime
            # actually uses (posteriors @ table): that is what the face shows.
            articulation = torch.softmax(logits, 1) @ table
            if soft is None:
                error = ((articulation - table[yt[idx]]) ** 2) @ articulator_weights
                w = frame_weight[idx]
                loss = loss_fn(logits, yt[idx]) + ARTICULATION_WEIGHT * error
                loss = (loss * w).sum() / w.sum()
            else:  # the labels and the teachers' posteriors, mixed
                hard = nn.functional.one_hot(yt[idx], len(VISEMES)).float()
                target = (1 - args.distill) * (hard * 0.95 + 0.05 / len(VISEMES))
                target += args.distill * soft[idx]
                error = ((articulation - target @ table) ** 2) @ articulator_weights
                ce = -(target * torch.log_softmax(logits, 1)).sum(1).mean()
                loss = ce + ARTICULATION_WEIGHT * error.mean()
            if runs is not None:  # the likeliest p/b/m frame of each sampled run: closed
                chosen = runs[torch.randint(len(runs), (RUNS_PER_STEP,))]
                valid_pos = chosen >= 0
                x, m = batch(xt, mt, ct[chosen[valid_pos]])
                p_close = torch.softmax(net(x + 0.1 * torch.randn_like(x), m), 1)[:, PP_INDEX]
                per_run = torch.zeros(chosen.shape)
                per_run[valid_pos] = p_close
                loss = loss - args.closure_runs * torch.log(per_run.max(1).values + 1e-4).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        print(
            f"epoch {epoch + 1}: loss {loss.item():.3f} held-out frame accuracy: "
            f"{held_out_accuracy()} ({time.time() - t0:.0f}s)"
        )
        if epoch >= args.epochs - args.average_last:
            snapshots.append({k: v.detach().clone() for k, v in net.state_dict().items()})
    if len(snapshots) > 1:  # one flatter point instead of the last (weight averaging)
        net.load_state_dict(
            {k: torch.stack([s[k] for s in snapshots]).mean(0) for k in snapshots[0]}
        )
        print(f"mean of the last {len(snapshots)} epochs' weights: {held_out_accuracy()}")

    linears = [m for m in net.mlp if isinstance(m, nn.Linear)]
    params: dict[str, np.ndarray] = {
        f"w{i}": m.weight.detach().numpy().T.astype(np.float32) for i, m in enumerate(linears)
    }
    params["project"] = net.project.weight.detach().numpy().T.astype(np.float32)
    if isinstance(net, ConvNet):  # per layer [taps * in, out], the oldest tap first
        for i, conv in enumerate(net.convs):
            assert isinstance(conv, nn.Conv1d) and conv.bias is not None
            k = conv.weight.detach().numpy()  # [out, in, taps]
            params[f"conv{i}"] = k.transpose(2, 1, 0).reshape(-1, k.shape[0]).astype(np.float32)
            params[f"conv_b{i}"] = conv.bias.detach().numpy().astype(np.float32)
        params["conv_dilations"] = np.array(CONV_DILATIONS, np.int64)
        params["speaker"] = net.speaker.weight.detach().numpy().T.astype(np.float32)
    params |= {f"b{i}": m.bias.detach().numpy().astype(np.float32) for i, m in enumerate(linears)}
    np.savez_compressed(
        args.out,
        past=PAST,
        ahead=ahead,
        taps=np.array(taps, np.int64),
        pool=pool,
        lead=args.lead,
        speaker_norm=int(args.speaker_norm),
        num_layers=len(linears),
        mean=mean,
        std=std,
        visemes=np.array(VISEMES),
        # Provenance: the options that made these weights (the runtime does not read it).
        recipe=np.array(json.dumps({k: v for k, v in vars(args).items() if k != "out"})),
        **params,  # type: ignore[arg-type]  # numpy's stub types **kwds as bool
    )
    print(f"saved {args.out}")
    # The runtime's numpy inference must compute what was trained: the first human clip.
    runtime = VisemeNet(Path(args.out))
    human_rows, human_means, _, centres = valid["human"]
    breaks = np.flatnonzero(np.diff(centres) != 1)
    n = int(breaks[0]) + 1 if len(breaks) else len(centres)  # the first clip's frames
    first = centres[0] - span  # its first row (the silent padding)
    rows = slice(first, first + n + runtime.history - 1)
    ours = runtime(
        runtime.inputs(
            runtime.window_vectors(human_rows[rows], human_means[rows]),
            runtime.frame_vectors(human_means[centres[:n] + ahead]),
        )
    )
    xv, mv, _, cv = valid_tensors["human"]
    with torch.no_grad():
        theirs = torch.softmax(net(*batch(xv, mv, cv[:n])), 1).numpy()
    print(f"numpy inference against torch: max difference {np.abs(ours - theirs).max():.2e}")


if __name__ == "__main__":
    main()
