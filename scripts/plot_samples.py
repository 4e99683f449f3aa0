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
from tsgen.metrics.plots import plot_sample_grid


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

    fake = np.load(args.samples)
    real = WindowsDataModule(dataset=args.dataset, window=args.window).train_split.raw.numpy()
    path = plot_sample_grid(real, fake, args.out, n=args.n, features=args.features, seed=args.seed)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
