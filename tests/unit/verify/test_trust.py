"""Recorded overrides that could choose code are refused in a replay (``twinrun audit``, ``explain``)."""

from __future__ import annotations

import pytest

from twinrun.errors import TwinrunError
from twinrun.verify.trust import refuse_untrusted_overrides

PLAIN = [
    "seed=3",
    "data=synthetic",
    "training.epochs=2",
    "+extra.lr=0.1",
    "~scheduler",
    "optimizer.lr=${base_lr}",
    "name=a_${data.name}_b",
    "path=/tmp/x y",
    r"text=\${not.an.interpolation:x}",
]
UNTRUSTED = [
    "optimizer._target_=os.system",
    "+model._partial_=true",
    "+cb._args_=[rm]",
    "hydra.callbacks.x._target_=builtins.open",
    "+hydra.searchpath=[file:///tmp]",
    "hydra/launcher=joblib",
    "seed=${oc.env:SEED}",
    "x=${now:%H}",
    "x=${a.${b}}",
    "model={_target_: os.system}",
]


@pytest.mark.parametrize("override", PLAIN)
def test_plain_overrides_pass(override: str) -> None:
    refuse_untrusted_overrides([override], trusted=False, source="run/.hydra/overrides.yaml")


@pytest.mark.parametrize("override", UNTRUSTED)
def test_overrides_that_choose_code_are_refused_in_one_line(override: str) -> None:
    with pytest.raises(TwinrunError) as raised:
        refuse_untrusted_overrides(["seed=1", override], trusted=False, source="run/.hydra/overrides.yaml")
    message = str(raised.value)
    assert "\n" not in message and override in message and "run/.hydra/overrides.yaml" in message


def test_trusted_runs_pass_anything() -> None:
    refuse_untrusted_overrides(UNTRUSTED, trusted=True, source="run")
