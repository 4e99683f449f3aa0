"""What the reproduction scripts share: chunked, resumable training through the ``tsgen`` CLI,
the per-run JSON records under ``docs/results/`` and the rebuild of ``docs/results.md`` from
them. Imported by ``scripts/reproduce_*.py`` (the scripts' directory is on ``sys.path``)."""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import math
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from _machine import device_description, git_commit

from tsgen._files import atomic_write
from tsgen.metrics.command import option_value
from tsgen.metrics.intervals import t_interval

__all__ = [
    "COMMIT",
    "REPO",
    "RESULTS",
    "SCORED_FLOOR",
    "SCORED_FLOOR_METHODS",
    "UPPER_GRID",
    "apply_sampling",
    "checkpoint_steps",
    "config_steps",
    "interval",
    "load_records",
    "other_training_note",
    "run_command",
    "run_parser",
    "save_record",
    "train_chunked",
    "training_record",
    "write_json",
]

log = logging.getLogger("reproduce")

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "docs" / "results"
TRAIN_LOG = "train_chunks.json"
# The code that produced a record is the code at the script's start, not at the time of saving.
COMMIT = git_commit()

# Euler-Maruyama with 100 intervals, 25 of them spent evenly above t = 0.5 (docs/timebridge.md,
# "A grid for both ends of the bridge").
UPPER_GRID = [
    "--model.init_args.sampler", "sde",
    "--model.init_args.n_intervals", "100",
    "--model.init_args.upper_intervals", "25",
]  # fmt: skip
# The scale floor of the conditional variants that named none when they were scored: the one
# their dataset's configs held then. reproduce_conditional.py names it in their overrides, so
# that they keep their meaning when a config's floor changes, and their titles say it.
SCORED_FLOOR = {"stocks": 0.0, "etth1": 0.5}
SCORED_FLOOR_METHODS = frozenset({
    "timebridge_l1_hybrid",
    "timebridge_l2_upper",
    "timebridge_l2_upper_window_fallback",
    "timebridge_l2_upper_window_fallback_mixed",
})  # fmt: skip


def checkpoint_steps(checkpoint: Path) -> int:
    """Optimizer steps a checkpoint has trained (0 if it does not exist)."""
    if not checkpoint.is_file():
        return 0
    return int(torch.load(checkpoint, map_location="cpu", weights_only=True)["global_step"])


def config_steps(config: Path) -> tuple[int, int]:
    """``(max_steps, every_n_train_steps)`` of a training config."""
    import yaml

    data = yaml.safe_load(config.read_text())
    every = [
        cb["init_args"]["every_n_train_steps"]
        for cb in data["trainer"].get("callbacks", [])
        if "every_n_train_steps" in cb.get("init_args", {})
    ]
    return int(data["trainer"]["max_steps"]), int(every[0]) if every else 0


def model_arguments(
    model_class: type, config: Path, overrides: Sequence[str] = ()
) -> dict[str, Any]:
    """The constructor arguments of ``model_class`` that a run of ``config`` with ``overrides``
    (``["--model.init_args.rho", "7.0", ...]``) gives it: the class defaults, then the
    config's ``model.init_args``, then the flags, read as the CLI reads them (a later flag
    wins, as on the command line). Nested objects stay as given (a config's ``{class_path,
    init_args}``, a flag's class path). A flag into one sets that argument in its
    ``init_args``, spelled as the CLI accepts it: ``--model.init_args.prior.init_args.kernel``
    or ``--model.init_args.prior.kernel``; ``--model.init_args.prior.class_path`` sets its class.
    A flag that names a nested object's class again keeps its arguments; another class drops
    them."""
    import copy

    import yaml

    settings = {
        name: parameter.default
        for name, parameter in inspect.signature(model_class).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }
    settings.update(yaml.safe_load(config.read_text())["model"].get("init_args") or {})
    settings = copy.deepcopy(settings)
    prefix = "--model.init_args."
    for flag, text in zip(overrides[::2], overrides[1::2], strict=True):
        if not flag.startswith(prefix):
            continue
        *path, name = [key for key in flag.removeprefix(prefix).split(".") if key != "init_args"]
        node = settings
        for key in path:
            node = _nested_object(node, key)
            if name != "class_path" or key != path[-1]:
                node = node["init_args"]
        value = option_value(text)
        if name == "class_path":
            _set_class_path(node, value)
        elif isinstance(node.get(name), dict) and _class_path(node[name]) == value:
            continue
        else:
            node[name] = value
    return settings


