import re

import pytest
import torch

from twinrun.record import checkpoint


def test_save_load_with_weights_only(tmp_path) -> None:
    path = checkpoint.save_checkpoint(tmp_path, 12, {"model": {"w": torch.ones(2)}, "position": {"epoch": 1}})
    assert path.name == "step-00000012.pt" and path.parent.name == "checkpoints"
    state = checkpoint.load_checkpoint(path)
    assert torch.equal(state["model"]["w"], torch.ones(2)) and state["position"] == {"epoch": 1}


def test_keep_last_prunes_and_a_run_dir_resolves_to_the_newest(tmp_path) -> None:
    for step in (1, 2, 3, 10):
        checkpoint.save_checkpoint(tmp_path, step, {"s": step}, keep_last=2)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "step-00000003.pt",
        "step-00000010.pt",
    ]
    assert checkpoint.resolve_checkpoint(tmp_path).name == "step-00000010.pt"
    assert checkpoint.load_checkpoint(tmp_path)["s"] == 10


@pytest.mark.parametrize("keep_last", [-1, 0, 1.5, True])
def test_keep_last_below_one_is_refused_and_deletes_nothing(tmp_path, keep_last) -> None:
    checkpoint.save_checkpoint(tmp_path, 1, {"s": 1}, keep_last=1)  # control: 1 keeps the newest
    with pytest.raises(ValueError, match="keep_last"):
        checkpoint.save_checkpoint(tmp_path, 2, {"s": 2}, keep_last=keep_last)
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step-00000001.pt"]


def test_unusable_checkpoints_are_one_line_errors(tmp_path) -> None:
    with pytest.raises(checkpoint.CheckpointError, match="does not exist"):
        checkpoint.load_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(checkpoint.CheckpointError, match="holds no checkpoints"):
        checkpoint.load_checkpoint(tmp_path)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(checkpoint.CheckpointError, match="cannot load") as error:
        checkpoint.load_checkpoint(tmp_path / "junk.pt")
    assert "\n" not in str(error.value)
    (tmp_path / "empty.pt").write_bytes(b"")  # torch raises with an empty message here
    with pytest.raises(checkpoint.CheckpointError, match=r"cannot load .*empty\.pt: [A-Za-z]"):
        checkpoint.load_checkpoint(tmp_path / "empty.pt")
    torch.save({"w": torch.ones(1)}, tmp_path / "foreign.pt")
    with pytest.raises(checkpoint.CheckpointError, match="not a twinrun checkpoint"):
        checkpoint.load_checkpoint(tmp_path / "foreign.pt")


def test_pickled_code_is_refused(tmp_path) -> None:
    torch.save(torch.nn.Linear(1, 1), tmp_path / "module.pt")
    with pytest.raises(checkpoint.CheckpointError, match="cannot load"):
        checkpoint.load_checkpoint(tmp_path / "module.pt")


GOOD_POSITION = {"epoch": 2, "batch": 3, "step": 7, "epoch_loss_sum": 1.5, "epoch_samples": 96}


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"epoch": "a"}, "position.epoch='a' is not an integer >= 1"),
        ({"batch": -5}, "position.batch=-5 is not an integer >= 0"),
        ({"step": 2.5}, "position.step=2.5 is not an integer >= 0"),
        ({"epoch": 0}, "position.epoch=0 is not an integer >= 1"),
        ({"epoch_samples": True}, "position.epoch_samples=True is not an integer >= 0"),
        ({"epoch_loss_sum": "x"}, "position.epoch_loss_sum='x' is not a number"),
    ],
)
def test_crafted_positions_are_one_line_errors(tmp_path, change, said) -> None:
    path = checkpoint.save_checkpoint(tmp_path, 1, {"position": {**GOOD_POSITION, **change}, "metrics": []})
    with pytest.raises(checkpoint.CheckpointError, match=f"{path} is not usable: {re.escape(said)}") as error:
        checkpoint.load_checkpoint(path)
    assert "\n" not in str(error.value)


def test_a_twinrun_position_and_metrics_load(tmp_path) -> None:  # control for the crafted ones
    metrics = [{"epoch": 1, "train_loss": "0x1p+0"}]
    path = checkpoint.save_checkpoint(tmp_path, 1, {"position": GOOD_POSITION, "metrics": metrics})
    assert checkpoint.load_checkpoint(path)["position"] == GOOD_POSITION
    checkpoint.save_checkpoint(tmp_path, 2, {"position": GOOD_POSITION, "metrics": "abc"})
    with pytest.raises(checkpoint.CheckpointError, match="metrics is not a list of objects"):
        checkpoint.load_checkpoint(tmp_path)
