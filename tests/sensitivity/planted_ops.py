"""Faults planted inside one aten op at one step (for --explain): the op and module are known in advance."""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from twinrun.trainers.loop import Hooks, StepContext


class _OneUlpInAddmm(TorchDispatchMode):
    """Moves every element of the ``which``-th forward aten::addmm's output by one ULP (one element's
    ULP can be absorbed by the sums after it)."""

    def __init__(self, which: int) -> None:
        super().__init__()
        self.which, self.seen = which, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func is torch.ops.aten.addmm.default and torch._C._current_autograd_node() is None:
            self.seen += 1
            if self.seen == self.which:
                out.copy_(torch.nextafter(out, torch.full_like(out, float("inf"))))
        return out


def one_ulp_in_to_mu(step: int) -> Hooks:
    """At ``step``, the VAE's second linear layer (to_mu: the 2nd addmm of the forward) is one ULP off."""
    mode: list[TorchDispatchMode] = []

    def before(ctx: StepContext) -> None:
        if ctx.step == step:
            mode.append(_OneUlpInAddmm(which=2))
            mode[-1].__enter__()

    def after(ctx: StepContext) -> None:
        if mode:
            mode.pop().__exit__(None, None, None)

    return Hooks(before_step=[before], after_step=[after])
