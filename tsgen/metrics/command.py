"""``tsgen evaluate``: the bundled metrics on a checkpoint or on a file of samples.

::

    tsgen evaluate runs/stocks/checkpoints/last.ckpt                  # generate, compare
    tsgen evaluate samples/samples.npy --real runs/stocks/checkpoints/last.ckpt
    tsgen evaluate samples/samples.npy --real stocks --repeats 20 --plots eval/
    tsgen evaluate fake.npy --real real.npy --metrics discriminative predictive
    tsgen evaluate last.ckpt --sampling n_intervals=100 churn=0.5  # another sampler

With a checkpoint as the source, as many windows as the real set holds are generated
(``--num_samples`` to change) with ``--seed``, by the sampler saved in the checkpoint or the
one ``--sampling`` gives (any of the model's ``SAMPLING_OPTIONS``). The real windows are, in
this order of preference: ``--real`` (a ``.npy`` file of ``(N, L, C)`` windows, a checkpoint
whose training windows to use, or a built-in dataset name windowed with ``--window``), else the
source checkpoint's training windows. Both sets are min-max scaled by the real windows, except
real windows of a dataset the papers score in its own units
(``tsgen.data.PROTOCOL_UNITS_DATASETS``: the built-in ``sines``); ``--scaled`` and
``--rescale`` decide it explicitly. The table is printed, the report saved as
JSON (``--output``) and, with ``--plots``, pictures are drawn (``viz`` extra).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tsgen.metrics._repeats import resolve_device
from tsgen.metrics.evaluate import METRICS, TRAINED_METRICS, check_unit_interval, evaluate

if TYPE_CHECKING:
    from tsgen.data import WindowsDataModule

__all__ = ["build_parser", "evaluate_main", "option_value"]

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``tsgen evaluate``."""
    # tsgen.data brings Lightning: imported when the command runs, not with tsgen.metrics.
    from tsgen.data import PROTOCOL_UNITS_DATASETS

    own_units = ", ".join(sorted(PROTOCOL_UNITS_DATASETS))
    parser = argparse.ArgumentParser(
        prog="tsgen evaluate",
        description="Evaluate generated windows against real ones with the bundled metrics.",
    )
    parser.add_argument("source", type=Path, help="a .ckpt to sample from, or a .npy of samples")
    parser.add_argument(
        "--real",
        help="real windows: a .npy file, a .ckpt (its training windows) or a built-in dataset "
        "name; default: the source checkpoint's training windows",
    )
    parser.add_argument("--window", type=int, default=24, help="window of a built-in --real")
    parser.add_argument(
        "--metrics",
        nargs="+",
        default=["paper"],
        help=f"'paper', 'all' or names among {sorted(METRICS)}",
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0, help="seed of the metrics and samples")
    parser.add_argument("--device", default=None, help="e.g. cpu, cuda; default: CUDA if any")
    parser.add_argument(
        "--num_samples", type=int, default=None, help="windows to generate from a checkpoint"
    )
    parser.add_argument(
        "--sampling",
        nargs="+",
        default=[],
        metavar="NAME=VALUE",
        help="sample a checkpoint with these sampling options instead of its saved ones, e.g. "
        "n_intervals=100 rho=14 sample_t_min=null",
    )
    parser.add_argument(
        "--iterations",
        nargs="+",
        default=[],
        metavar="NAME=N",
        help=f"override training iterations of {', '.join(TRAINED_METRICS)}",
    )
    units = parser.add_mutually_exclusive_group()
    units.add_argument(
        "--scaled",
        dest="scaled",
        action="store_const",
        const=True,
        help="score both sets as they are (already in [0, 1]); the default for the built-in "
        f"datasets the papers score in their own units ({own_units})",
    )
    units.add_argument(
        "--rescale",
        dest="scaled",
        action="store_const",
        const=False,
        help="min-max scale both sets by the real windows (the default for every other data)",
    )
    parser.add_argument("--tf32", action="store_true", help="allow TF32 on CUDA (faster)")
    parser.add_argument("--output", type=Path, default=Path("evaluation.json"))
    parser.add_argument("--plots", type=Path, default=None, help="directory for PNG pictures")
    parser.add_argument("--no_progress", action="store_true", help="hide progress bars")
    return parser


def _real_windows(real: str | None, source: Path, window: int) -> tuple[np.ndarray, str | None]:
    """The real windows in original units and the built-in dataset they come from (``None``
    for a user's file or series)."""
    from tsgen.api import load_datamodule
    from tsgen.data import BUILTIN_DATASETS, WindowsDataModule

    if real is None:
        if source.suffix != ".ckpt":
            raise ValueError(
                "--real is needed when the source is a file of samples: a .npy of real windows, "
                f"a .ckpt or a built-in dataset name ({', '.join(BUILTIN_DATASETS)})"
            )
        return _training_windows(load_datamodule(source))
    if real in BUILTIN_DATASETS:
        return WindowsDataModule(dataset=real, window=window).train_split.raw.numpy(), real
    path = Path(real)
    if not path.is_file():
        raise FileNotFoundError(
            f"--real {real!r} is neither a file nor a built-in dataset "
            f"({', '.join(BUILTIN_DATASETS)})"
        )
    if path.suffix == ".ckpt":
        return _training_windows(load_datamodule(path))
    if path.suffix == ".npy":
        return np.load(path), None
    raise ValueError(f"--real must be a .npy, a .ckpt or a dataset name; got {real!r}")


