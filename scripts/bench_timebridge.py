#!/usr/bin/env python
"""Benchmark of TimeBridge on Stocks: training and generation throughput against the reference.

Issue 3, item 9: the reference implementation, on an H100 (torch 2.11, float32, TF32 off, its
294k-parameter network, Stocks, 2 x 64 windows per optimizer step, a 40-interval sampler = 119
network evaluations), trains at 1,750 windows/s (73 ms per optimizer step) and generates 1,131
windows/s. The targets, on the same GPU kind, are 10x both: 17,500 training windows/s with the
same 2 x 64 windows per optimizer step (136.7 optimizer steps/s; a bigger batch does not count)
and 11,000 generated windows/s at 119 evaluations (batch 2001, and the best batch size).

What is measured (the model is the one of ``configs/timebridge/stocks.yaml``: a
``TrendSeasonTransformer`` with d_model 64, 4 heads, 2 encoder and 2 decoder layers, MLP ratio 4,
a fitted GP prior, the VP bridge; sampled by the reference's hybrid sampler with 40 intervals
and churn 0.33, which the targets are defined for, where the config now uses Euler-Maruyama on
100 intervals):

- ``lightning``: a real ``Trainer.fit`` on ``WindowsDataModule(dataset="stocks",
  batch_size=64)`` with ``accumulate_grad_batches=2``, ``gradient_clip_val=1.0``, the chosen
  precision, no logger, no checkpoints, no validation. A callback records the wall time at
  optimizer-step boundaries (after ``--warmup-steps`` steps, then ``--reps`` segments of the
  ``--train-steps`` timed steps; on CUDA it synchronises at those points only), so everything a
  training run does between steps is counted: data loading, forward, backward, clipping, Adam,
  the schedule, the EMA, Lightning's loop and the epoch boundaries (Stocks has 3,662 windows: 58
  batches per epoch, the last of 14 windows, i.e. 29 optimizer steps). Windows/s is 128 x
  optimizer steps/s, as in the issue; the windows actually served are also counted.
- ``bare`` (``--bare-loop``): the same work written by hand (the module's ``training_step``,
  ``on_before_optimizer_step`` and ``lr_scheduler_step``, ``clip_grad_norm_``, Adam, the EMA
  update every ``ema_every`` steps) on the same loader, to show what Lightning's loop costs.
- generation: ``model.sample(n, seed, batch_size=n)`` (per-sample seeded noise, the public
  API), best of ``--reps`` calls after one warm-up call, for each ``--gen-batches`` size; an
  extra row per size uses ``generate`` with one ``GaussianNoise`` generator (the cost of
  per-sample seeding), and one uses the ancestral sampler (40 evaluations: a different sampler,
  not comparable with the reference figure). The number of network evaluations is read from
  the sampler's ``SolverOutput.nfe`` (through ``bridge_sample``) and checked against a count of
  the network's forward calls.

Chunking: every measurement takes seconds, and one command stays far below the 10-minute limit:
a default CUDA run (330 optimizer steps, 4 batch sizes x 3 rows x 4 calls) would take about 4
minutes at the reference's speed and well under one at the target speed; the script prints its
total wall time. For more, call it several times (e.g. one ``--gen-batches`` size per call).

Usage::

    python scripts/bench_timebridge.py --device cuda --json bench_timebridge.json
    python scripts/bench_timebridge.py --device cuda --precision bf16-mixed --bare-loop
    python scripts/bench_timebridge.py --device cuda --tf32 --gen-batches 2001,8192
    python scripts/bench_timebridge.py --device cpu --threads 1 --quick   # smoke test
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import json
import logging
import math
import os
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from _machine import cpu_model, git_commit, load_average
from torch import Tensor

# The reference implementation on an H100 (issue 3, item 9).
REFERENCE_PARAMETERS = 294_000
REFERENCE_TRAIN_WINDOWS_PER_S = 1750.0
REFERENCE_STEP_MS = 73.0
REFERENCE_GEN_WINDOWS_PER_S = 1131.0
REFERENCE_NFE = 119
TARGET_FACTOR = 10.0
TARGET_GPU = "H100"
GEN_REFERENCE_BATCH = 2001

# The reference's sampler (119 network evaluations), which the generation target is defined for;
# configs/timebridge/stocks.yaml samples with Euler-Maruyama on 100 intervals.
SAMPLER = {"sampler": "hybrid", "n_intervals": 40, "churn": 0.33}
# configs/timebridge/stocks.yaml
NETWORK = {"d_model": 64, "n_heads": 4, "encoder_layers": 2, "decoder_layers": 2, "mlp_ratio": 4}
# configs/timebridge/stocks.yaml's objective, with the reference's sampler above.
MODEL = {
    "task": "generate",
    "preconditioning": True,
    "time_input": "log",
    "sigma_data": 0.5,
    "loss_norm": "l2",
    "loss_weight": "bridge",
    "lr": 8e-4,
    "warmup_lr": 1e-5,
    "warmup_steps": 500,
    "plateau_patience": 2000,
    "ema_decay": 0.995,
    "ema_every": 10,
    **SAMPLER,
    "num_samples": 3662,
}
BATCH_SIZE = 64
ACCUMULATE = 2
GRADIENT_CLIP = 1.0
WINDOWS_PER_STEP = BATCH_SIZE * ACCUMULATE
CONFIG = Path(__file__).resolve().parent.parent / "configs" / "timebridge" / "stocks.yaml"
SEED = 0

PRECISIONS = ("32-true", "bf16-mixed")
DEFAULTS = {
    # device: (warmup steps, timed steps, generation batches, reps)
    "cuda": (30, 300, (GEN_REFERENCE_BATCH, 512, 4096, 16384), 3),
    "cpu": (3, 20, (64,), 2),
}
QUICK = (1, 2, (4,), 1)


# ---------------------------------------------------------------------------------------------
# Machine description
# ---------------------------------------------------------------------------------------------


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()


def tf32_state() -> str:
    if not torch.cuda.is_available():
        return "n/a (no CUDA)"
    return (
        f"matmul precision {torch.get_float32_matmul_precision()!r}, "
        f"cudnn.allow_tf32 {torch.backends.cudnn.allow_tf32}"
    )


def set_tf32(enabled: bool) -> None:
    """TF32 on or off for CUDA matmuls and cuDNN convolutions (the legacy switches: Lightning
    reads ``torch.get_float32_matmul_precision()``, which refuses a mix with the new API)."""
    torch.set_float32_matmul_precision("high" if enabled else "highest")
    torch.backends.cudnn.allow_tf32 = enabled


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "bf16-mixed":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


# ---------------------------------------------------------------------------------------------
# Model and data
# ---------------------------------------------------------------------------------------------


def check_config() -> list[str]:
    """Differences between the sizes used here and ``configs/timebridge/stocks.yaml``."""
    try:
        import yaml

        config = yaml.safe_load(CONFIG.read_text())
    except (ImportError, OSError):
        return [f"{CONFIG} not readable: not checked"]
    model = config["model"]["init_args"]
    found = {
        **{f"network.{k}": v for k, v in model["network"].get("init_args", {}).items()},
        **{k: v for k, v in model.items() if k in MODEL and k not in SAMPLER},
        "data.batch_size": config["data"]["init_args"].get("batch_size"),
        "trainer.accumulate_grad_batches": config["trainer"].get("accumulate_grad_batches"),
        "trainer.gradient_clip_val": config["trainer"].get("gradient_clip_val"),
    }
    used = {
        **{f"network.{k}": v for k, v in NETWORK.items()},
        **{k: v for k, v in MODEL.items() if k not in SAMPLER},
        "data.batch_size": BATCH_SIZE,
        "trainer.accumulate_grad_batches": ACCUMULATE,
        "trainer.gradient_clip_val": GRADIENT_CLIP,
    }
    return [
        f"{key}: config {found.get(key)!r}, benchmark {value!r}"
        for key, value in used.items()
        if found.get(key) != value
    ]


def build_model(datamodule: Any) -> Any:
    from tsgen.models import TimeBridge
    from tsgen.nn import TrendSeasonTransformer
    from tsgen.priors import GaussianProcessPrior
    from tsgen.sde import VPSDE

    return TimeBridge(
        network=functools.partial(TrendSeasonTransformer, **NETWORK),
        prior=GaussianProcessPrior(kernel="rbf", mode="fit"),
        process=VPSDE(beta_min=0.2, beta_d=10.0),
        window=datamodule.window,
        n_features=datamodule.n_features,
        seed=SEED,
        **MODEL,
    )


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def batch_windows(batch: Tensor | tuple[Tensor, ...]) -> int:
    return int((batch if isinstance(batch, Tensor) else batch[0]).shape[0])


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


def step_boundaries(warmup: int, steps: int, segments: int) -> list[int]:
    """Global steps at which the clock is read: after the warm-up, then ``segments`` parts."""
    segments = max(1, min(segments, steps))
    return sorted({warmup + (k * steps) // segments for k in range(segments + 1)})


def summarize_steps(times: dict[int, float], windows: int, mode: str) -> dict:
    steps = sorted(times)
    total_steps = steps[-1] - steps[0]
    elapsed = times[steps[-1]] - times[steps[0]]
    segment_rates = [(b - a) / (times[b] - times[a]) for a, b in itertools.pairwise(steps)]
    steps_per_s = total_steps / elapsed
    return {
        "mode": mode,
        "timed_steps": total_steps,
        "seconds": elapsed,
        "steps_per_s": steps_per_s,
        "ms_per_step": 1000.0 / steps_per_s,
        "windows_per_s": WINDOWS_PER_STEP * steps_per_s,
        "served_windows_per_s": windows / elapsed,
        "segment_steps_per_s": segment_rates,
        "ratio_to_reference": WINDOWS_PER_STEP * steps_per_s / REFERENCE_TRAIN_WINDOWS_PER_S,
    }


def make_step_timer(device: torch.device, boundaries: list[int]) -> Any:
    from lightning.pytorch.callbacks import Callback

    class StepTimer(Callback):
        """Reads the clock when ``global_step`` reaches each boundary (after the optimizer step
        of that micro-batch), synchronising CUDA there only; counts the windows served in
        between."""

        def __init__(self) -> None:
            self.times: dict[int, float] = {}
            self.windows = 0
            self.last_step = 0

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            # Without warm-up the clock starts before the first batch.
            if trainer.global_step == 0 and 0 in boundaries and not self.times:
                synchronize(device)
                self.times[0] = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            if self.times:
                self.windows += batch_windows(batch)
            step = trainer.global_step
            if step != self.last_step:
                self.last_step = step
                if step in boundaries:
                    synchronize(device)
                    self.times[step] = time.perf_counter()

    return StepTimer()


def train_lightning(
    datamodule: Any, device: torch.device, precision: str, warmup: int, steps: int, segments: int
) -> tuple[Any, dict]:
    from lightning.pytorch import Trainer

    torch.manual_seed(SEED)
    model = build_model(datamodule)
    boundaries = step_boundaries(warmup, steps, segments)
    timer = make_step_timer(device, boundaries)
    with tempfile.TemporaryDirectory() as root:
        trainer = Trainer(
            accelerator="gpu" if device.type == "cuda" else "cpu",
            devices=1,
            max_steps=boundaries[-1],
            accumulate_grad_batches=ACCUMULATE,
            gradient_clip_val=GRADIENT_CLIP,
            precision=precision,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            default_root_dir=root,
            callbacks=[timer],
        )
        start = time.perf_counter()
        trainer.fit(model, datamodule)
        fit_seconds = time.perf_counter() - start
    missing = [b for b in boundaries if b not in timer.times]
    if missing:
        raise RuntimeError(f"the step timer missed the boundaries {missing}")
    result = summarize_steps(timer.times, timer.windows, "lightning")
    result["fit_seconds_total"] = fit_seconds
    result["global_step"] = trainer.global_step
    return model, result


def train_bare(
    datamodule: Any, device: torch.device, precision: str, warmup: int, steps: int, segments: int
) -> dict:
    """The same training by hand: no Trainer, the module's own step and hooks."""
    torch.manual_seed(SEED)
    model = build_model(datamodule).to(device)
    model.prior.fit(datamodule.train_split.values.to(device))
    model.scaler.load_state_dict(datamodule.scaler.state_dict())
    model.train()
    config = model.configure_optimizers()
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    parameters = [p for p in model.network.parameters() if p.requires_grad]
    loader = datamodule.train_dataloader()
    boundaries = step_boundaries(warmup, steps, segments)
    times: dict[int, float] = {}
    windows = 0
    global_step = 0

    def batches() -> Iterator[Tensor]:
        epoch = 0
        while True:
            loader.sampler.set_epoch(epoch)
            yield from loader
            epoch += 1

    micro = 0
    if 0 in boundaries:
        synchronize(device)
        times[0] = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*self.log.*")
        for batch in batches():
            batch = batch.to(device) if isinstance(batch, Tensor) else [b.to(device) for b in batch]
            if times:
                windows += batch_windows(batch)
            with autocast(device, precision):
                loss = model.training_step(batch, micro)
            (loss / ACCUMULATE).backward()
            micro += 1
            if micro % ACCUMULATE:
                continue
            model.on_before_optimizer_step(optimizer)
            torch.nn.utils.clip_grad_norm_(parameters, GRADIENT_CLIP)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            model.lr_scheduler_step(scheduler, None)
            global_step += 1
            if global_step % model.hparams.ema_every == 0:
                model.ema.update(model.network)
            if global_step in boundaries:
                synchronize(device)
                times[global_step] = time.perf_counter()
            if global_step >= boundaries[-1]:
                break
    return summarize_steps(times, windows, "bare")


