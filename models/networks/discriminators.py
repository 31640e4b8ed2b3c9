"""PatchGAN discriminators (`--netD basic | n_layers | pixel`)."""
from __future__ import annotations

import torch.nn as nn

from .layers import BlurDownsample, get_norm_layer, uses_bias


class NLayerDiscriminator(nn.Module):
    """PatchGAN: each output value judges one receptive field (70x70 for 3 layers)."""

    def __init__(self, input_nc: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "instance",
                 no_antialias: bool = False):
        super().__init__()
        norm_layer, bias = get_norm_layer(norm), uses_bias(norm)
        k, p = 4, 1
        if no_antialias:
            layers: list[nn.Module] = [nn.Conv2d(input_nc, ndf, k, stride=2, padding=p), nn.LeakyReLU(0.2, True)]
        else:
            layers = [nn.Conv2d(input_nc, ndf, k, stride=1, padding=p), nn.LeakyReLU(0.2, True), BlurDownsample(ndf)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            if no_antialias:
                layers += [nn.Conv2d(ndf * prev, ndf * mult, k, stride=2, padding=p, bias=bias),
                           norm_layer(ndf * mult), nn.LeakyReLU(0.2, True)]
            else:
                layers += [nn.Conv2d(ndf * prev, ndf * mult, k, stride=1, padding=p, bias=bias),
                           norm_layer(ndf * mult), nn.LeakyReLU(0.2, True), BlurDownsample(ndf * mult)]
        prev, mult = mult, min(2 ** n_layers, 8)
        layers += [nn.Conv2d(ndf * prev, ndf * mult, k, stride=1, padding=p, bias=bias),
                   norm_layer(ndf * mult), nn.LeakyReLU(0.2, True),
                   nn.Conv2d(ndf * mult, 1, k, stride=1, padding=p)]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """1x1 PatchGAN: judges every pixel on its own (colour statistics only)."""

    def __init__(self, input_nc: int = 3, ndf: int = 64, norm: str = "instance"):
        super().__init__()
        norm_layer, bias = get_norm_layer(norm), uses_bias(norm)
        self.model = nn.Sequential(
            nn.Conv2d(input_nc, ndf, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=bias), norm_layer(ndf * 2), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, 1, bias=bias))

    def forward(self, x):
        return self.model(x)


DISCRIMINATORS = ("basic", "n_layers", "pixel")  # --netD


def define_discriminator(netD: str, input_nc: int = 3, ndf: int = 64, n_layers_D: int = 3,
                         norm: str = "instance", no_antialias: bool = False) -> nn.Module:
    if netD == "basic":
        return NLayerDiscriminator(input_nc, ndf, 3, norm, no_antialias)
    if netD == "n_layers":
        return NLayerDiscriminator(input_nc, ndf, n_layers_D, norm, no_antialias)
    if netD == "pixel":
        return PixelDiscriminator(input_nc, ndf, norm)
    raise ValueError(f"unknown --netD '{netD}'; choose basic, n_layers or pixel")
