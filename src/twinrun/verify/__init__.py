"""Running a Hydra app several times in fresh processes (twins, sweeps, DDP) and comparing the runs."""