# ---------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def sampler_nfe() -> Iterator[list[int]]:
    """Records ``SolverOutput.nfe`` of every ``bridge_sample`` call that TimeBridge makes."""
    import tsgen.models.timebridge as timebridge_module

    original = timebridge_module.bridge_sample
    record: list[int] = []

    def recording(*args: Any, **kwargs: Any) -> Any:
        out = original(*args, **kwargs)
        record.append(out.nfe)
        return out

    timebridge_module.bridge_sample = recording
    try:
        yield record
    finally:
        timebridge_module.bridge_sample = original


@contextlib.contextmanager
def forward_calls(module: torch.nn.Module) -> Iterator[list[int]]:
    count = [0]

    def hook(*_: Any) -> None:
        count[0] += 1

    handle = module.register_forward_hook(hook)
    try:
        yield count
    finally:
        handle.remove()


GEN_ROWS = (
    # (label, sampler, noise): noise "per-sample" = model.sample(); "gaussian" = generate()
    # with one GaussianNoise generator.
    ("hybrid/sample", "hybrid", "per-sample"),
    ("hybrid/gaussian", "hybrid", "gaussian"),
    ("ancestral/sample", "ancestral", "per-sample"),
)


def generation_call(model: Any, device: torch.device, n: int, noise: str) -> Callable[[], Tensor]:
    from tsgen.sde import GaussianNoise

    if noise == "per-sample":
        return lambda: model.sample(n, SEED, batch_size=n)

    def call() -> Tensor:
        generator = torch.Generator(device).manual_seed(SEED)
        return model.scaler.inverse_transform(model.generate(n, GaussianNoise(generator)))

    return call


