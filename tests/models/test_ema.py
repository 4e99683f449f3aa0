"""Tests for tsgen/models/ema.py."""

from __future__ import annotations

import pytest
import torch

from tsgen.models.ema import EMA


def test_update_is_the_exponential_average():
    network = torch.nn.Linear(3, 2)
    ema = EMA(network, decay=0.9)
    start = network.weight.detach().clone()
    with torch.no_grad():
        network.weight.add_(1.0)
    ema.update(network)
    torch.testing.assert_close(ema.average.weight, 0.9 * start + 0.1 * (start + 1.0))
    assert not any(p.requires_grad for p in ema.average.parameters())


def test_average_is_saved_with_its_owner():
    network = torch.nn.Linear(2, 2)
    keys = EMA(network).state_dict().keys()
    assert {"average.weight", "average.bias"} <= set(keys)


def test_decay_outside_unit_interval_is_refused():
    with pytest.raises(ValueError, match="decay must lie in"):
        EMA(torch.nn.Linear(1, 1), decay=1.0)
