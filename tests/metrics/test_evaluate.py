"""``tsgen.metrics.evaluate`` and its ``Report``: scaling, metric selection, repeats that extend,
JSON round trip, the table, the pictures and precise errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import tsgen
from tsgen.metrics import METRICS, PAPER_METRICS, Report, evaluate, minmax_scale

# Sets smaller than the protocol's batch of 128 are fine here.
pytestmark = pytest.mark.filterwarnings("ignore:.*not comparable with the published protocol")

# A few iterations each: these tests check the plumbing, the metrics have their own tests.
QUICK = {"context_fid": 3, "discriminative": 5, "predictive": 5}


def _windows(n: int, length: int = 12, channels: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    steps = np.arange(length)[None, :, None]
    freq = rng.uniform(0.1, 0.5, (n, 1, channels))
    phase = rng.uniform(0, 2 * np.pi, (n, 1, channels))
    return 10.0 + 5.0 * np.sin(freq * steps + phase)  # original units, not [0, 1]


@pytest.fixture(scope="module")
def report() -> Report:
    real, fake = _windows(48), _windows(40, seed=1)
    return evaluate(real, fake, "all", repeats=2, iterations=QUICK, device="cpu")


def test_all_metrics_in_order_with_repeats(report: Report) -> None:
    assert list(report.results) == list(METRICS)
    for name in PAPER_METRICS:
        assert len(report[name].values) == 2
        assert report[name].half_width is not None
    assert len(report["mmd"].values) == 1 and report["mmd"].half_width is None
    assert all(math.isfinite(v) for r in report.results.values() for v in r.values)
    assert (report.n_real, report.n_fake, report.window, report.n_features) == (48, 40, 12, 3)
    assert report.device == "cpu"


def test_table_lists_every_metric(report: Report) -> None:
    table = str(report)
    for result in report.results.values():
        assert result.label in table
        assert result.formatted() in table
    assert "real: 48 windows, fake: 40 windows of 12 x 3" in table


def test_json_round_trip(report: Report, tmp_path: Path) -> None:
    path = report.save(tmp_path / "sub" / "eval.json")
    data = json.loads(path.read_text())
    assert data["results"]["discriminative"]["values"] == list(report["discriminative"].values)
    assert data["results"]["predictive"]["mean"] == pytest.approx(report["predictive"].mean)
    loaded = Report.load(path)
    assert loaded == report  # the windows are not compared (nor saved)
    assert loaded.real is None
    with pytest.raises(ValueError, match="holds no windows"):
        loaded.plot(tmp_path / "pictures")
    (tmp_path / "other.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(ValueError, match="not a tsgen evaluation report"):
        Report.load(tmp_path / "other.json")


def test_scaling_by_real_minmax() -> None:
    real = torch.tensor([[[0.0, 5.0], [2.0, 5.0]]])  # feature 1 constant: only shifted
    fake = torch.tensor([[[4.0, 6.0], [1.0, 5.0]]])
    real_s, fake_s = minmax_scale(real, fake)
    assert torch.equal(real_s, torch.tensor([[[0.0, 0.0], [1.0, 0.0]]]))
    assert torch.equal(fake_s, torch.tensor([[[2.0, 1.0], [0.5, 0.0]]]))
    real, fake = torch.from_numpy(_windows(20)), torch.from_numpy(_windows(20, seed=4))
    real_s, fake_s = minmax_scale(real, fake)
    assert real_s.amin(dim=(0, 1)).tolist() == [0.0] * 3
    assert real_s.amax(dim=(0, 1)).tolist() == [1.0] * 3
    scaled = evaluate(real_s, fake_s, ["correlational", "acf"], scaled=True, repeats=2)
    rescaled = evaluate(real, fake, ["correlational", "acf"], repeats=2)
    assert scaled["acf"].values == pytest.approx(rescaled["acf"].values, rel=1e-5)
    assert "already in [0, 1]" in scaled.scaling and "min-max" in rescaled.scaling


def test_repeats_extend_and_inputs_may_be_numpy_or_torch() -> None:
    real, fake = _windows(30), _windows(30, seed=2)
    names = ["correlational", "discriminative"]
    five = evaluate(real, fake, names, repeats=3, iterations={"discriminative": 4}, device="cpu")
    two = evaluate(
        torch.from_numpy(real), fake, names, repeats=2, iterations={"discriminative": 4},
        device="cpu",
    )  # fmt: skip
    for name in names:
        assert two[name].values == pytest.approx(five[name].values[:2], rel=1e-4, abs=1e-6)


def test_univariate_data() -> None:
    real, fake = _windows(30, channels=1), _windows(30, channels=1, seed=3)
    report = evaluate(real, fake, "paper", repeats=2, iterations=QUICK, device="cpu")
    assert "correlational" not in report.results
    assert report.metadata["skipped"] == {"correlational": "needs C >= 2 features"}
    assert "univariate variant" in report["predictive"].note
    assert "univariate variant" in str(report)


def test_reexported_as_tsgen_evaluate() -> None:
    assert tsgen.evaluate is evaluate


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"metrics": "fid"}, ValueError, "metrics must be 'paper', 'all' or a non-empty list"),
        ({"metrics": []}, ValueError, "non-empty list"),
        ({"repeats": 1}, ValueError, "repeats must be an integer >= 2"),
        ({"seed": -1}, ValueError, "seed must be a non-negative integer"),
        ({"iterations": {"correlational": 3}}, ValueError, "only be set for the trained"),
        ({"device": "tpu:9"}, ValueError, "device must be"),
    ],
)
def test_argument_errors(kwargs: dict, error: type, match: str) -> None:
    real = _windows(10)
    with pytest.raises(error, match=match):
        evaluate(real, real, **kwargs)


def test_input_errors() -> None:
    with pytest.raises(ValueError, match="same window length L and number of features C"):
        evaluate(_windows(10), _windows(10, channels=2), "acf")
    with pytest.raises(TypeError, match="real must be a NumPy array or torch"):
        evaluate([[1.0]], _windows(10), "acf")
    with pytest.raises(ValueError, match="fake must be finite"):
        evaluate(_windows(10), np.full((10, 12, 3), np.nan), "acf")


def test_plots_written(report: Report, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    written = report.plot(tmp_path / "pictures", max_points=30)
    names = {p.name for p in written}
    assert {"samples.png", "pca.png", "acf.png", "marginals.png"} <= names
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_metric_groups_expand_inside_lists() -> None:
    from tsgen.metrics.evaluate import _metric_names

    assert _metric_names(["paper", "acf", "predictive"]) == [*PAPER_METRICS, "acf"]
    assert _metric_names("all") == list(METRICS)


def test_precision_is_recorded(report: Report) -> None:
    assert report.metadata["precision"] == "float32"


def test_a_collapsed_feature_skips_only_the_correlational_score() -> None:
    real, fake = _windows(30), _windows(30, seed=3)
    fake[..., 2] = 7.0  # one value everywhere: the pooled correlation is undefined
    names = ["correlational", "marginal_wasserstein"]
    report = evaluate(real, fake, names, repeats=2, device="cpu")
    assert list(report.results) == ["marginal_wasserstein"]
    why = "undefined: fake features [2] constant over every window"
    assert report.metadata["skipped"] == {"correlational": why}
    assert f"correlational skipped: {why}" in str(report)


def test_iterations_are_recorded() -> None:
    real, fake = _windows(30), _windows(30, seed=3)
    report = evaluate(real, fake, ["discriminative"], repeats=2, iterations={"discriminative": 4},
                      device="cpu")  # fmt: skip
    note = "4 training iterations, set (the protocol's: 2000)"
    assert report["discriminative"].note == note
    assert note in str(report)


def test_a_large_offset_keeps_its_variation() -> None:
    """The sets are scaled in float64: in float32, 1e6 + 0.01 sin(.) would round to 1e6."""
    real, fake = _windows(20), _windows(20, seed=3)
    offset = 1e6 + 0.002 * (real - 10.0)  # amplitude 0.01 on an offset of 1e6
    report = evaluate(offset, 1e6 + 0.002 * (fake - 10.0), ["acf"], repeats=2, device="cpu")
    reference = evaluate(real, fake, ["acf"], repeats=2, device="cpu")
    assert report.real.dtype == np.float32 and float(report.real.std()) > 0.2
    np.testing.assert_allclose(report.real, reference.real, atol=1e-4)
    assert report["acf"].values == pytest.approx(reference["acf"].values, abs=1e-4)


def test_scaled_real_windows_must_lie_in_the_unit_interval() -> None:
    real = _windows(20)
    with pytest.raises(ValueError, match=r"scaled=True says real is already in \[0, 1\]"):
        evaluate(real, real, ["acf"], repeats=2, scaled=True, device="cpu")
    unit, _ = minmax_scale(torch.from_numpy(real), torch.from_numpy(real))
    evaluate(unit, unit, ["acf"], repeats=2, scaled=True, device="cpu")


def test_trained_metrics_run_in_float32_unless_tf32_is_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """cuDNN allows TF32 by default; the trained metrics turn it off for their run, called
    directly or through ``evaluate``, and put the settings back."""
    from tsgen.metrics import discriminative

    seen: list[tuple[bool, bool]] = []

    def spy(*args, **kwargs):
        seen.append((torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32))
        raise RuntimeError("stop")

    monkeypatch.setattr(discriminative, "_run_discriminative", spy)
    before = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    x = torch.rand(20, 6, 2)
    for tf32 in (False, True):
        with pytest.raises(RuntimeError, match="stop"):
            discriminative.discriminative_score(x, x, device="cpu", tf32=tf32)
    with pytest.raises(RuntimeError, match="stop"):
        evaluate(x, x, ["discriminative"], repeats=2, device="cpu", tf32=True)
    assert seen == [(False, False), (True, True), (True, True)]
    assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == before
