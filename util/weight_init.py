"""Weight initialisation (`--init_type`, `--init_gain`)."""
from __future__ import annotations

import torch.nn as nn
from torch.nn.utils import parametrize


INIT_TYPES = ("normal", "xavier", "kaiming", "orthogonal")  # --init_type


def init_weights(net: nn.Module, init_type: str = "normal", init_gain: float = 0.02) -> nn.Module:
    """Initialise conv and linear weights in place; biases start at zero."""

    def init_module(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            # A parametrized weight (spectral norm) is computed from the stored one: set that.
            weight = m.parametrizations.weight.original if parametrize.is_parametrized(m, "weight") else m.weight
            if init_type == "normal":
                nn.init.normal_(weight, 0.0, init_gain)
            elif init_type == "xavier":
                nn.init.xavier_normal_(weight, gain=init_gain)
            elif init_type == "kaiming":
                nn.init.kaiming_normal_(weight, a=0, mode="fan_in")
            elif init_type == "orthogonal":
                nn.init.orthogonal_(weight, gain=init_gain)
            else:
                raise ValueError(f"unknown --init_type '{init_type}'; choose normal, xavier, kaiming or orthogonal")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, init_gain)
            nn.init.zeros_(m.bias)

    net.apply(init_module)
    return net
