"""Plot generated windows next to real ones, one panel per feature (needs the ``viz`` extra).

    python scripts/plot_samples.py samples/samples.npy --dataset sines --out docs/quickstart.png

Draws ``--n`` random windows of each, real in the top row and generated in the bottom row, on
shared axes per feature, with the per-feature mean, standard deviation and lag-1
autocorrelation of all windows in the titles.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tsgen.data import WindowsDataModule


def _lag1(windows: np.ndarray) -> np.ndarray:
    centred = windows - windows.mean(axis=1, keepdims=True)
    return (centred[:, 1:] * centred[:, :-1]).sum(axis=(0, 1)) / (centred**2).sum(axis=(0, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("samples", type=Path, help="a (N, L, C) .npy file of generated windows")
    parser.add_argument("--dataset", default="sines", help="built-in dataset to compare with")
    parser.add_argument("--window", type=int, default=24)
    parser.add_argument("--n", type=int, default=30, help="windows drawn per row")
    parser.add_argument("--features", type=int, default=3, help="features shown")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("samples.png"))
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fake = np.load(args.samples)
    real = WindowsDataModule(dataset=args.dataset, window=args.window).train_split.raw.numpy()
    rng = np.random.default_rng(args.seed)
    n_features = min(args.features, real.shape[2])
    fig, axes = plt.subplots(
        2, n_features, figsize=(3.2 * n_features, 5), sharex=True, sharey="col", squeeze=False
    )
    for row, (name, windows) in enumerate((("real", real), ("generated", fake))):
        picks = windows[rng.choice(len(windows), size=args.n, replace=False)]
        mean, std, lag1 = windows.mean(axis=(0, 1)), windows.std(axis=(0, 1)), _lag1(windows)
        for f in range(n_features):
            ax = axes[row, f]
            ax.plot(picks[:, :, f].T, color="C0" if row == 0 else "C1", alpha=0.4, lw=1)
            ax.set_title(
                f"{name}, feature {f}\nmean {mean[f]:.3f}  std {std[f]:.3f}  lag-1 {lag1[f]:.3f}",
                fontsize=8,
            )
            ax.set_xlabel("step" if row == 1 else "")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
