"""The result of :func:`tsgen.metrics.evaluate`: every repeat's value of every metric, how the
data were scaled, where and how long it ran; printed as a table, saved as JSON and, with the
``viz`` extra, drawn as pictures."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from tsgen._files import atomic_write
from tsgen.metrics.intervals import format_interval, t_interval

__all__ = ["MetricResult", "Report"]

# Version of the JSON layout written by :meth:`Report.save`.
REPORT_FORMAT = 1


@dataclass(frozen=True)
class MetricResult:
    """One metric's values over its repeats.

    Attributes:
        name: the key of the metric in :data:`tsgen.metrics.METRICS`, e.g. ``"discriminative"``.
        label: its name in tables, e.g. ``"Discriminative"``.
        values: one value per repeat (a single value for deterministic metrics).
        seconds: wall time of all its repeats together.
        note: a remark printed under the table (a variant used, a caveat).
    """

    name: str
    label: str
    values: tuple[float, ...]
    seconds: float
    note: str = ""

    @property
    def mean(self) -> float:
        """Mean over the repeats."""
        return float(np.mean(self.values))

    @property
    def half_width(self) -> float | None:
        """Half-width of the 95% Student-t interval of the mean (``None`` for one value)."""
        if len(self.values) < 2:
            return None
        return t_interval(self.values)[1]

    def formatted(self, digits: int = 3) -> str:
        """``"mean +- half"`` (or the mean alone for one value) with ``digits`` decimals."""
        half = self.half_width
        if half is None:
            return f"{self.mean:.{digits}f}"
        return format_interval(self.mean, half, digits)


@dataclass
class Report:
    """Metrics of a set of generated windows against real ones.

    Attributes:
        results: the metrics in the order they were computed, by name.
        n_real, n_fake: numbers of windows compared.
        window, n_features: ``L`` and ``C`` of the windows.
        repeats: repeats of the randomised metrics.
        seed: the seed of repeat 0 (repeat ``r`` uses ``(seed, r)``).
        device: where the trained metrics ran, e.g. ``"cuda:0 (NVIDIA H100 80GB HBM3)"``.
        scaling: how the windows were brought to ``[0, 1]``.
        wall_time_s: wall time of the whole evaluation.
        metadata: free-form facts to keep with the numbers (checkpoint, steps trained, commit).
        real, fake: the scaled ``(N, L, C)`` windows, for :meth:`plot`; not saved to JSON.
    """

    results: dict[str, MetricResult]
    n_real: int
    n_fake: int
    window: int
    n_features: int
    repeats: int
    seed: int
    device: str
    scaling: str
    wall_time_s: float
    metadata: dict[str, Any] = field(default_factory=dict)
    real: np.ndarray | None = field(default=None, repr=False, compare=False)
    fake: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __getitem__(self, name: str) -> MetricResult:
        """The result of metric ``name``."""
        try:
            return self.results[name]
        except KeyError:
            raise KeyError(
                f"no metric {name!r} in this report; it holds {list(self.results)}"
            ) from None

    def __str__(self) -> str:
        rows = [("metric", "mean +- 95% interval", "repeats", "seconds")]
        rows += [
            (r.label, r.formatted(), str(len(r.values)), f"{r.seconds:.1f}")
            for r in self.results.values()
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = [
            "  ".join(
                cell.ljust(w) if i < 2 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
            for row in rows
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        lines.append(
            f"real: {self.n_real} windows, fake: {self.n_fake} windows of {self.window} x "
            f"{self.n_features}; {self.scaling}; seed {self.seed}; {self.device}"
            f"{', ' + self.metadata['precision'] if 'precision' in self.metadata else ''}; "
            f"{self.wall_time_s:.1f} s"
        )
        lines += [f"{r.label}: {r.note}" for r in self.results.values() if r.note]
        skipped = self.metadata.get("skipped", {})
        lines += [f"{name} skipped: {why}" for name, why in skipped.items()]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the windows, as JSON-ready builtins (means and half-widths included)."""
        data: dict[str, Any] = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("results", "real", "fake")
        }
        data["metadata"] = dict(self.metadata)
        data["results"] = {name: _result_dict(r) for name, r in self.results.items()}
        data["format"] = REPORT_FORMAT
        return data

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON to ``path`` (atomically; parent directories are made).

        Returns:
            The path written.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_dict(), indent=2, sort_keys=False, default=_json_default)
        atomic_write(path, lambda handle: handle.write(text + "\n"), text=True)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Report:
        """A report from a JSON file written by :meth:`save` (without the windows)."""
        data = json.loads(Path(path).read_text())
        if not isinstance(data, Mapping) or data.get("format") != REPORT_FORMAT:
            raise ValueError(
                f"{path} is not a tsgen evaluation report of format {REPORT_FORMAT}; got format "
                f"{data.get('format') if isinstance(data, Mapping) else type(data).__name__!r}"
            )
        results = {
            name: MetricResult(
                name=r["name"],
                label=r["label"],
                values=tuple(float(v) for v in r["values"]),
                seconds=float(r["seconds"]),
                note=r.get("note", ""),
            )
            for name, r in data["results"].items()
        }
        scalars = {
            key: data[key]
            for key in (
                "n_real",
                "n_fake",
                "window",
                "n_features",
                "repeats",
                "seed",
                "device",
                "scaling",
                "wall_time_s",
            )
        }
        return cls(results=results, metadata=dict(data.get("metadata", {})), **scalars)

    def plot(self, directory: str | Path, max_points: int = 1000, seed: int = 0) -> list[Path]:
        """Write PCA and t-SNE overlays, sample grids and ACF curves of the real and fake
        windows as PNG files into ``directory`` (needs the ``viz`` extra: matplotlib; t-SNE
        also scikit-learn if installed, else it is skipped with a log message).

        Args:
            directory: output directory (created if missing).
            max_points: at most this many windows of each set in the PCA / t-SNE overlays.
            seed: seed of that subsampling and of t-SNE.

        Returns:
            The files written.

        Raises:
            ValueError: for a report loaded from JSON, which holds no windows.
        """
        if self.real is None or self.fake is None:
            raise ValueError(
                "this report holds no windows to plot (reports loaded from JSON do not); "
                "plot from the report that evaluate() returned"
            )
        from tsgen.metrics.plots import plot_all

        return plot_all(self.real, self.fake, Path(directory), max_points=max_points, seed=seed)


def _result_dict(result: MetricResult) -> dict[str, Any]:
    return {
        **asdict(result),
        "values": list(result.values),
        "mean": result.mean,
        "half_width": result.half_width,
    }


def _json_default(value: Any) -> Any:
    """NumPy scalars and paths in metadata as JSON builtins."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"metadata value {value!r} of type {type(value).__name__} is not JSON-able")
