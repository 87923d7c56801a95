"""``twinrun.verify.trust``: recorded overrides that would run code the run directory chooses are refused."""

from __future__ import annotations

import pytest

from twinrun.errors import TwinrunError
from twinrun.verify.trust import refuse_untrusted_overrides, untrusted_reason

# The exploit, and every other way found to make a replay call what the run directory names.
REFUSED = [
    "model._target_=torch.load",
    "+model.f=${oc.env:HOME}",
    "++model.encoder._target_=os.system",
    "~model._target_",
    "+model._partial_=true",
    "model._args_=[rm]",
    "model._recursive_=false",
    "model._convert_=all",
    "model={_target_: torch.load, f: x}",
    "model={inner: {_target_: os.system}}",
    "hydra.job.env_set.LD_PRELOAD=/tmp/x.so",
    "+hydra.callbacks.x._target_=os.system",
    "hydra/launcher=joblib",
    "+hydra/sweeper=basic",
    "~hydra.run",
    "x@hydra.job.env_set=1",
    "seed='${now:%s}'",
    "data.root=${oc.env:HOME}/data",
    "data.root='a ${oc.decode:1}'",
    r"data.root=\\\${oc.env:X}",  # Hydra unescapes to \\${..}: an escaped backslash, then a live resolver
    "data.root=${a.${b}}",
    "data.root=[1, '${oc.env:X}']",
    "data.root=choice(1,'${oc.env:X}')",
    "data.root=${",
    "not an override",
    "--config-dir=/tmp/elsewhere",  # would make the app load configs (with any _target_) from there
    "-cd",
    "--multirun",
]
ALLOWED = [
    "seed=3",
    "data=synthetic",
    "data.train_samples=256",
    "training.epochs=1",
    "+model.f=${training.resume_from}",
    "data.root=${.other}/x",
    "data.root=${a[0]}",
    r"data.root=\${oc.env:X}",  # escaped: the literal text, no resolver runs
    "optimizer.lr=0.01",
    "+extra={a: 1, b: [x, y]}",
    "data.root='a $ b'",
    "model.target=x",
]


@pytest.mark.parametrize("override", REFUSED)
def test_code_choosing_override_is_refused_with_one_line(override: str) -> None:
    assert untrusted_reason(override) is not None
    with pytest.raises(TwinrunError) as raised:
        refuse_untrusted_overrides(["seed=3", override], trusted=False, source="runs/A")
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("runs/A: ")
    assert repr(override) in message
    assert "--trust-run-dirs" in message


@pytest.mark.parametrize("override", ALLOWED)
def test_plain_data_override_is_allowed(override: str) -> None:
    # Negative control for the refusals above: same function, plain data passes.
    assert untrusted_reason(override) is None
    refuse_untrusted_overrides([override], trusted=False, source="runs/A")


@pytest.mark.parametrize("override", REFUSED[:3])
def test_trusted_run_dirs_allow_everything(override: str) -> None:
    refuse_untrusted_overrides([override], trusted=True, source="runs/A")


def test_long_override_is_shortened_and_stays_one_line() -> None:
    override = "model._target_=" + "x" * 5000 + "\n"
    with pytest.raises(TwinrunError) as raised:
        refuse_untrusted_overrides([override], trusted=False, source="r")
    assert len(str(raised.value)) < 400
    assert "\n" not in str(raised.value)


def test_non_string_override_is_refused() -> None:
    with pytest.raises(TwinrunError):
        refuse_untrusted_overrides([3], trusted=False, source="r")  # type: ignore[list-item]
