"""A tiny LightningModule and LightningDataModule for exercising the CLI end to end.

Importable as ``cli_toy`` (``tests/`` is on ``sys.path`` through the pytest configuration), so the
CLI can build them from class paths ``cli_toy.ToyModel`` and ``cli_toy.ToyData``.
"""

from __future__ import annotations

import torch
from lightning.pytorch import LightningDataModule, LightningModule
from torch.utils.data import DataLoader, TensorDataset


class ToyModel(LightningModule):
    """Linear regression trained with SGD; logs ``train_loss`` every step."""

    def __init__(self, features: int = 3, lr: float = 0.1) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.linear = torch.nn.Linear(features, 1)

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.linear(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


class ToyData(LightningDataModule):
    """A fixed random regression problem ``y = x @ w + noise``."""

    def __init__(self, features: int = 3, size: int = 32, batch_size: int = 8) -> None:
        super().__init__()
        self.features = features
        self.size = size
        self.batch_size = batch_size

    def setup(self, stage: str) -> None:
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(self.size, self.features, generator=generator)
        w = torch.randn(self.features, 1, generator=generator)
        y = x @ w + 0.1 * torch.randn(self.size, 1, generator=generator)
        self.train_set = TensorDataset(x, y)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)
