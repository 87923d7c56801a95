"""The two reference trainers (VAE and CNN classifier on MNIST): one client of :mod:`twinrun.record`."""
