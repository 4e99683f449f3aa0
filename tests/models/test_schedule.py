"""Tests for tsgen/models/schedule.py."""

from __future__ import annotations

import pytest
import torch

from tsgen.models.schedule import WarmupReduceOnPlateau


def _schedule(**kwargs):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    options = {"lr": 8e-4, "warmup_lr": 1e-5, "warmup_steps": 4, "patience": 2, "threshold": 0.1}
    return optimizer, WarmupReduceOnPlateau(optimizer, **{**options, **kwargs})


def test_warmup_is_linear_from_warmup_lr_to_lr():
    optimizer, schedule = _schedule()
    rates = [optimizer.param_groups[0]["lr"]]
    for _ in range(4):
        schedule.step(1.0)
        rates.append(optimizer.param_groups[0]["lr"])
    expected = [1e-5 + (8e-4 - 1e-5) * k / 4 for k in range(5)]
    assert rates == pytest.approx(expected)


def test_plateau_halves_after_patience_and_respects_the_floor():
    optimizer, schedule = _schedule(warmup_steps=0, min_lr=3e-4)
    assert optimizer.param_groups[0]["lr"] == 8e-4
    schedule.step(1.0)  # best = 1.0
    for _ in range(2):
        schedule.step(0.95)  # not 10% better: bad steps 1, 2
    assert schedule.lr == 8e-4
    schedule.step(0.95)  # third bad step > patience 2: reduce
    assert schedule.lr == 4e-4
    for _ in range(3):
        schedule.step(0.99)
    assert schedule.lr == 3e-4  # floored
    schedule.step(0.5)  # a real improvement resets the count
    assert schedule.bad_steps == 0


def test_state_dict_round_trip_continues_identically():
    _, first = _schedule()
    losses = [1.0, 0.9, 0.95, 0.7, 0.72, 0.71, 0.73, 0.74, 0.6]
    for loss in losses[:5]:
        first.step(loss)
    optimizer, second = _schedule()
    second.load_state_dict(first.state_dict())
    assert optimizer.param_groups[0]["lr"] == first.lr
    for loss in losses[5:]:
        first.step(loss)
        second.step(loss)
        assert first.lr == second.lr


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": 0.0}, "lr must be a positive"),
        ({"factor": 1.0}, "factor must lie in"),
        ({"threshold": 1.0}, "threshold must lie in"),
        ({"warmup_steps": -1}, "warmup_steps and patience"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _schedule(**kwargs)
