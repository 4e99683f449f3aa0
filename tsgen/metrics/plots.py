"""Pictures of generated windows against real ones (the ``viz`` extra: matplotlib; t-SNE also
needs scikit-learn).

- :func:`plot_sample_grid`: random windows of each set, one panel per feature, with the
  per-feature mean, standard deviation and lag-1 autocorrelation of all windows in the titles;
- :func:`plot_embedding`: PCA or t-SNE overlays, on each window's mean over features (the
  reduction of the TimeGAN / Diffusion-TS visualisations, so pictures are comparable);
- :func:`plot_acf`: mean autocorrelation per feature;
- :func:`plot_marginals`: per-feature histograms of all values.

Figures are built with ``matplotlib.figure.Figure`` (no pyplot state) and written as PNG.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from tsgen.metrics.distances import autocorrelation

__all__ = ["plot_acf", "plot_all", "plot_embedding", "plot_marginals", "plot_sample_grid"]

log = logging.getLogger(__name__)

_COLOURS = {"real": "C0", "generated": "C1"}


def _figure(n_rows: int, n_cols: int, width: float, height: float, **kwargs: Any) -> tuple:
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(
            "plots need matplotlib: pip install 'tsgen[viz]' (or pip install matplotlib)"
        ) from error
    fig = Figure(figsize=(width * n_cols, height * n_rows))
    axes = fig.subplots(n_rows, n_cols, squeeze=False, **kwargs)
    return fig, axes


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _lag1(windows: np.ndarray) -> np.ndarray:
    centred = windows - windows.mean(axis=1, keepdims=True)
    return (centred[:, 1:] * centred[:, :-1]).sum(axis=(0, 1)) / (centred**2).sum(axis=(0, 1))


def plot_sample_grid(
    real: np.ndarray,
    fake: np.ndarray,
    path: str | Path,
    n: int = 30,
    features: int = 3,
    seed: int = 0,
) -> Path:
    """``n`` random windows of each set (real on top, generated below), the first ``features``
    features side by side on shared axes.

    Args:
        real: ``(N, L, C)``; fake: ``(M, L, C)``.
        path: the PNG written.
    """
    rng = np.random.default_rng(seed)
    n_features = min(features, real.shape[2])
    fig, axes = _figure(2, n_features, 3.2, 2.5, sharex=True, sharey="col")
    for row, (name, windows) in enumerate((("real", real), ("generated", fake))):
        picks = windows[rng.choice(len(windows), size=min(n, len(windows)), replace=False)]
        mean, std, lag1 = windows.mean(axis=(0, 1)), windows.std(axis=(0, 1)), _lag1(windows)
        for f in range(n_features):
            ax = axes[row, f]
            ax.plot(picks[:, :, f].T, color=_COLOURS[name], alpha=0.4, lw=1)
            ax.set_title(
                f"{name}, feature {f}\nmean {mean[f]:.3f}  std {std[f]:.3f}  lag-1 {lag1[f]:.3f}",
                fontsize=8,
            )
            ax.set_xlabel("step" if row == 1 else "")
    return _save(fig, Path(path))


def _pca(real: np.ndarray, fake: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both sets projected on the first two principal axes of ``real``."""
    centre = real.mean(axis=0)
    _, _, vt = np.linalg.svd(real - centre, full_matrices=False)
    return (real - centre) @ vt[:2].T, (fake - centre) @ vt[:2].T


