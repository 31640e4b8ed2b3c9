"""The generators (`--netG`), with an encoder-feature interface for contrastive losses:
the ResNet generators here, `nafnet` in nafnet.py, `dilated` (a haze estimator) in dilated.py.

A ResNet generator is one flat `nn.Sequential` so that a layer index means the same thing as in
the CUT/DCLGAN reference code: for resnet_9blocks with anti-aliasing, 0 = padded input,
4 = first downsampling conv, 8 = second downsampling conv, 12 = residual block 1,
16 = residual block 5. `--nce_layers` uses these indices.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .dilated import DilatedHazeGenerator
from .haze import DEFAULT_T_MIN, HAZE_CHANNELS, check_haze_layer, haze_output, scattering_of
from .layers import (LINEAR_RAIN_LAYERS, BlurDownsample, BlurUpsample, check_rain_layer, get_norm_layer,
                     residual_output, run_layers, uses_bias)
from .nafnet import NafnetGenerator
from .rain_veil import VEIL_CHANNELS, veiled_output

# --netG: residual blocks of each ResNet generator.
GENERATOR_BLOCKS = {"resnet_9blocks": 9, "resnet_6blocks": 6, "resnet_4blocks": 4}
GENERATORS = sorted([*GENERATOR_BLOCKS, "nafnet", "dilated"])  # --netG


class ResnetBlock(nn.Module):
    """x + (pad, conv3x3, norm, ReLU, pad, conv3x3, norm)(x)."""

    def __init__(self, dim: int, norm: str):
        super().__init__()
        norm_layer, bias = get_norm_layer(norm), uses_bias(norm)
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), norm_layer(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), norm_layer(dim),
        )

    @property
    def closing_conv(self) -> nn.Conv2d:
        """The branch's last conv: `--init_type residual` zeroes it, so that the block starts as the identity."""
        return self.body[5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """Encoder (2 downsamplings) -> residual blocks -> decoder (2 upsamplings) -> tanh."""

    # Height and width of the input must be multiples of this (two stride-2 stages).
    size_multiple = 4

    def __init__(self, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, norm: str = "instance",
                 n_blocks: int = 9, no_antialias: bool = False, no_antialias_up: bool = False,
                 global_residual: bool = False, upsample_taps: int = 4, rain_layer: str = "none",
                 rain_layer_sign: int = -1, skips: bool = False, haze_layer: str = "none",
                 t_min: float = DEFAULT_T_MIN, haze_init: str = "none"):
        super().__init__()
        check_rain_layer(rain_layer, global_residual, input_nc, output_nc)
        check_haze_layer(haze_layer, t_min, rain_layer, global_residual, input_nc, output_nc, haze_init)
        self.global_residual = global_residual
        self.rain_layer, self.rain_layer_sign = rain_layer, rain_layer_sign
        self.haze_layer, self.t_min, self.haze_init = haze_layer, t_min, haze_init
        norm_layer, bias = get_norm_layer(norm), uses_bias(norm)
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=bias),
                                   norm_layer(ngf), nn.ReLU(True)]
        channels = ngf
        stage_inputs = []  # index of the last layer before each downsampling stage
        for _ in range(2):
            stage_inputs.append(len(layers) - 1)
            out = channels * 2
            if no_antialias:
                layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1, bias=bias), norm_layer(out), nn.ReLU(True)]
            else:
                layers += [nn.Conv2d(channels, out, 3, stride=1, padding=1, bias=bias), norm_layer(out),
                           nn.ReLU(True), BlurDownsample(out)]
            channels = out
        layers += [ResnetBlock(channels, norm) for _ in range(n_blocks)]
        stage_outputs = []  # index of the last layer of each upsampling stage
        for _ in range(2):
            out = channels // 2
            if no_antialias_up:
                layers += [nn.ConvTranspose2d(channels, out, 3, stride=2, padding=1, output_padding=1, bias=bias),
                           norm_layer(out), nn.ReLU(True)]
            else:
                layers += [BlurUpsample(channels, upsample_taps),
                           nn.Conv2d(channels, out, 3, stride=1, padding=1, bias=bias),
                           norm_layer(out), nn.ReLU(True)]
            stage_outputs.append(len(layers) - 1)
            channels = out
        if haze_layer == "none":
            # --rain_layer linear: no tanh (an Identity keeps the layer numbers), see residual_output;
            # linear_veil: the same, and the veil's channels after the image's (rain_veil.py)
            outputs = output_nc + (VEIL_CHANNELS if rain_layer == "linear_veil" else 0)
            last = nn.Identity() if rain_layer in LINEAR_RAIN_LAYERS else nn.Tanh()
            layers += [nn.ReflectionPad2d(3), nn.Conv2d(channels, outputs, 7), last]
        else:  # t and the airlight, unbounded; an Identity in the tanh's place keeps the layer numbers
            layers += [nn.ReflectionPad2d(3), nn.Conv2d(channels, HAZE_CHANNELS, 7), nn.Identity()]
        self.model = nn.Sequential(*layers)
        # --skips: each upsampling stage's output plus the encoder features of the same
        # resolution (U-Net-like, added, so channel counts and layer numbers stay as they are).
        # The decoder otherwise rebuilds full-resolution detail from quarter-resolution
        # features through smooth upsampling, which keeps thin structures such as rain
        # streaks out of its reach.
        self.skips = dict(zip(stage_outputs, reversed(stage_inputs))) if skips else {}

    def forward(self, x: torch.Tensor, layers: list[int] | None = None, encode_only: bool = False
                ) -> torch.Tensor | list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Translate `x`; with `layers`, also return those layers' activations.

        `encode_only=True` returns only the features and stops after the last requested
        layer, so the decoder is never run for a contrastive-loss query.
        """
        if not layers:
            if encode_only:
                raise ValueError("encode_only needs a non-empty list of layers")
            if not self.skips:
                return self._output(x, self.model(x))
        wanted = set(layers or [])
        unknown = wanted - set(range(len(self.model)))
        if unknown:
            raise ValueError(f"--nce_layers {sorted(unknown)} do not exist; "
                             f"this generator has layers 0..{len(self.model) - 1}")
        # Skip sources (the stage inputs) and targets (the stage outputs) are disjoint here.
        feat, feats = run_layers(self.model, x, self.skips, wanted, encode_only)
        if encode_only:
            return feats
        return (self._output(x, feat), feats) if layers else self._output(x, feat)

    @property
    def closing_conv(self) -> nn.Conv2d:
        """The output conv: `--init_type residual` zeroes it, so that a --global_residual generator
        starts as the identity rather than with a saturated output."""
        return self.model[-2]

    def _output(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.haze_layer != "none":
            return haze_output(x, y, self.t_min, self.rain_layer_sign, self.haze_init)
        if self.rain_layer == "linear_veil":
            return veiled_output(x, y, self.rain_layer_sign)
        return residual_output(x, y, self.global_residual, self.rain_layer, self.rain_layer_sign)

    def scattering(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(transmission Bx1xHxW, airlight Bx3x1x1) that a --haze_layer generator sees in `x`."""
        if self.haze_layer == "none":
            raise ValueError("only a generator with --haze_layer estimates a transmission and an airlight")
        feat, _ = run_layers(self.model, x, self.skips, set())
        return scattering_of(x, feat, self.t_min, self.rain_layer_sign, self.haze_init)


