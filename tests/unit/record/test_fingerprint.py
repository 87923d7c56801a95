import json

import torch

from twinrun.record.fingerprint import environment_fingerprint


def test_fingerprint_records_what_decides_bit_identity() -> None:
    env = environment_fingerprint(torch.device("cpu"), {"name": "synthetic", "train_sha256": "ab"})
    for key in (
        "python",
        "torch",
        "torchvision",
        "hydra",
        "numpy",
        "device",
        "cpu",
        "threads",
        "determinism",
        "env_vars",
        "dataset",
        "git",
        "cuda",
        "cudnn",
    ):
        assert key in env, key
    assert env["torch"] == torch.__version__ and env["device"] == "cpu" and env["cuda"] is None
    assert env["threads"]["intra_op"] == torch.get_num_threads()
    assert "CUBLAS_WORKSPACE_CONFIG" in env["env_vars"]
    assert env["git"] == {"commit": None, "dirty": None}  # tests run in an empty temp dir, not a repo
    json.dumps(env)