def _tsne(real: np.ndarray, fake: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.manifold import TSNE

    # Perplexity 40 as in the TimeGAN visualisation, capped for small sets.
    perplexity = min(40.0, (len(real) + len(fake) - 1) / 3)
    joint = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    embedded = joint.fit_transform(np.concatenate([real, fake]))
    return embedded[: len(real)], embedded[len(real) :]


def plot_embedding(
    real: np.ndarray,
    fake: np.ndarray,
    path: str | Path,
    method: Literal["pca", "tsne"] = "pca",
    max_points: int = 1000,
    seed: int = 0,
) -> Path:
    """Scatter of both sets in two dimensions after averaging each window over its features
    (``(N, L, C) -> (N, L)``): PCA fitted on the real windows, or a joint t-SNE.

    Args:
        real: ``(N, L, C)``; fake: ``(M, L, C)``.
        path: the PNG written.
        method: ``"pca"`` or ``"tsne"`` (needs scikit-learn).
        max_points: at most this many random windows of each set.
        seed: seed of the subsampling and of t-SNE.
    """
    if method not in ("pca", "tsne"):
        raise ValueError(f"method must be 'pca' or 'tsne'; got {method!r}")
    rng = np.random.default_rng(seed)
    sets = []
    for windows in (real, fake):
        picks = rng.choice(len(windows), size=min(max_points, len(windows)), replace=False)
        sets.append(windows[picks].mean(axis=2))
    points = _pca(*sets) if method == "pca" else _tsne(*sets, seed)
    fig, axes = _figure(1, 1, 5.0, 4.5)
    ax = axes[0, 0]
    for name, xy in zip(("real", "generated"), points, strict=True):
        ax.scatter(xy[:, 0], xy[:, 1], s=4, alpha=0.3, color=_COLOURS[name], label=name)
    ax.set_title("PCA" if method == "pca" else "t-SNE")
    ax.legend(markerscale=3)
    return _save(fig, Path(path))


def plot_acf(real: np.ndarray, fake: np.ndarray, path: str | Path) -> Path:
    """Mean autocorrelation per feature up to lag ``L - 1``, real (solid) and generated
    (dashed), one panel per feature."""
    max_lag = real.shape[1] - 1
    acfs = [
        autocorrelation(torch.from_numpy(np.asarray(w, dtype=np.float64)), max_lag).numpy()
        for w in (real, fake)
    ]
    n_features = real.shape[2]
    cols = min(n_features, 4)
    rows = -(-n_features // cols)
    fig, axes = _figure(rows, cols, 3.0, 2.4, sharex=True, sharey=True)
    for f in range(rows * cols):
        ax = axes.flat[f]
        if f >= n_features:
            ax.set_visible(False)
            continue
        for name, acf, style in zip(("real", "generated"), acfs, ("-", "--"), strict=True):
            ax.plot(acf[:, f], style, color=_COLOURS[name], label=name)
        ax.set_title(f"feature {f}", fontsize=9)
        ax.set_xlabel("lag")
    axes.flat[0].legend(fontsize=8)
    return _save(fig, Path(path))


def plot_marginals(real: np.ndarray, fake: np.ndarray, path: str | Path, bins: int = 50) -> Path:
    """Per-feature histograms (densities) of all values of both sets."""
    n_features = real.shape[2]
    cols = min(n_features, 4)
    rows = -(-n_features // cols)
    fig, axes = _figure(rows, cols, 3.0, 2.4)
    for f in range(rows * cols):
        ax = axes.flat[f]
        if f >= n_features:
            ax.set_visible(False)
            continue
        values = [w[:, :, f].ravel() for w in (real, fake)]
        edges = np.histogram_bin_edges(np.concatenate(values), bins=bins)
        for name, v in zip(("real", "generated"), values, strict=True):
            ax.hist(v, bins=edges, density=True, histtype="step", color=_COLOURS[name], label=name)
        ax.set_title(f"feature {f}", fontsize=9)
    axes.flat[0].legend(fontsize=8)
    return _save(fig, Path(path))


def plot_all(
    real: np.ndarray, fake: np.ndarray, directory: Path, max_points: int = 1000, seed: int = 0
) -> list[Path]:
    """All pictures into ``directory``: ``samples.png``, ``pca.png``, ``tsne.png`` (when
    scikit-learn is installed; otherwise skipped with a log message), ``acf.png`` and
    ``marginals.png``.

    Returns:
        The files written.
    """
    directory = Path(directory)
    written = [
        plot_sample_grid(real, fake, directory / "samples.png", seed=seed),
        plot_embedding(real, fake, directory / "pca.png", "pca", max_points, seed),
    ]
    if importlib.util.find_spec("sklearn") is not None:
        written.append(plot_embedding(real, fake, directory / "tsne.png", "tsne", max_points, seed))
    else:
        log.warning("t-SNE picture skipped: it needs scikit-learn (pip install 'tsgen[viz]')")
    written.append(plot_acf(real, fake, directory / "acf.png"))
    written.append(plot_marginals(real, fake, directory / "marginals.png"))
    return written
