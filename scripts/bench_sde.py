#!/usr/bin/env python
"""Benchmark of the SDE layer: 1000-step Euler-Maruyama with an MLP drift (see sde.md).

The SDE ``dX = f(t, X) dt + 0.5 dW`` on [0, 1] with ``f`` an MLP ``(d + 1) -> width -> width -> d``
(SiLU; the time is concatenated to the state as an input feature) is integrated in float32 by
several contenders that share the same network and the same initial state:

- ``tsgen``: ``solve(sde, x0, grid, "euler")`` with the default noise (``GaussianNoise``);
- ``tsgen/ps``: the same with ``PerSampleNoise(seeds=range(batch))``, built inside every call
  as a user would (so the per-sample seeding is part of its cost);
- ``sdeint``: ``torchsde.sdeint(..., method="euler", dt=1e-3)`` with its default Brownian motion;
- ``sdeint/bi``: ``torchsde.sdeint`` with a tuned ``BrownianInterval(dt=1e-3, cache_size=None)``;
- ``hand``: a hand-written loop over a time grid precomputed on the device;
- ``hand/graph`` (CUDA only, a reference, not a target): the hand loop captured once in a
  ``torch.cuda.CUDAGraph`` and replayed; tsgen has no CUDA-graph mode yet.

Every call runs under ``torch.inference_mode()``. Each contender is warmed up, then timed
repeatedly with the contenders interleaved (the order rotates every round) so that load from
other processes hits them alike; the tables give medians.

Usage::

    python scripts/bench_sde.py                  # every available device, default repetitions
    python scripts/bench_sde.py --device cpu --reps 9 --json bench.json
    python scripts/bench_sde.py --quick          # smoke test: one warm-up, one timed call
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch
import torchsde
from _machine import cpu_model, git_commit, load_average
from torch import Tensor, nn

from tsgen.sde import SDE, ExplicitIncrements, PerSampleNoise, solve, uniform_grid

N_STEPS = 1000
T_END = 1.0
DT = T_END / N_STEPS
SIGMA = 0.5
DTYPE = torch.float32
SEED = 0

# (batch, d, width)
CONFIGS: tuple[tuple[int, int, int], ...] = (
    (16, 8, 64),
    (16, 64, 64),
    (1024, 8, 64),
    (1024, 64, 64),
    (1024, 64, 256),
)
OVERHEAD_BOUND = (16, 8, 64)  # where sde.md asks for >= 3x over default sdeint

MIN_SPEEDUP_VS_SDEINT = 3.0
MAX_RATIO_VS_HAND = 1.25

# A contender whose warm-up call takes longer than this many seconds gets fewer repetitions
# (at least MIN_SLOW_REPS), so that the full run stays within a few minutes on 2 CPU cores.
SLOW_CALL_BUDGET_S = 25.0
MIN_SLOW_REPS = 3

CONTENDERS = ("tsgen", "tsgen/ps", "sdeint", "sdeint/bi", "hand", "hand/graph")


# ---------------------------------------------------------------------------------------------
# The problem, written once and shared by every contender
# ---------------------------------------------------------------------------------------------


def make_mlp(dim: int, width: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(dim + 1, width),
        nn.SiLU(),
        nn.Linear(width, width),
        nn.SiLU(),
        nn.Linear(width, dim),
    )


def time_mlp(net: nn.Module, t: Tensor, x: Tensor) -> Tensor:
    """The drift: the MLP of ``(t, x)``, with the scalar time broadcast to a ``(B, 1)`` feature."""
    return net(torch.cat([t.expand(x.shape[0], 1), x], dim=1))


class MLPSDE(SDE):
    """The benchmark SDE for tsgen: MLP drift, constant (additive) diffusion."""

    noise_type = "additive"

    def __init__(self, net: nn.Module, sigma: float) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("sigma", torch.tensor(sigma, dtype=DTYPE))

    def drift(self, t: Tensor, x: Tensor) -> Tensor:
        return time_mlp(self.net, t, x)

    def diffusion(self, t: Tensor, x: Tensor) -> Tensor:
        return self.sigma


class TorchsdeMLP(nn.Module):
    """The same SDE written for torchsde (diagonal noise, Ito); counts drift evaluations."""

    noise_type = "diagonal"
    sde_type = "ito"

    def __init__(self, net: nn.Module, sigma: float) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("sigma", torch.tensor(sigma, dtype=DTYPE))
        self.nfe = 0

    def f(self, t: Tensor, y: Tensor) -> Tensor:
        self.nfe += 1
        return time_mlp(self.net, t, y)

    def g(self, t: Tensor, y: Tensor) -> Tensor:
        return self.sigma.expand_as(y)


def hand_loop(net: nn.Module, x0: Tensor, ts: Tensor, sigma: float, dt: float) -> Tensor:
    """Euler-Maruyama written by hand on a uniform grid ``ts`` (step ``dt``) already on the
    device."""
    sqrt_dt = math.sqrt(dt)
    x = x0
    for t in ts[:-1]:
        x = x + time_mlp(net, t, x) * dt + sigma * torch.randn_like(x) * sqrt_dt
    return x


def hand_loop_given(
    net: nn.Module, x0: Tensor, ts: Tensor, sigma: float, dt: float, dW: Tensor
) -> Tensor:
    """The hand loop on given Brownian increments ``dW`` (``(n_steps, B, d)``): a check only."""
    x = x0
    for t, dw in zip(ts[:-1], dW, strict=True):
        x = x + time_mlp(net, t, x) * dt + sigma * dw
    return x


def make_graph_hand_loop(
    net: nn.Module, x_like: Tensor, ts: Tensor, sigma: float, dt: float
) -> Callable[[Tensor], Tensor]:
    """The hand loop captured once in a CUDA graph; the returned function replays it.

    Static input and output buffers; the noise is drawn inside the graph from the default CUDA
    generator (each replay draws fresh numbers); warm-up runs on a side stream before capture.
    """
    sqrt_dt = math.sqrt(dt)
    steps = list(ts[:-1].unbind())
    static_x = x_like.clone()

    def body(x: Tensor) -> Tensor:
        for t in steps:
            x = x + time_mlp(net, t, x) * dt + sigma * torch.randn_like(x) * sqrt_dt
        return x

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            body(static_x)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = body(static_x)

    def replay(x0: Tensor) -> Tensor:
        static_x.copy_(x0)
        graph.replay()
        return static_out

    replay.graph = graph  # keep the graph (and its memory pool) alive with the function
    return replay


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------


@dataclass
class Contender:
    name: str
    run: Callable[[Tensor], Tensor]
    samples: list[float] = field(default_factory=list)
    reps: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else math.nan


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn: Callable[[Tensor], Tensor], x0: Tensor, device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    out = fn(x0)
    synchronize(device)
    elapsed = time.perf_counter() - start
    if not bool(torch.isfinite(out).all()):
        raise RuntimeError("a contender returned non-finite states")
    return elapsed


def spread_rounds(reps: int, rounds: int) -> set[int]:
    """``reps`` round indices spread evenly over ``range(rounds)``."""
    return {(j * rounds) // reps for j in range(reps)}


def bench_config(
    device: torch.device, batch: int, dim: int, width: int, reps: int, warmup: int
) -> dict:
    torch.manual_seed(SEED)
    net = make_mlp(dim, width).to(device=device, dtype=DTYPE).eval()
    x0 = torch.randn(batch, dim, device=device, dtype=DTYPE)
    grid = uniform_grid(0.0, T_END, N_STEPS, dtype=DTYPE, device=device)
    ts_sdeint = torch.tensor([0.0, T_END], dtype=DTYPE, device=device)
    sde = MLPSDE(net, SIGMA).to(device)
    tsde = TorchsdeMLP(net, SIGMA).to(device)

    def run_tsgen(x: Tensor) -> Tensor:
        return solve(sde, x, grid, "euler").x

    def run_tsgen_per_sample(x: Tensor) -> Tensor:
        return solve(sde, x, grid, "euler", noise=PerSampleNoise(seeds=range(batch))).x

    def run_sdeint(x: Tensor) -> Tensor:
        return torchsde.sdeint(tsde, x, ts_sdeint, method="euler", dt=DT)[-1]

    def run_sdeint_tuned(x: Tensor) -> Tensor:
        bm = torchsde.BrownianInterval(
            t0=0.0,
            t1=T_END,
            size=(batch, dim),
            dtype=DTYPE,
            device=device,
            dt=DT,
            cache_size=None,
        )
        return torchsde.sdeint(tsde, x, ts_sdeint, bm=bm, method="euler", dt=DT)[-1]

    def run_hand(x: Tensor) -> Tensor:
        return hand_loop(net, x, grid, SIGMA, DT)

    contenders = [
        Contender("tsgen", run_tsgen),
        Contender("tsgen/ps", run_tsgen_per_sample),
        Contender("sdeint", run_sdeint),
        Contender("sdeint/bi", run_sdeint_tuned),
        Contender("hand", run_hand),
    ]
    if device.type == "cuda":
        contenders.append(Contender("hand/graph", make_graph_hand_loop(net, x0, grid, SIGMA, DT)))

    # Same arithmetic: tsgen and the hand loop on shared increments agree; step counts match.
    dW = torch.randn(N_STEPS, batch, dim, device=device, dtype=DTYPE) * math.sqrt(DT)
    x_tsgen = solve(sde, x0, grid, "euler", noise=ExplicitIncrements(dW))
    x_hand = hand_loop_given(net, x0, grid, SIGMA, DT, dW)
    max_diff = float((x_tsgen.x - x_hand).abs().max())
    scale = float(x_hand.abs().max())
    tsde.nfe = 0
    run_sdeint(x0)
    nfe = {"tsgen": x_tsgen.nfe, "sdeint": tsde.nfe, "hand": N_STEPS}

    # Warm-up; its last call sets how many repetitions a slow contender gets.
    for c in contenders:
        last = math.nan
        for _ in range(warmup):
            last = time_call(c.run, x0, device)
        c.reps = reps
        if last * reps > SLOW_CALL_BUDGET_S:
            c.reps = max(min(MIN_SLOW_REPS, reps), int(SLOW_CALL_BUDGET_S // last))

    chosen = {c.name: spread_rounds(c.reps, reps) for c in contenders}
    for r in range(reps):
        shift = r % len(contenders)
        for c in contenders[shift:] + contenders[:shift]:
            if r in chosen[c.name]:
                c.samples.append(time_call(c.run, x0, device))

    med = {c.name: c.median for c in contenders}
    ratios = {
        "sdeint/tsgen": med["sdeint"] / med["tsgen"],
        "tsgen/hand": med["tsgen"] / med["hand"],
        "ps/tsgen": med["tsgen/ps"] / med["tsgen"],
        "bi/tsgen": med["sdeint/bi"] / med["tsgen"],
        "sdeint/hand": med["sdeint"] / med["hand"],
    }
    if "hand/graph" in med:
        ratios["tsgen/graph"] = med["tsgen"] / med["hand/graph"]
    return {
        "batch": batch,
        "dim": dim,
        "width": width,
        "median_s": med,
        "samples_s": {c.name: c.samples for c in contenders},
        "reps": {c.name: c.reps for c in contenders},
        "ratios": ratios,
        "nfe": nfe,
        "check_max_abs_diff_tsgen_vs_hand": max_diff,
        "check_scale": scale,
    }


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def machine_info(devices: list[torch.device]) -> dict:
    info = {
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchsde": getattr(torchsde, "__version__", "unknown"),
        "threads": torch.get_num_threads(),
        "commit": git_commit(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "grad_mode": "torch.inference_mode()",
        "load_average_at_start": load_average(),
    }
    if any(d.type == "cuda" for d in devices):
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


def format_table(device: torch.device, rows: list[dict]) -> str:
    names = [n for n in CONTENDERS if n in rows[0]["median_s"]]
    ratio_names = ["sdeint/tsgen", "tsgen/hand", "ps/tsgen", "bi/tsgen", "sdeint/hand"]
    if device.type == "cuda":
        ratio_names.append("tsgen/graph")
    head = f"{'batch':>5} {'d':>3} {'width':>5} | " + " ".join(f"{n:>10}" for n in names)
    head += " | " + " ".join(f"{n:>12}" for n in ratio_names)
    lines = [head, "-" * len(head)]
    for row in rows:
        line = f"{row['batch']:>5} {row['dim']:>3} {row['width']:>5} | "
        line += " ".join(f"{row['median_s'][n]:>10.4f}" for n in names)
        line += " | " + " ".join(f"{row['ratios'][n]:>12.2f}" for n in ratio_names)
        lines.append(line)
    return "\n".join(lines)


def target_lines(device: torch.device, rows: list[dict]) -> tuple[list[str], bool]:
    lines, ok = [], True

    def verdict(passed: bool) -> str:
        return "PASS" if passed else "FAIL"

    for row in rows:
        key = (row["batch"], row["dim"], row["width"])
        where = f"batch {row['batch']}, d {row['dim']}, width {row['width']}"
        if key == OVERHEAD_BOUND:
            value = row["ratios"]["sdeint/tsgen"]
            passed = value >= MIN_SPEEDUP_VS_SDEINT
            ok &= passed
            lines.append(
                f"{verdict(passed)} [{device.type}] default sdeint / tsgen >= "
                f"{MIN_SPEEDUP_VS_SDEINT:g} at {where}: {value:.2f}"
            )
    for row in rows:
        where = f"batch {row['batch']}, d {row['dim']}, width {row['width']}"
        value = row["ratios"]["tsgen/hand"]
        passed = value <= MAX_RATIO_VS_HAND
        ok &= passed
        lines.append(
            f"{verdict(passed)} [{device.type}] tsgen / hand loop <= {MAX_RATIO_VS_HAND:g} at "
            f"{where}: {value:.3f}"
        )
    if device.type == "cuda":
        for row in rows:
            where = f"batch {row['batch']}, d {row['dim']}, width {row['width']}"
            lines.append(
                f"REFERENCE [cuda] hand loop in a CUDA graph at {where}: "
                f"{row['median_s']['hand/graph']:.4f} s, tsgen / graph = "
                f"{row['ratios']['tsgen/graph']:.2f} (not a target: tsgen has no CUDA-graph mode)"
            )
    return lines, ok


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="1000-step Euler-Maruyama with an MLP drift: tsgen vs torchsde vs a hand loop."
    )
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda", "all"),
        default="all",
        help="where to run (default: all available, i.e. CPU and CUDA when present)",
    )
    parser.add_argument(
        "--reps",
        type=int,
        default=None,
        help="timed repetitions per contender (default 9 at batch 16, 5 at batch 1024; a "
        f"contender slower than {SLOW_CALL_BUDGET_S:g} s over all its repetitions gets fewer, "
        f"at least {MIN_SLOW_REPS})",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: one warm-up and one timed call each"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op CPU threads (default: torch's default). On a machine shared with "
        "other busy processes, fewer threads than cores avoids stalls of threads waiting for a "
        "descheduled sibling",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if args.reps is not None and args.reps < 1:
        parser.error("--reps must be a positive integer")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be a positive integer")
    return args


def select_devices(choice: str) -> list[torch.device]:
    has_cuda = torch.cuda.is_available()
    if choice == "cuda" and not has_cuda:
        raise SystemExit("--device cuda: CUDA is not available on this machine")
    if choice == "cpu" or (choice == "all" and not has_cuda):
        return [torch.device("cpu")]
    if choice == "cuda":
        return [torch.device("cuda")]
    return [torch.device("cpu"), torch.device("cuda")]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    devices = select_devices(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    info = machine_info(devices)
    print("SDE layer benchmark: 1000-step Euler-Maruyama, MLP drift, float32")
    for key, value in info.items():
        print(f"  {key}: {value}")
    print(
        "  contenders: tsgen = solve(..., 'euler') with GaussianNoise; tsgen/ps = with "
        "PerSampleNoise(seeds=range(batch)); sdeint = torchsde.sdeint default Brownian motion; "
        "sdeint/bi = with BrownianInterval(dt=1e-3, cache_size=None); hand = hand-written loop"
        + (
            "; hand/graph = hand loop replayed from a CUDA graph"
            if any(d.type == "cuda" for d in devices)
            else ""
        )
    )
    print("  table: median seconds per call, then ratios of medians")

    results: dict = {"machine": info, "n_steps": N_STEPS, "sigma": SIGMA, "devices": {}}
    all_ok = True
    for device in devices:
        warmup = 1 if args.quick else (1 if device.type == "cpu" else 3)
        print(f"\n== {device.type} ==", flush=True)
        rows = []
        with torch.inference_mode():
            for batch, dim, width in CONFIGS:
                if args.quick:
                    reps = 1
                elif args.reps is not None:
                    reps = args.reps
                else:
                    reps = 9 if batch <= 16 else 5
                row = bench_config(device, batch, dim, width, reps, warmup)
                rows.append(row)
                timed = ", ".join(f"{n} {row['median_s'][n]:.4f}" for n in row["median_s"])
                print(
                    f"  batch {batch}, d {dim}, width {width}: {timed}  "
                    f"[reps {row['reps']}; nfe {row['nfe']}; |tsgen - hand| on shared "
                    f"increments {row['check_max_abs_diff_tsgen_vs_hand']:.1e}]",
                    flush=True,
                )
        print()
        print(format_table(device, rows))
        lines, ok = target_lines(device, rows)
        all_ok &= ok
        print()
        print("\n".join(lines))
        if device.type == "cuda":
            print(
                "NOTE: the hand-loop-in-a-CUDA-graph figure is a reference only; tsgen has no "
                "CUDA-graph mode yet."
            )
        results["devices"][device.type] = {"rows": rows, "targets": lines}
    results["all_targets_pass"] = all_ok
    results["machine"]["load_average_at_end"] = load_average()
    print(f"\nload average at start {info['load_average_at_start']}, at end {load_average()}")
    cores = os.cpu_count() or 1
    if any(
        (load or [0.0])[0] > cores
        for load in (info["load_average_at_start"], results["machine"]["load_average_at_end"])
    ):
        print(
            "WARNING: the machine was busier than its core count during this run; the ratios "
            "are interleaved and fair, but rerun on a quiet machine before trusting the absolute "
            "figures" + (" (or with --threads 1)" if torch.get_num_threads() > 1 else "")
        )
    print(f"\nall targets: {'PASS' if all_ok else 'FAIL'}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
