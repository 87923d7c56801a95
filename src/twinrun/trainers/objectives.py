"""What differs between the two trainers: the loss, the evaluation and the pictures.

The training loop (``training.py``) is shared; an objective plugs the model-specific parts into it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn
from torch.nn import functional as F

from twinrun.record.determinism import make_generator
from twinrun.trainers.data import Datasets, Split
from twinrun.trainers.images import (
    save_confusion_matrix,
    save_digit_grid,
    save_labelled_grid,
    save_reconstructions,
)
from twinrun.trainers.models.cnn import CNNClassifier
from twinrun.trainers.models.vae import VAE, vae_loss


class Objective(Protocol):
    model_type: type[nn.Module]

    def loss(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The scalar to minimise for one batch, summed over the batch's samples."""

    def evaluate(
        self, model: nn.Module, split: Split, batch_size: int, device: torch.device
    ) -> dict[str, float]:
        """Metrics on ``split`` (model in eval mode, no RNG drawn)."""

    def render_images(
        self, model: nn.Module, data: Datasets, images_dir: Path, seed: int, device: torch.device
    ) -> None:
        """Write pictures into ``images_dir``."""


def _eval_batches(split: Split, batch_size: int, device: torch.device):
    for start in range(0, len(split), batch_size):
        yield (
            split.images[start : start + batch_size].to(device),
            split.labels[start : start + batch_size].to(device),
        )


class VAEObjective:
    """Negative ELBO; pictures of originals, reconstructions and samples from the prior."""

    model_type = VAE

    def loss(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        recon, mu, logvar = model(images)
        return vae_loss(recon, images, mu, logvar)

    @torch.no_grad()
    def evaluate(
        self, model: nn.Module, split: Split, batch_size: int, device: torch.device
    ) -> dict[str, float]:
        total = 0.0
        for images, labels in _eval_batches(split, batch_size, device):
            total += self.loss(model, images, labels).item()
        return {"test_loss": total / len(split)}

    @torch.no_grad()
    def render_images(
        self, model: Any, data: Datasets, images_dir: Path, seed: int, device: torch.device
    ) -> None:
        originals = data.test.images[:64].to(device)
        recon, _, _ = model(originals)
        save_digit_grid(originals, images_dir / "originals.png")
        save_reconstructions(originals, recon, images_dir / "reconstructions.png")
        # A private generator: drawing samples never moves the run's global RNG stream.
        z = torch.randn(64, model.latent_dim, generator=make_generator(seed, "samples")).to(device)
        save_digit_grid(model.decode(z), images_dir / "samples.png")


class ClassifierObjective:
    """Cross-entropy; accuracy; a confusion matrix and the misclassified digits."""

    model_type = CNNClassifier

    def loss(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(images), labels, reduction="sum")

    @torch.no_grad()
    def predict(
        self, model: nn.Module, split: Split, batch_size: int, device: torch.device
    ) -> tuple[float, torch.Tensor]:
        total, predictions = 0.0, []
        for images, labels in _eval_batches(split, batch_size, device):
            logits = model(images)
            total += F.cross_entropy(logits, labels, reduction="sum").item()
            predictions.append(logits.argmax(dim=1).cpu())
        return total, torch.cat(predictions)

    def evaluate(
        self, model: nn.Module, split: Split, batch_size: int, device: torch.device
    ) -> dict[str, float]:
        total, predicted = self.predict(model, split, batch_size, device)
        correct = (predicted == split.labels).sum().item()
        return {"test_loss": total / len(split), "test_accuracy": correct / len(split)}

    def render_images(
        self, model: nn.Module, data: Datasets, images_dir: Path, seed: int, device: torch.device
    ) -> None:
        _, predicted = self.predict(model, data.test, 512, device)
        truth = data.test.labels
        matrix = torch.zeros(10, 10, dtype=torch.int64)
        matrix.index_put_((truth, predicted), torch.ones_like(truth), accumulate=True)
        accuracy = (predicted == truth).float().mean().item()
        save_confusion_matrix(matrix, images_dir / "confusion_matrix.png", f"test accuracy {accuracy:.2%}")
        wrong = torch.nonzero(predicted != truth).flatten()[:64]
        captions = [f"true {int(truth[i])}, predicted {int(predicted[i])}" for i in wrong]
        save_labelled_grid(data.test.images[wrong], captions, images_dir / "misclassified.png")