def bench_generation(
    model: Any, device: torch.device, precision: str, batches: list[int], reps: int
) -> list[dict]:
    model.to(device).eval()
    network = model.ema.average if model.hparams.use_ema else model.network
    sampler = model.hparams.sampler
    rows = []
    try:
        for n in batches:
            for label, mode, noise in GEN_ROWS:
                model.hparams.sampler = mode
                call = generation_call(model, device, n, noise)
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                with autocast(device, precision):
                    # Warm-up call, which also counts the network evaluations.
                    with sampler_nfe() as nfe, forward_calls(network) as calls:
                        out = call()
                        synchronize(device)
                    if not bool(torch.isfinite(out).all()):
                        raise RuntimeError(f"{label} at batch {n} returned non-finite windows")
                    samples = []
                    for _ in range(reps):
                        synchronize(device)
                        start = time.perf_counter()
                        call()
                        synchronize(device)
                        samples.append(time.perf_counter() - start)
                best = min(samples)
                row = {
                    "label": label,
                    "sampler": mode,
                    "noise": noise,
                    "batch": n,
                    "nfe": nfe[0] if len(nfe) == 1 else nfe,
                    "network_calls": calls[0],
                    "best_s": best,
                    "samples_s": samples,
                    "windows_per_s": n / best,
                    "ratio_to_reference": n / best / REFERENCE_GEN_WINDOWS_PER_S,
                    "comparable_to_reference": mode == "hybrid",
                }
                if device.type == "cuda":
                    row["peak_memory_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
                rows.append(row)
                print(
                    f"  generation {label:<17} batch {n:>6}: best {best:.4f} s of {reps}, "
                    f"{n / best:>10,.0f} windows/s, nfe {row['nfe']} "
                    f"(network calls {calls[0]})",
                    flush=True,
                )
    finally:
        model.hparams.sampler = sampler
    return rows


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def format_training(rows: list[dict]) -> str:
    head = (
        f"{'mode':<10} {'steps':>6} {'seconds':>8} {'opt steps/s':>12} {'ms/step':>8} "
        f"{'windows/s':>10} {'served/s':>10} {'segments steps/s':>20} {'x ref':>7}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        seg = r["segment_steps_per_s"]
        lines.append(
            f"{r['mode']:<10} {r['timed_steps']:>6} {r['seconds']:>8.3f} {r['steps_per_s']:>12.2f} "
            f"{r['ms_per_step']:>8.2f} {r['windows_per_s']:>10,.0f} "
            f"{r['served_windows_per_s']:>10,.0f} {f'{min(seg):.1f}-{max(seg):.1f}':>20} "
            f"{r['ratio_to_reference']:>7.3f}"
        )
    lines.append(
        f"{'reference':<10} {'':>6} {'':>8} {1000 / REFERENCE_STEP_MS:>12.2f} "
        f"{REFERENCE_STEP_MS:>8.2f} {REFERENCE_TRAIN_WINDOWS_PER_S:>10,.0f}"
    )
    return "\n".join(lines)


def format_generation(rows: list[dict]) -> str:
    memory = any("peak_memory_mib" in r for r in rows)
    head = (
        f"{'sampler/noise':<17} {'batch':>6} {'nfe':>4} {'best s':>8} {'windows/s':>10} "
        f"{'x ref':>7}" + (f" {'peak MiB':>9}" if memory else "")
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        ratio = f"{r['ratio_to_reference']:>7.3f}" if r["comparable_to_reference"] else f"{'-':>7}"
        line = (
            f"{r['label']:<17} {r['batch']:>6} {r['nfe']!s:>4} {r['best_s']:>8.4f} "
            f"{r['windows_per_s']:>10,.0f} {ratio}"
        )
        if memory:
            line += f" {r.get('peak_memory_mib', math.nan):>9.0f}"
        lines.append(line)
    lines.append(
        f"{'reference hybrid':<17} {'':>6} {REFERENCE_NFE:>4} {'':>8} "
        f"{REFERENCE_GEN_WINDOWS_PER_S:>10,.0f}"
    )
    return "\n".join(lines)


def target_lines(device: torch.device, name: str, training: list[dict], gen: list[dict]) -> list:
    applies = device.type == "cuda" and TARGET_GPU in name

    def verdict(ratio: float) -> str:
        if not applies:
            return "INFO"
        return "PASS" if ratio >= TARGET_FACTOR else "FAIL"

    lines = []
    for r in training:
        lines.append(
            f"{verdict(r['ratio_to_reference'])} training [{r['mode']}] "
            f"{r['steps_per_s']:.2f} optimizer steps/s x {WINDOWS_PER_STEP} = "
            f"{r['windows_per_s']:,.0f} windows/s: {r['ratio_to_reference']:.2f}x the reference "
            f"(target {TARGET_FACTOR:g}x = {TARGET_FACTOR * REFERENCE_TRAIN_WINDOWS_PER_S:,.0f})"
        )
    hybrid = [r for r in gen if r["label"] == "hybrid/sample"]
    for r in hybrid:
        if r["batch"] == GEN_REFERENCE_BATCH:
            lines.append(
                f"{verdict(r['ratio_to_reference'])} generation at batch {r['batch']}, "
                f"{r['nfe']} evaluations: {r['windows_per_s']:,.0f} windows/s, "
                f"{r['ratio_to_reference']:.2f}x the reference (target {TARGET_FACTOR:g}x = "
                f"{TARGET_FACTOR * REFERENCE_GEN_WINDOWS_PER_S:,.0f})"
            )
    if hybrid:
        best = max(hybrid, key=lambda r: r["windows_per_s"])
        lines.append(
            f"{verdict(best['ratio_to_reference'])} generation, best batch {best['batch']}, "
            f"{best['nfe']} evaluations: {best['windows_per_s']:,.0f} windows/s, "
            f"{best['ratio_to_reference']:.2f}x the reference"
        )
    if not applies:
        lines.append(
            f"(the targets are for an {TARGET_GPU}; on {device.type} '{name}' the ratios are "
            "information only)"
        )
    return lines


def parse_batches(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers; got {text!r}"
        ) from error
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive batch sizes; got {text!r}")
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="TimeBridge on Stocks: training and generation throughput vs the reference."
    )
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda", "auto"),
        default="auto",
        help="where to run (default: cuda when available, else cpu)",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="32-true",
        help="Lightning precision for training; bf16-mixed also runs generation under autocast "
        "(default 32-true, as the reference)",
    )
    parser.add_argument(
        "--tf32",
        action="store_true",
        help="allow TF32 in CUDA matmuls and cuDNN convolutions (default: off, as the reference)",
    )
    parser.add_argument(
        "--train-steps",
        type=int,
        default=None,
        help="timed optimizer steps (default 300 on cuda, 20 on cpu; 0 skips training)",
    )
    parser.add_argument(
        "--warmup-steps",
        type=int,
        default=None,
        help="optimizer steps before the clock starts (default 30 on cuda, 3 on cpu)",
    )
    parser.add_argument(
        "--gen-batches",
        type=parse_batches,
        default=None,
        help="comma-separated generation batch sizes (default 2001,512,4096,16384 on cuda, "
        "64 on cpu; --no-generation skips generation)",
    )
    parser.add_argument("--no-generation", action="store_true", help="skip generation")
    parser.add_argument(
        "--reps",
        type=int,
        default=None,
        help="timed generation calls per row (best is reported) and training segments "
        "(default 3 on cuda, 2 on cpu)",
    )
    parser.add_argument(
        "--bare-loop",
        action="store_true",
        help="also time the training step written by hand, without Lightning",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: 1 warm-up and 2 timed steps, generation at batch 4, 1 repetition",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch intra-op CPU threads (default: torch's)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    for name in ("train_steps", "reps", "threads"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "train_steps" else 1):
            parser.error(f"--{name.replace('_', '-')} must be a positive integer")
    if args.warmup_steps is not None and args.warmup_steps < 0:
        parser.error("--warmup-steps must be >= 0")
    return args


def select_device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: CUDA is not available on this machine")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(choice)


def main(argv: list[str] | None = None) -> int:
    wall_start = time.perf_counter()
    args = parse_args(argv)
    device = select_device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        set_tf32(args.tf32)
    warmup, steps, batches, reps = QUICK if args.quick else DEFAULTS[device.type]
    warmup = args.warmup_steps if args.warmup_steps is not None else warmup
    steps = args.train_steps if args.train_steps is not None else steps
    batches = list(args.gen_batches if args.gen_batches is not None else batches)
    reps = args.reps if args.reps is not None else reps
    if args.no_generation:
        batches = []

    import lightning

    # Lightning's info lines (GPU available, tips) and hints about workers and the validation
    # loader are noise here (set after the import, which sets Lightning's own levels).
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    for message in ("does not have many workers", "LeafSpec", "no `validation_step`"):
        warnings.filterwarnings("ignore", message=f".*{message}.*")

    from tsgen.data import WindowsDataModule

    datamodule = WindowsDataModule(dataset="stocks", batch_size=BATCH_SIZE, seed=SEED)
    probe = build_model(datamodule)
    parameters = count_parameters(probe.network)
    n_windows = len(datamodule.train_split.values)
    micro_batches = math.ceil(n_windows / BATCH_SIZE)
    last_batch = n_windows - (micro_batches - 1) * BATCH_SIZE
    name = device_name(device)
    info = {
        "device": f"{device.type}: {name}",
        "torch": torch.__version__,
        "cuda": torch.version.cuda if device.type == "cuda" else None,
        "lightning": lightning.__version__,
        "python": platform.python_version(),
        "commit": git_commit(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "precision": args.precision,
        "tf32": tf32_state() if device.type == "cuda" else "n/a (cpu)",
        "threads": torch.get_num_threads(),
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "load_average_at_start": load_average(),
        "network": f"TrendSeasonTransformer({', '.join(f'{k}={v}' for k, v in NETWORK.items())})",
        "parameters": f"{parameters:,} (network; the EMA copy is not counted), reference "
        f"{REFERENCE_PARAMETERS:,}",
        "data": f"Stocks, {n_windows} windows of {datamodule.window} x {datamodule.n_features}; "
        f"{micro_batches} batches of {BATCH_SIZE} per epoch (the last of {last_batch}), "
        f"{ACCUMULATE} per optimizer step ({math.ceil(micro_batches / ACCUMULATE)} steps per "
        "epoch)",
        "sampler": f"{MODEL['sampler']}, {MODEL['n_intervals']} intervals, churn {MODEL['churn']}",
        "training": f"{warmup} warm-up + {steps} timed optimizer steps in {reps} segment(s)",
        "generation": f"batches {batches}, best of {reps} after 1 warm-up call",
    }
    del probe
    print("TimeBridge benchmark: Stocks, reference network (configs/timebridge/stocks.yaml)")
    for key, value in info.items():
        print(f"  {key}: {value}")
    for difference in check_config():
        print(f"  WARNING: differs from {CONFIG.name}: {difference}")
    if args.quick:
        print("  --quick: a smoke test; the figures mean nothing")
    if device.type == "cpu":
        print("  cpu: the targets are for an H100; these figures only show that the script works")
    sys.stdout.flush()

    results: dict = {
        "machine": info,
        "reference": {
            "train_windows_per_s": REFERENCE_TRAIN_WINDOWS_PER_S,
            "step_ms": REFERENCE_STEP_MS,
            "gen_windows_per_s": REFERENCE_GEN_WINDOWS_PER_S,
            "nfe": REFERENCE_NFE,
            "parameters": REFERENCE_PARAMETERS,
        },
        "parameters": parameters,
    }
    training: list[dict] = []
    model = None
    if steps > 0:
        model, row = train_lightning(datamodule, device, args.precision, warmup, steps, reps)
        training.append(row)
        print(
            f"  training lightning: {row['steps_per_s']:.2f} optimizer steps/s "
            f"({row['windows_per_s']:,.0f} windows/s) over {row['timed_steps']} steps; whole fit "
            f"{row['fit_seconds_total']:.1f} s (prior fit and warm-up included)",
            flush=True,
        )
        if args.bare_loop:
            row = train_bare(datamodule, device, args.precision, warmup, steps, reps)
            training.append(row)
            print(
                f"  training bare:      {row['steps_per_s']:.2f} optimizer steps/s "
                f"({row['windows_per_s']:,.0f} windows/s)",
                flush=True,
            )
    gen: list[dict] = []
    if batches:
        if model is None:
            # No training: fit the prior and copy the scaler as training would.
            torch.manual_seed(SEED)
            model = build_model(datamodule)
            model.prior.fit(datamodule.train_split.values)
            model.scaler.load_state_dict(datamodule.scaler.state_dict())
        gen = bench_generation(model, device, args.precision, batches, reps)

    if training:
        print("\nTraining (2 x 64 windows per optimizer step; windows/s = 128 x steps/s)")
        print(format_training(training))
    if gen:
        print(
            "\nGeneration (hybrid = the reference's sampler; 'sample' = model.sample with "
            "per-sample seeds, 'gaussian' = model.generate with one GaussianNoise generator; "
            "ancestral is a different sampler, 40 evaluations, not compared)"
        )
        print(format_generation(gen))
        bad = [r for r in gen if r["sampler"] == "hybrid" and r["nfe"] != REFERENCE_NFE]
        bad += [r for r in gen if r["nfe"] != r["network_calls"]]
        if bad:
            print(f"WARNING: unexpected evaluation counts in {[r['label'] for r in bad]}")
    lines = target_lines(device, name, training, gen)
    print()
    print("\n".join(lines))
    if args.precision != "32-true" or args.tf32:
        print(
            "NOTE: the reference ran in float32 with TF32 off; this precision counts only with "
            "quality metrics shown equal at it (not measured here)"
        )
    results.update(training=training, generation=gen, targets=lines)
    results["machine"]["load_average_at_end"] = load_average()
    total = time.perf_counter() - wall_start
    results["wall_seconds"] = total
    print(
        f"\nload average at start {info['load_average_at_start']}, at end {load_average()}; "
        f"total wall time {total:.1f} s"
    )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
