"""`--netG dilated`: a small full-resolution network of dilated convolutions that estimates the
scattering model's transmission and airlight (`--haze_layer asm` only).

Haze is a smooth veil over the whole scene: what a dehazer has to read is how much contrast a
region has lost, over tens of pixels, not fine texture. Dilations 1, 2, 4, 8 and 16 reach a
63-pixel square at full resolution in six 3x3 convolutions of `ngf` channels, with no
downsampling that a decoder would have to undo: the haze layer itself (models/networks/haze.py)
turns the four output channels into t and A and the image. A ResNet generator of about the
same cost measured about 1 dB lower on the same pseudo pairs (docs/EXPERIMENTS.md, "Dehazing
by pseudo pairs", 2026-12-06).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .haze import DEFAULT_T_MIN, HAZE_CHANNELS, check_haze_layer, haze_output, scattering_of
from .layers import run_layers

DILATIONS = (1, 2, 4, 8, 16)  # after a plain first convolution; the receptive field is 63 px


class DilatedHazeGenerator(nn.Module):
    """conv 3x3 -> dilated 3x3 convolutions (ReLU after each) -> conv 3x3 to the haze layer's
    four channels, all at the input's resolution (any size works: replicate padding)."""

    size_multiple = 1

    def __init__(self, input_nc: int = 3, output_nc: int = 3, ngf: int = 24, haze_layer: str = "asm",
                 rain_layer_sign: int = -1, t_min: float = DEFAULT_T_MIN, haze_init: str = "none"):
        super().__init__()
        if haze_layer == "none":
            raise ValueError("--netG dilated estimates a transmission and an airlight: it needs --haze_layer asm")
        check_haze_layer(haze_layer, t_min, "none", False, input_nc, output_nc, haze_init)
        self.haze_layer, self.t_min, self.haze_init = haze_layer, t_min, haze_init
        self.rain_layer_sign = rain_layer_sign
        layers: list[nn.Module] = [nn.Conv2d(input_nc, ngf, 3, padding=1, padding_mode="replicate"), nn.ReLU(True)]
        for dilation in DILATIONS:
            layers += [nn.Conv2d(ngf, ngf, 3, padding=dilation, dilation=dilation, padding_mode="replicate"),
                       nn.ReLU(True)]
        layers += [nn.Conv2d(ngf, HAZE_CHANNELS, 3, padding=1, padding_mode="replicate")]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, layers: list[int] | None = None, encode_only: bool = False
                ) -> torch.Tensor | list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """The restored (or hazed) image; with `layers` also those layers' activations, as
        ResnetGenerator.forward (the contrastive models ask for them)."""
        wanted = set(layers or [])
        unknown = wanted - set(range(len(self.model)))
        if unknown:
            raise ValueError(f"--nce_layers {sorted(unknown)} do not exist; "
                             f"this generator has layers 0..{len(self.model) - 1}")
        if encode_only and not wanted:
            raise ValueError("encode_only needs a non-empty list of layers")
        feat, feats = run_layers(self.model, x, {}, wanted, encode_only)
        if encode_only:
            return feats
        out = haze_output(x, feat, self.t_min, self.rain_layer_sign, self.haze_init)
        return (out, feats) if layers else out

    def scattering(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(transmission Bx1xHxW, airlight Bx3x1x1) that the generator sees in `x`."""
        return scattering_of(x, self.model(x), self.t_min, self.rain_layer_sign, self.haze_init)
