"""The MNIST VAE of the course exercise, with its two bugs fixed.

Fixed: the input is flattened with ``view(-1, ...)`` so a partial last batch works, and the
reparameterisation noise is drawn from a standard normal (``randn_like``), not a uniform.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from twinrun.trainers.models import check_sizes


class VAE(nn.Module):
    """Fully connected VAE: 784 -> hidden -> (mu, logvar) in latent_dim -> hidden -> 784."""

    def __init__(self, input_dim: int = 784, hidden_dim: int = 400, latent_dim: int = 20) -> None:
        check_sizes(input_dim=input_dim, hidden_dim=hidden_dim, latent_dim=latent_dim)
        super().__init__()
        self.input_dim = input_dim
        self.latent_dim = latent_dim
        self.encoder = nn.Linear(input_dim, hidden_dim)
        self.to_mu = nn.Linear(hidden_dim, latent_dim)
        self.to_logvar = nn.Linear(hidden_dim, latent_dim)
        self.decoder_hidden = nn.Linear(latent_dim, hidden_dim)
        self.decoder_out = nn.Linear(hidden_dim, input_dim)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.relu(self.encoder(x.view(-1, self.input_dim)))  # [B, hidden]
        return self.to_mu(h), self.to_logvar(h)  # [B, latent] each

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return mu  # evaluation draws no noise, so it never moves the RNG stream
        std = torch.exp(0.5 * logvar)
        return mu + torch.randn_like(std) * std

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder_out(F.relu(self.decoder_hidden(z))))  # [B, 784] in (0, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar


def vae_loss(recon: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Negative ELBO summed over the batch: binary cross-entropy plus KL divergence to N(0, I)."""
    bce = F.binary_cross_entropy(recon, x.view(recon.shape), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld
