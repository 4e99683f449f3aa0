"""Smoke tests of the benchmark scripts in scripts/: they run, and report what they claim."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
BENCH_TIMEBRIDGE = SCRIPTS / "bench_timebridge.py"


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_timebridge_quick(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    start = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            str(BENCH_TIMEBRIDGE),
            "--quick",
            "--threads",
            "1",
            "--device",
            "cpu",
            "--bare-loop",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "total wall time" in result.stdout
    results = json.loads(out.read_text())
    assert [row["mode"] for row in results["training"]] == ["lightning", "bare"]
    for row in results["training"]:
        assert row["timed_steps"] == 2
        assert row["steps_per_s"] > 0
        assert row["windows_per_s"] == pytest.approx(128 * row["steps_per_s"])
    nfe = {row["label"]: (row["nfe"], row["network_calls"]) for row in results["generation"]}
    # The reference's sampler: 40 hybrid intervals = 119 network evaluations; ancestral: 40.
    assert nfe == {
        "hybrid/sample": (119, 119),
        "hybrid/gaussian": (119, 119),
        "ancestral/sample": (40, 40),
    }
    assert results["parameters"] > 0
    # A smoke test must stay cheap (about 8 s on 2 shared cores); a loaded machine gets slack.
    assert elapsed < 120


def test_bench_timebridge_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(SCRIPTS))  # as when the script runs: its helpers import
    bench = _load(BENCH_TIMEBRIDGE)
    assert bench.parse_batches("2001, 64") == [2001, 64]
    for bad in (["--reps", "0"], ["--gen-batches", "0"], ["--gen-batches", "a"]):
        with pytest.raises(SystemExit):
            bench.parse_args(bad)
    assert bench.step_boundaries(3, 20, 2) == [3, 13, 23]
    assert bench.step_boundaries(0, 2, 5) == [0, 1, 2]


def test_bench_metrics_quick(tmp_path: Path) -> None:
    out = tmp_path / "bench_metrics.json"
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPTS / "bench_metrics.py"),
            "--quick",
            "--threads",
            "1",
            "--device",
            "cpu",
            "--repeats",
            "2",
            "--sequential",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "total wall time" in result.stdout
    record = json.loads(out.read_text())
    assert record["iterations"] == {"context_fid": 12, "discriminative": 40, "predictive": 100}
    batched, sequential = record["rows"]
    assert (batched["mode"], sequential["mode"]) == ("batched", "one at a time")
    for name in ("context_fid", "discriminative", "predictive"):
        assert batched[name] > 0 and sequential[name] > 0
    paper = {"context_fid", "correlational", "discriminative", "predictive"}
    assert set(batched["values"]) == paper
