"""Networks built from the options, for the model constructors.

Model constructors and the entry points are the only code that reads the options
namespace; everything these functions call takes explicit arguments.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from util.weight_init import init_weights

from .losses import GANLoss
from .networks import NegativeGenerator, define_discriminator, define_generator, define_head
from .networks.discriminators import DISCRIMINATOR_NORMS, DISCRIMINATORS
from .networks.generators import GENERATORS
from .networks.haze import DEFAULT_T_MIN as DEFAULT_T_MIN  # --t_min's default, for the options
from .networks.haze import HAZE_INITS, HAZE_LAYERS
from .networks.layers import NORMS, RAIN_LAYERS

# The values the network flags accept (the options offer them as choices).
CHOICES = {"netG": GENERATORS, "netD": DISCRIMINATORS, "norm": NORMS, "normD": DISCRIMINATOR_NORMS,
           "rain_layer": RAIN_LAYERS, "gan_mode": GANLoss.modes, "haze_layer": HAZE_LAYERS, "haze_init": HAZE_INITS}


def rain_layer_sign(net_name: str) -> int:
    """--rain_layer, --haze_layer: +1 (adds rain or haze) for the degrading generator G_B, -1 (removes
    it) for the others."""
    return 1 if net_name.startswith("G_B") else -1


def generator_architecture(opt, net_name: str = "G_A") -> nn.Module:
    """Generator `net_name` as --netG/--ngf/--normG/anti-aliasing/--upsample_taps/--rain_layer/
    --haze_layer describe it, with PyTorch's default init."""
    return define_generator(opt.netG, opt.input_nc, opt.output_nc, opt.ngf, opt.normG, opt.no_antialias,
                            opt.no_antialias_up, opt.global_residual, opt.upsample_taps, opt.rain_layer,
                            rain_layer_sign(net_name), opt.skips, opt.haze_layer, opt.t_min, opt.haze_init)


def build_generator(opt, net_name: str = "G_A") -> nn.Module:
    """Generator `net_name` of the options, initialised per --init_type / --init_gain."""
    return init_weights(generator_architecture(opt, net_name), opt.init_type, opt.init_gain)


def build_discriminator(opt) -> nn.Module:
    """A discriminator from --netD/--ndf/--normD/anti-aliasing, initialised per --init_type."""
    net = define_discriminator(opt.netD, opt.output_nc, opt.ndf, opt.n_layers_D, opt.normD, opt.no_antialias)
    return init_weights(net, opt.init_type, opt.init_gain)


def encoder_channels(generator: nn.Module, layers: list[int], input_nc: int) -> list[int]:
    """Channel count of each requested layer, from a dry run on a small blank image."""
    with torch.no_grad():
        device = next(generator.parameters()).device
        feats = generator(torch.zeros(1, input_nc, 32, 32, device=device), layers, encode_only=True)
    return [f.shape[1] for f in feats]


def build_head(opt, generator: nn.Module, layers: list[int]) -> nn.Module:
    """A projection head (--netF) for `generator`'s features at `layers`, built at once."""
    head = define_head(opt.netF, opt.netF_nc, opt.init_type, opt.init_gain)
    return head.build(encoder_channels(generator, layers, opt.input_nc))


def build_negative_generator(opt, generator: nn.Module, layers: list[int]) -> NegativeGenerator:
    """A negative generator whose outputs match the projection head's embedding sizes."""
    if opt.netF == "mlp_sample":
        channels = [opt.netF_nc] * len(layers)
    else:  # a head without MLP passes the encoder's channels through
        channels = encoder_channels(generator, layers, opt.input_nc)
    return init_weights(NegativeGenerator(channels, opt.neg_nz), opt.init_type, opt.init_gain)
