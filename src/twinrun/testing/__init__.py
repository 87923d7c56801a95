"""What users' test suites import: the pytest plugin, hypothesis strategies, Hydra compose helpers."""
