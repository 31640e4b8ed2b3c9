"""Weight initialisation (`--init_type`, `--init_gain`)."""
from __future__ import annotations

import torch.nn as nn
from torch.nn.utils import parametrize


INIT_TYPES = ("normal", "xavier", "kaiming", "orthogonal", "residual")  # --init_type


def init_weights(net: nn.Module, init_type: str = "normal", init_gain: float = 0.02) -> nn.Module:
    """Initialise conv and linear weights in place; biases start at zero.

    `residual` is He initialisation (as `kaiming`) with the conv that closes each residual
    branch set to zero (the modules that name it `closing_conv`), so that every residual block
    starts as the identity (the idea of Fixup, Zhang et al. 2019, and SkipInit, De & Smith 2020).
    It is meant for generators without normalisation (`--normG none`): under `normal` or
    `xavier` at the usual gain of 0.02 their activations shrink about threefold per layer, the
    decoder's ReLUs can die at the start, and the generator stays the identity for good
    (docs/EXPERIMENTS.md, 2026-12-06 night); under plain `kaiming` nine residual blocks each add
    their own unit-scale branch and the activations grow into the hundreds.
    """

    def init_module(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            # A parametrized weight (spectral norm) is computed from the stored one: set that.
            weight = m.parametrizations.weight.original if parametrize.is_parametrized(m, "weight") else m.weight
            if init_type == "normal":
                nn.init.normal_(weight, 0.0, init_gain)
            elif init_type == "xavier":
                nn.init.xavier_normal_(weight, gain=init_gain)
            elif init_type in ("kaiming", "residual"):
                nn.init.kaiming_normal_(weight, a=0, mode="fan_in")
            elif init_type == "orthogonal":
                nn.init.orthogonal_(weight, gain=init_gain)
            else:
                raise ValueError(f"unknown --init_type '{init_type}'; choose one of {', '.join(INIT_TYPES)}")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, init_gain)
            nn.init.zeros_(m.bias)

    net.apply(init_module)
    if init_type == "residual":
        for module in net.modules():
            closing = getattr(module, "closing_conv", None)
            if closing is not None:
                nn.init.zeros_(closing.weight)
    return net
