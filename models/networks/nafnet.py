"""`--netG nafnet`: a small restoration U-Net of NAF blocks that works at full resolution.

After Chen et al., "Simple Baselines for Image Restoration" (ECCV 2022), written from the
paper's description. The ResNet generators do all their work at a quarter of the
resolution, where a 1-2 px rain streak is a fraction of a pixel; here a 3x3 stem, NAF
blocks and a 3x3 head run at full resolution, and each encoder level's features are added
to the decoder's at the same resolution.

Layout at width c = --ngf (widths c, 2c, 4c; two stride-2 levels, so H and W must be
multiples of 4). Each entry is one layer; its index is what `--nce_layers` names:

    0  stem: 3x3 conv, 3 -> c                         full resolution
    1  NAF block (c)                                  end of level 0, skip source
    2  down: 2x2 conv stride 2, c -> 2c               1/2
    3  NAF block (2c)                                 end of level 1, skip source
    4  down: 2x2 conv stride 2, 2c -> 4c              1/4
    5  NAF block (4c)                                 middle
    6  NAF block (4c)                                 end of the middle
    7  up: 1x1 conv 4c -> 8c, PixelShuffle(2) -> 2c   1/2, plus layer 3
    8  NAF block (2c)
    9  up: 1x1 conv 2c -> 4c, PixelShuffle(2) -> c    full resolution, plus layer 1
    10 NAF block (c)
    11 head: 3x3 conv, c -> 3

The encoder's features are layers 0, 1, 3 and 6 (`encoder_layers`): `--nce_layers 0,1,3,6`.
The output is the input plus the head's output (clamped to [-1, 1]), or with --rain_layer
the input minus (G_A) or plus (G_B) a rain layer made from it (`layers.residual_output`).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .layers import check_rain_layer, residual_output, run_layers


class LayerNorm2d(nn.Module):
    """Layer norm over the channels of each pixel, with a learned scale and shift per channel.

    Unlike instance norm it keeps no image-wide statistics, so an image's colours and
    brightness pass through, and tiles are normalised exactly as the whole image is.
    """

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Statistics in float32 at least: under bf16 autocast a variance over a few channels is coarse.
        y = x.to(torch.promote_types(x.dtype, torch.float32))
        y = y - y.mean(dim=1, keepdim=True)
        y = y * torch.rsqrt(y.pow(2).mean(dim=1, keepdim=True) + self.eps)
        return (y * self.weight[:, None, None] + self.bias[:, None, None]).to(x.dtype)


def simple_gate(x: torch.Tensor) -> torch.Tensor:
    """SimpleGate: the first half of the channels times the second half (the paper's
    replacement for a nonlinear activation)."""
    first, second = x.chunk(2, dim=1)
    return first * second


class NAFBlock(nn.Module):
    """x + beta * spatial(norm(x)), then + gamma * channel_mix(norm(.)).

    spatial: 1x1 conv to 2c, 3x3 depthwise conv, SimpleGate back to c, simplified channel
    attention (global average pool, 1x1 conv, multiply), 1x1 conv. channel_mix: 1x1 conv to
    2c, SimpleGate, 1x1 conv. beta and gamma (one scale per channel) start at zero, so a
    new block is the identity and training opens it gradually.
    """

    def __init__(self, channels: int):
        super().__init__()
        wide = 2 * channels
        self.norm1 = LayerNorm2d(channels)
        self.expand = nn.Conv2d(channels, wide, 1)
        self.depthwise = nn.Conv2d(wide, wide, 3, padding=1, groups=wide)
        self.attention = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, channels, 1))
        self.project = nn.Conv2d(channels, channels, 1)
        self.norm2 = LayerNorm2d(channels)
        self.mix_expand = nn.Conv2d(channels, wide, 1)
        self.mix_project = nn.Conv2d(channels, channels, 1)
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = simple_gate(self.depthwise(self.expand(self.norm1(x))))
        x = x + self.beta * self.project(y * self.attention(y))
        y = simple_gate(self.mix_expand(self.norm2(x)))
        return x + self.gamma * self.mix_project(y)


def upsample(channels: int) -> nn.Sequential:
    """Double the resolution and halve the channels: 1x1 conv to 2 * channels, PixelShuffle(2)."""
    return nn.Sequential(nn.Conv2d(channels, 2 * channels, 1, bias=False), nn.PixelShuffle(2))


class NafnetGenerator(nn.Module):
    """Stem, encoder levels (NAF blocks, 2x2 stride-2 conv), middle blocks, decoder levels
    (1x1 conv + PixelShuffle, the encoder's features added, NAF blocks), head; the output
    is added to the input. The layers are one flat list; see the module docstring."""

    def __init__(self, input_nc: int = 3, output_nc: int = 3, ngf: int = 16,
                 encoder_blocks: tuple[int, ...] = (1, 1), middle_blocks: int = 2,
                 decoder_blocks: tuple[int, ...] = (1, 1), rain_layer: str = "none", rain_layer_sign: int = -1):
        super().__init__()
        check_rain_layer(rain_layer, True, input_nc, output_nc)
        if len(encoder_blocks) != len(decoder_blocks):
            raise ValueError("nafnet needs as many decoder levels as encoder levels")
        self.rain_layer, self.rain_layer_sign = rain_layer, rain_layer_sign
        layers: list[nn.Module] = [nn.Conv2d(input_nc, ngf, 3, padding=1)]
        channels = ngf
        sources = []  # the last layer of each encoder level, whose output the decoder gets
        for count in encoder_blocks:
            layers += [NAFBlock(channels) for _ in range(count)]
            sources.append(len(layers) - 1)
            layers.append(nn.Conv2d(channels, 2 * channels, 2, stride=2))
            channels *= 2
        layers += [NAFBlock(channels) for _ in range(middle_blocks)]
        # --nce_layers for the encoder: the stem, the end of each level and of the middle.
        self.encoder_layers = (0, *sources, len(layers) - 1)
        targets = []  # each decoder level's upsampling layer, whose output gets a skip
        for count in decoder_blocks:
            layers.append(upsample(channels))
            channels //= 2
            targets.append(len(layers) - 1)
            layers += [NAFBlock(channels) for _ in range(count)]
        layers.append(nn.Conv2d(channels, output_nc, 3, padding=1))
        self.model = nn.ModuleList(layers)
        self.skips = dict(zip(targets, reversed(sources)))
        # Height and width of the input must be multiples of this (one stride-2 conv per level).
        self.size_multiple = 2 ** len(encoder_blocks)

    def forward(self, x: torch.Tensor, layers: list[int] | None = None, encode_only: bool = False
                ) -> torch.Tensor | list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Restore `x`; with `layers`, also return those layers' outputs (in layer order).

        `encode_only=True` returns only the features and stops after the last requested layer.
        """
        if encode_only and not layers:
            raise ValueError("encode_only needs a non-empty list of layers")
        wanted = set(layers or [])
        unknown = wanted - set(range(len(self.model)))
        if unknown:
            raise ValueError(f"--nce_layers {sorted(unknown)} do not exist; --netG nafnet has layers "
                             f"0..{len(self.model) - 1} (its encoder: {','.join(map(str, self.encoder_layers))})")
        h, w = x.shape[-2:]
        if h % self.size_multiple or w % self.size_multiple:
            raise ValueError(f"--netG nafnet needs a height and width that are multiples of {self.size_multiple} "
                             f"(got {h} x {w}): change --crop_size")
        feat, feats = run_layers(self.model, x, self.skips, wanted, encode_only)
        if encode_only:
            return feats
        out = residual_output(x, feat, True, self.rain_layer, self.rain_layer_sign)
        return (out, feats) if layers else out
