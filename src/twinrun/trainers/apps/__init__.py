"""Thin ``@hydra.main`` shells over the pure ``train(cfg, run_dir)`` functions."""