def _training_windows(datamodule: WindowsDataModule) -> tuple[np.ndarray, str | None]:
    """A checkpoint's training windows and its built-in dataset (``None`` for a user's path)."""
    hparams = datamodule.hparams
    dataset = None if hparams.get("path") is not None else hparams.get("dataset")
    return datamodule.train_split.raw.numpy(), dataset


def option_value(text: str) -> Any:
    """A command-line value as the Lightning CLI reads it: YAML (``null``, ``true``, ``40``,
    ``[0.1, 0.2]``), with floats such as ``1e-4`` (a string in YAML 1.1) read as floats, in
    lists too."""
    import yaml

    return _floats_read(yaml.safe_load(text))


def _floats_read(value: Any) -> Any:
    if isinstance(value, list):
        return [_floats_read(item) for item in value]
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _name_value_pairs(
    pairs: Sequence[str], option: str, form: str, value_ok: Callable[[str], bool]
) -> dict[str, str]:
    """Command-line ``NAME=VALUE`` pairs of ``option`` as ``{name: value}``; ``form`` says in
    the error what the option takes."""
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not (sep and name and value_ok(value)):
            raise ValueError(f"{option} takes {form}; got {pair!r}")
        out[name] = value
    return out


def _sampling(pairs: Sequence[str]) -> dict[str, Any]:
    form = "NAME=VALUE pairs such as n_intervals=100"
    texts = _name_value_pairs(pairs, "--sampling", form, bool)
    return {name: option_value(text) for name, text in texts.items()}


def _iterations(pairs: Sequence[str]) -> dict[str, int]:
    form = "NAME=N pairs such as predictive=500"
    texts = _name_value_pairs(pairs, "--iterations", form, str.isdigit)
    return {name: int(text) for name, text in texts.items()}


def evaluate_main(args: Sequence[str] | None = None) -> None:
    """Run ``tsgen evaluate`` with ``args`` (without the program and subcommand names)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ns = build_parser().parse_args(args)
    if not ns.source.is_file():
        raise FileNotFoundError(f"source {str(ns.source)!r}: no such file")
    if ns.plots is not None and importlib.util.find_spec("matplotlib") is None:
        # Fail before minutes of metrics, not after.
        raise ImportError("--plots needs matplotlib: pip install 'tsgen[viz]'")
    from tsgen.data import PROTOCOL_UNITS_DATASETS

    sampling = _sampling(ns.sampling)
    if sampling and ns.source.suffix != ".ckpt":
        raise ValueError("--sampling needs a checkpoint as the source; got a file of samples")
    real, dataset = _real_windows(ns.real, ns.source, ns.window)
    scaled = ns.scaled
    if scaled is None:
        scaled = dataset in PROTOCOL_UNITS_DATASETS
        if scaled:
            log.info("scoring %s in its own units, as the papers do (--rescale to change)", dataset)
    if scaled:
        check_unit_interval(real)  # before minutes of sampling, not after
    if np.isnan(real).any():
        incomplete = int(np.isnan(real).any(axis=(1, 2)).sum())
        raise ValueError(
            f"the real windows hold missing values (NaN) in {incomplete} of {len(real)} windows; "
            "the metrics compare fully observed windows: pass --real with complete windows"
        )
    metadata: dict[str, object] = {"source": str(ns.source)}
    if ns.source.suffix == ".ckpt":
        from tsgen.api import load

        model = load(ns.source, map_location=resolve_device(ns.device))
        if sampling:
            if not hasattr(model, "set_sampling"):
                raise ValueError(f"--sampling: {type(model).__name__} has no sampling options")
            model.set_sampling(**sampling)
            metadata["sampling"] = sampling
        n = real.shape[0] if ns.num_samples is None else ns.num_samples
        if n < 1:
            raise ValueError(f"--num_samples must be at least 1; got {n}")
        log.info("generating %d windows from %s", n, ns.source)
        fake = model.sample(n, seed=ns.seed, progress=not ns.no_progress).cpu().numpy()
        metadata.update(num_samples=n, sample_seed=ns.seed)
    elif ns.source.suffix == ".npy":
        fake = np.load(ns.source)
    else:
        raise ValueError(f"source must be a .ckpt or a .npy file; got {str(ns.source)!r}")
    if ns.real is not None:
        metadata["real"] = ns.real
    report = evaluate(
        real,
        fake,
        ns.metrics,
        repeats=ns.repeats,
        seed=ns.seed,
        device=ns.device,
        scaled=scaled,
        iterations=_iterations(ns.iterations),
        progress=not ns.no_progress,
        tf32=ns.tf32,
        metadata=metadata,
    )
    # The table is the command's result: standard output, so that it can be piped.
    sys.stdout.write(f"{report}\n")
    log.info("report saved to %s", report.save(ns.output))
    if ns.plots is not None:
        for path in report.plot(ns.plots):
            log.info("wrote %s", path)