def define_generator(netG: str, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, norm: str = "instance",
                     no_antialias: bool = False, no_antialias_up: bool = False,
                     global_residual: bool = False, upsample_taps: int = 4, rain_layer: str = "none",
                     rain_layer_sign: int = -1, skips: bool = False, haze_layer: str = "none",
                     t_min: float = DEFAULT_T_MIN, haze_init: str = "none") -> nn.Module:
    """Generator `netG`. `nafnet` is a U-Net that always adds its output to its input, so
    --global_residual and --skips are part of it, and it has its own norm and resampling:
    `norm`, the anti-aliasing flags, `upsample_taps` and `haze_layer` apply to the ResNet
    generators only. `rain_layer_sign` (+1 for the degrading generator G_B, -1 otherwise) also
    says whether a haze layer adds haze or removes it; `haze_init` dcp starts the restoring
    one from the dark channel prior."""
    if netG == "nafnet":
        if haze_layer != "none" or haze_init != "none":
            raise ValueError(f"--haze_layer {haze_layer} is built into the ResNet generators: use --netG resnet_*")
        if rain_layer == "linear_veil":
            raise ValueError("--rain_layer linear_veil is built into the ResNet generators: use --netG resnet_*")
        return NafnetGenerator(input_nc, output_nc, ngf, rain_layer=rain_layer, rain_layer_sign=rain_layer_sign)
    if netG == "dilated":
        if rain_layer != "none" or global_residual or skips:
            raise ValueError("--netG dilated outputs through --haze_layer asm: it takes no --rain_layer, "
                             "--global_residual or --skips")
        return DilatedHazeGenerator(input_nc, output_nc, ngf, haze_layer, rain_layer_sign, t_min, haze_init)
    if netG not in GENERATOR_BLOCKS:
        raise ValueError(f"unknown --netG '{netG}'; choose one of {GENERATORS}")
    return ResnetGenerator(input_nc, output_nc, ngf, norm, GENERATOR_BLOCKS[netG], no_antialias, no_antialias_up,
                           global_residual, upsample_taps, rain_layer, rain_layer_sign, skips, haze_layer, t_min,
                           haze_init)
