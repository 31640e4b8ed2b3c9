"""PatchGAN discriminators (`--netD basic | n_layers | pixel`) and their norms (`--normD`)."""
from __future__ import annotations

import torch.nn as nn
from torch.nn.utils.parametrizations import spectral_norm

from .layers import NORMS, BlurDownsample, get_norm_layer, uses_bias

# --normD: the generators' norms, or spectral normalisation of every convolution (Miyato et
# al. 2018) with no norm layer between them, which bounds how sharply D can react to its input.
DISCRIMINATOR_NORMS = (*NORMS, "spectral")


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


def with_spectral_norm(net: nn.Module) -> nn.Module:
    """Spectral normalisation (torch's parametrization, one power iteration per training
    forward) on every convolution of `net`. The state dict then holds each weight as
    `parametrizations.weight.original` with the power iteration's `_u`, `_v`."""
    for module in list(net.modules()):
        if isinstance(module, nn.Conv2d):
            spectral_norm(module)
    return net


def define_discriminator(netD: str, input_nc: int = 3, ndf: int = 64, n_layers_D: int = 3,
                         norm: str = "instance", no_antialias: bool = False) -> nn.Module:
    if norm not in DISCRIMINATOR_NORMS:
        raise ValueError(f"unknown --normD '{norm}'; choose one of {DISCRIMINATOR_NORMS}")
    spectral = norm == "spectral"
    layer_norm = "none" if spectral else norm
    if netD == "basic":
        net = NLayerDiscriminator(input_nc, ndf, 3, layer_norm, no_antialias)
    elif netD == "n_layers":
        net = NLayerDiscriminator(input_nc, ndf, n_layers_D, layer_norm, no_antialias)
    elif netD == "pixel":
        net = PixelDiscriminator(input_nc, ndf, layer_norm)
    else:
        raise ValueError(f"unknown --netD '{netD}'; choose basic, n_layers or pixel")
    return with_spectral_norm(net) if spectral else net