def _nested_object(node: dict[str, Any], key: str) -> dict[str, Any]:
    """``node[key]`` as ``{class_path, init_args}`` (a bare class path gets empty arguments)."""
    value = node.get(key)
    if not isinstance(value, dict):
        value = node[key] = {"class_path": value, "init_args": {}}
    if value.get("init_args") is None:
        value["init_args"] = {}
    return value


def _set_class_path(nested: dict[str, Any], class_path: Any) -> None:
    if nested.get("class_path") != class_path:
        nested["class_path"], nested["init_args"] = class_path, {}


def apply_sampling(model: Any, config: Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Give a loaded TimeBridge the sampling options of ``config`` and of ``overrides`` (the
    run's command-line flags), else the class defaults, and return them for the record
    (``sample_t_min`` resolved).

    Sampling is not part of training, so a checkpoint is scored with the sampler its config
    and the library state now, not the one saved with it (``tsgen predict`` keeps the saved
    one, see ``TimeBridge.on_load_checkpoint``).
    """
    names = type(model).SAMPLING_OPTIONS
    arguments = model_arguments(type(model), config, overrides)
    missing = [name for name in names if name not in arguments]
    if missing:
        raise ValueError(f"{type(model).__name__}'s constructor does not take {missing}")
    settings = {name: arguments[name] for name in names}
    model.set_sampling(**settings)
    return {**settings, "sample_t_min": model.grid_t_min}


# The TimeBridge arguments that decide what a run trains: a checkpoint that disagrees with its
# variant on one of them is a run directory left from other settings.
TRAINING_OPTIONS = (
    "task", "prior", "loss_norm", "loss_weight", "fourier_weight", "time_distribution",
    "log_fraction", "t_min", "time_input", "preconditioning", "sigma_data", "lr", "seed",
    "scale_floor", "fallback_span",
)  # fmt: skip


def _class_path(value: Any) -> Any:
    """A nested object's class path (a config's ``{class_path, init_args}`` or a flag's path)."""
    return value.get("class_path") if isinstance(value, dict) else value


def _nested_differences(have: Any, want: Any) -> dict[str, tuple[Any, Any]]:
    """Where a saved nested object (``{class_path, init_args}``) differs from a wanted one: its
    class path, else every argument the checkpoint saved, the wanted one's missing arguments
    taken as its class's defaults (arguments a checkpoint predates are not compared)."""
    import importlib

    if _class_path(have) != _class_path(want):
        return {"class_path": (_class_path(have), _class_path(want))}
    saved = (have.get("init_args") or {}) if isinstance(have, dict) else {}
    module, _, name = str(_class_path(want)).rpartition(".")
    defaults = {
        argument: parameter.default
        for argument, parameter in inspect.signature(
            getattr(importlib.import_module(module), name)
        ).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }
    wanted = {**defaults, **((want.get("init_args") or {}) if isinstance(want, dict) else {})}
    return {
        argument: (value, wanted[argument])
        for argument, value in saved.items()
        if argument in wanted and value != wanted[argument]
    }


def check_trained_like(checkpoint: Path, config: Path, overrides: Sequence[str] = ()) -> None:
    """Refuse a checkpoint whose saved hyper-parameters differ from what ``config`` (its
    ``model.class_path``) with ``overrides`` trains on one of :data:`TRAINING_OPTIONS` (keys
    a checkpoint predates are not compared): resuming it would mix two trainings, scoring it
    would credit one variant with another's model."""
    import importlib

    import yaml

    module, _, name = yaml.safe_load(config.read_text())["model"]["class_path"].rpartition(".")
    model_class = getattr(importlib.import_module(module), name)
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)["hyper_parameters"]
    wanted = model_arguments(model_class, config, overrides)
    differing = []
    for name in TRAINING_OPTIONS:
        if name not in saved or name not in wanted:
            continue
        have, want = saved[name], wanted[name]
        if name == "prior":
            differing += [
                f"prior{'' if key == 'class_path' else ' ' + key}: checkpoint {pair[0]!r}, "
                f"run {pair[1]!r}"
                for key, pair in _nested_differences(have, want).items()
            ]
        elif have != want:
            differing.append(f"{name}: checkpoint {have!r}, run {want!r}")
    if differing:
        raise ValueError(
            f"{checkpoint} was trained with other settings than {config.name} with overrides "
            f"{list(overrides)} gives ({'; '.join(differing)}): a run directory left from "
            "another config or variant; move it to the variant that gives its settings"
        )


def write_json(path: Path, data: Any) -> None:
    """``data`` as indented JSON at ``path`` (atomically; parent folders made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2)
    atomic_write(path, lambda handle: handle.write(text + "\n"), text=True)


def train_chunked(
    run_dir: Path,
    config: Path,
    overrides: Sequence[str],
    *,
    max_steps: int,
    chunk_steps: int | None,
    accelerator: str,
    time_budget_s: float | None = None,
) -> int:
    """Train (or resume) the run in ``run_dir`` towards ``max_steps`` optimizer steps, one
    ``tsgen fit`` process per chunk of ``chunk_steps`` (all at once when ``None``), each
    resuming from ``checkpoints/last.ckpt``; stop early when another chunk as long as the last
    one would end after ``time_budget_s`` (which needs ``chunk_steps``). Every chunk is logged
    to ``run_dir/train_chunks.json``.

    Returns:
        The steps trained so far.
    """
    # The fit processes run from the repository; the parent must look where they write.
    run_dir = run_dir.resolve()
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    _, every = config_steps(config)
    if time_budget_s is not None and chunk_steps is None:
        raise ValueError("--time-budget needs --chunk-steps: the budget is kept between chunks")
    if chunk_steps is not None and every and chunk_steps % every:
        raise ValueError(
            f"--chunk-steps must be a multiple of the config's checkpoint interval ({every}), "
            f"so that every chunk ends on a checkpoint; got {chunk_steps}"
        )
    start = time.perf_counter()
    done = checkpoint_steps(checkpoint)
    if done:
        check_trained_like(checkpoint, config, overrides)
    last_chunk_s = 0.0
    while done < max_steps:
        # Stop when the next chunk, as long as the last one, would overrun the budget.
        if time_budget_s is not None and (
            time.perf_counter() - start + last_chunk_s > time_budget_s
        ):
            log.info("time budget spent at step %d of %d; run again to resume", done, max_steps)
            break
        target = max_steps if chunk_steps is None else min(done + chunk_steps, max_steps)
        command = [
            sys.executable, "-m", "tsgen", "fit", "-c", str(config), *overrides,
            "--trainer.max_steps", str(target),
            "--trainer.accelerator", accelerator,
            "--trainer.enable_progress_bar", "false",
            "--trainer.logger", "lightning.pytorch.loggers.CSVLogger",
            "--trainer.logger.save_dir", str(run_dir.parent.parent),
            "--trainer.logger.name", run_dir.parent.name,
            "--trainer.logger.version", run_dir.name,
        ]  # fmt: skip
        if checkpoint.is_file():
            command += ["--ckpt_path", str(checkpoint)]
        log.info("training %s: steps %d -> %d", run_dir, done, target)
        tick = time.perf_counter()
        subprocess.run(command, check=True, cwd=REPO)
        last_chunk_s = time.perf_counter() - tick
        reached = checkpoint_steps(checkpoint)
        chunks_path = run_dir / TRAIN_LOG
        chunks = json.loads(chunks_path.read_text()) if chunks_path.is_file() else []
        chunks.append(
            {
                "from_step": done,
                "to_step": reached,
                "wall_s": round(last_chunk_s, 1),
                "device": device_description(accelerator),
                "commit": COMMIT,
                "overrides": list(overrides),
            }
        )
        write_json(chunks_path, chunks)
        if reached <= done:
            raise RuntimeError(f"training made no progress past step {done} in {run_dir}")
        done = reached
    return done


def training_record(run_dir: Path) -> list[dict[str, Any]]:
    """The chunks logged by :func:`train_chunked` for a run (empty if none)."""
    path = run_dir / TRAIN_LOG
    return json.loads(path.read_text()) if path.is_file() else []


def other_training_note(training: list[dict[str, Any]], overrides: Sequence[str]) -> str | None:
    """What a record says of a checkpoint whose training chunks (``training``, from
    :func:`training_record`) ran with other overrides than the ``overrides`` it is scored with,
    which :func:`check_trained_like` found to give the same settings: a run directory copied
    from a variant whose settings a config has taken, one moved to the variant that names the
    settings a config has left, or a variant that has since spelt out a setting it took from
    its config. ``None`` when every chunk ran with ``overrides``."""
    others = sorted({tuple(chunk["overrides"]) for chunk in training} - {tuple(overrides)})
    if not others:
        return None
    ran = " and ".join(f"`{' '.join(flags)}`" if flags else "no overrides" for flags in others)
    return f"trained with {ran} (other flags for this model's settings, as checked)"


def save_record(kind: str, name: str, record: dict[str, Any]) -> Path:
    """Write one run's record to ``docs/results/<kind>/<name>.json`` (atomically)."""
    path = RESULTS / kind / f"{name}.json"
    write_json(path, {"kind": kind, "name": name, "commit": COMMIT, **record})
    return path


def load_records(kind: str) -> list[dict[str, Any]]:
    """All committed records of one kind, by file name."""
    return [json.loads(p.read_text()) for p in sorted((RESULTS / kind).glob("*.json"))]


def interval(values: Sequence[float], digits: int = 3) -> str:
    """``mean +- t-interval`` of ``values`` (the mean alone for one value), or ``-``."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "-"
    if len(values) == 1:
        mean, half = values[0], None
    else:
        mean, half = t_interval(values)
    # Original units can be large (Stocks' volume, ~1e7 shares): scientific notation there.
    style = f".{digits}f" if abs(mean) < 1e4 else ".3e"
    return f"{mean:{style}}" if half is None else f"{mean:{style}} +- {half:{style}}"


def run_parser(description: str) -> argparse.ArgumentParser:
    """The arguments both reproduction scripts take: the command and where and how to train."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("command", choices=("train", "evaluate", "table", "all"))
    parser.add_argument("--runs", type=Path, default=REPO / "runs", help="run directories")
    parser.add_argument("--accelerator", default="auto", help="Lightning accelerator to train")
    parser.add_argument("--chunk-steps", type=int, default=None, help="steps per fit process")
    parser.add_argument("--time-budget", type=float, default=None, help="seconds; then stop")
    parser.add_argument("--max-steps", type=int, default=None, help="override the config's")
    parser.add_argument("--device", default=None, help="device of sampling and metrics")
    return parser


def run_command(
    args: argparse.Namespace,
    train: Callable[[argparse.Namespace], None],
    evaluate: Callable[[argparse.Namespace], None],
    rebuild_tables: Callable[[], Path],
) -> None:
    """Train, evaluate and/or rebuild the tables, as ``args.command`` says."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    if args.command in ("train", "all"):
        train(args)
    if args.command in ("evaluate", "all"):
        evaluate(args)
    if args.command in ("table", "all"):
        log.info("wrote %s", rebuild_tables())
