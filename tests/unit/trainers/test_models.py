import torch

from twinrun.trainers.models.cnn import CNNClassifier
from twinrun.trainers.models.vae import VAE, vae_loss


def test_vae_handles_a_partial_batch() -> None:
    model = VAE()
    x = torch.rand(3, 1, 28, 28)  # the course script's view(batch_size, ...) crashed here
    recon, mu, logvar = model(x)
    assert recon.shape == (3, 784) and mu.shape == logvar.shape == (3, 20)
    assert vae_loss(recon, x, mu, logvar).ndim == 0


def test_vae_noise_is_standard_normal_in_training() -> None:
    model = VAE().train()
    mu, logvar = torch.zeros(20000, 20), torch.zeros(20000, 20)
    torch.manual_seed(0)
    z = model.reparameterize(mu, logvar)
    assert abs(z.mean().item()) < 0.01 and abs(z.std().item() - 1) < 0.01
    assert (z < 0).float().mean().item() > 0.45  # a uniform draw (rand_like) would never be negative


def test_vae_evaluation_draws_no_random_numbers() -> None:
    model, x = VAE().eval(), torch.rand(4, 784)
    before = torch.get_rng_state()
    model(x)
    assert torch.equal(before, torch.get_rng_state())
    model.train()(x)
    assert not torch.equal(before, torch.get_rng_state())  # negative control


def test_cnn_shapes_buffers_and_dropout() -> None:
    model = CNNClassifier(channels=(8, 16), hidden=32)
    assert model(torch.rand(5, 1, 28, 28)).shape == (5, 10)
    buffers = [name for name, _ in model.named_buffers()]
    assert any(name.endswith("running_mean") for name in buffers)
    assert any(name.endswith("num_batches_tracked") for name in buffers)
    x = torch.rand(2, 1, 28, 28)
    model.train()
    torch.manual_seed(1)
    a = model(x)
    torch.manual_seed(2)
    assert not torch.equal(a, model(x))  # dropout draws from the global RNG
    torch.manual_seed(1)
    assert torch.equal(a, model(x))


def test_cnn_without_batch_norm_has_no_running_stats() -> None:
    model = CNNClassifier(batch_norm=False)
    assert not list(model.named_buffers())
