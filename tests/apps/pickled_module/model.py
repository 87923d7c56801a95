"""The app's own model: its class is what the pickled trained_model.pt names (model.AutoEncoder)."""

from torch import nn


class AutoEncoder(nn.Module):
    def __init__(self, features: int, hidden: int, latent: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, latent))
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, features))
        self.features = features

    def forward(self, x):
        return self.decoder(self.encoder(x))
