"""Synthetic regression data drawn when the DataModule is set up (so it follows the global seed)."""

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset


class SyntheticDataModule(L.LightningDataModule):
    def __init__(self, samples: int, features: int, batch_size: int) -> None:
        super().__init__()
        self.samples, self.features, self.batch_size = samples, features, batch_size

    def setup(self, stage: str | None = None) -> None:
        x = torch.randn(self.samples, self.features)
        y = x.sum(dim=1) + 0.1 * torch.randn(self.samples)
        split = self.samples * 3 // 4
        self.train_set = TensorDataset(x[:split], y[:split])
        self.val_set = TensorDataset(x[split:], y[split:])

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.batch_size)
