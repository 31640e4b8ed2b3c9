"""Which way one optimizer step moved a loss, decided by construction rather than by a margin.

Measuring a loss before and after a step and comparing the two floats fails on some CPUs: a
different draw of patches or noise, or a different rounding path, can move the loss by as much
as the step does. Here the loss is measured on exactly the draws the step uses (both start
from the same seed) and the step's effect is taken to first order: the loss's gradient dotted
with the change of the parameters. From a fresh Adam state the first step moves each
parameter by -lr g / (|g| + eps), against its own gradient g, so every term of that dot
product has the sign of the step's direction whatever the kernels' rounding.
"""
from __future__ import annotations

from typing import Callable

import torch


def fresh_adam_state(optimizers) -> None:
    """Forget the optimizers' moments, so their next step is against the current gradient alone."""
    for optimizer in optimizers:
        optimizer.state.clear()


def slope_along_step(nets: list[torch.nn.Module], measure: Callable[[], torch.Tensor],
                     step: Callable[[], None], seed: int) -> tuple[float, float]:
    """(measure()'s value, its directional derivative along the change `step()` makes to the
    nets' parameters). Both calls start from torch.manual_seed(seed), so a measure() that
    repeats the step's computation sees the step's own patches and noise."""
    params = [p for net in nets for p in net.parameters() if p.requires_grad]
    torch.manual_seed(seed)
    loss = measure()
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    before = [p.detach().clone() for p in params]
    torch.manual_seed(seed)
    step()
    slope = sum(float((g * (p.detach() - b)).sum()) for g, p, b in zip(grads, params, before) if g is not None)
    return float(loss.detach()), slope
