"""Exponential moving average of a network's weights (BasicSR's `ema_decay`, DiT's `update_ema`)."""
from __future__ import annotations

import copy

import torch
import torch.nn as nn


def frozen_copy(net: nn.Module) -> nn.Module:
    """A copy of `net` that no optimizer or gradient touches."""
    ema = copy.deepcopy(net)
    for p in ema.parameters():
        p.requires_grad_(False)
    return ema


@torch.no_grad()
def ema_update(ema: nn.Module, net: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * net, for parameters; buffers are copied."""
    for e, p in zip(ema.parameters(), net.parameters()):
        e.lerp_(p.detach(), 1.0 - decay)
    for e, b in zip(ema.buffers(), net.buffers()):
        e.copy_(b)


def warmed_up_decay(decay: float, steps: int) -> float:
    """`decay`, but smaller for the first steps, so the average forgets the random initial
    weights quickly in short trainings: min(decay, (1 + steps) / (10 + steps))."""
    return min(decay, (1.0 + steps) / (10.0 + steps))
