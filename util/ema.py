"""Exponential moving average of a module's weights (momentum heads, generator EMAs)."""
from __future__ import annotations

import copy

import torch
import torch.nn as nn


class EMA:
    """A frozen copy of `source` whose weights follow it: copy <- decay * copy + (1 - decay) * source.

    Create it from the plain module, before any DDP / torch.compile wrapping: the copy then
    follows the very parameters the optimizer updates. No gradient reaches the copy and no
    optimizer holds it; save `state_dict()` with the rest of the training state.
    """

    def __init__(self, source: nn.Module):
        self.source = source
        self.module = copy.deepcopy(source).requires_grad_(False)

    @torch.no_grad()
    def update(self, decay: float) -> None:
        """One step towards the source's current weights; buffers (e.g. running statistics) are copied."""
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"an EMA decay must be in [0, 1], got {decay}")
        for ema, current in zip(self.module.parameters(), self.source.parameters()):
            ema.lerp_(current, 1.0 - decay)
        for ema, current in zip(self.module.buffers(), self.source.buffers()):
            ema.copy_(current)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)


def warmed_up_decay(decay: float, steps: int) -> float:
    """`decay`, but smaller for the first steps, so an average started from random weights
    forgets them quickly in a short training: min(decay, (1 + steps) / (10 + steps))."""
    return min(decay, (1.0 + steps) / (10.0 + steps))
