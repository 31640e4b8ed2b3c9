"""Small building blocks: normalisation choice, anti-aliased resampling (blur pool), the
generators' residual and rain-layer outputs."""
from __future__ import annotations

import functools

import torch
import torch.nn as nn
import torch.nn.functional as F


NORMS = ("instance", "batch", "none")  # --normG, --normD
# --rain_layer (linear_veil: rain_veil.py)
RAIN_LAYERS = ("none", "leaky", "gray", "gray_soft", "linear", "linear_veil")
LINEAR_RAIN_LAYERS = ("linear", "linear_veil")  # no tanh: a correction added to the input


class InstanceNorm(nn.InstanceNorm2d):
    """Instance norm without affine parameters or running statistics (the CycleGAN family's).

    On channels-last inputs it is computed as group norm with one channel per group, the
    same function: torch 2.14's CPU instance-norm backward is wrong for channels-last
    gradients at batch size 1, group norm's is exact (tests/test_amp.py). Other inputs keep
    instance norm's own kernel.
    """

    def __init__(self, num_features: int):
        super().__init__(num_features, affine=False, track_running_stats=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
            return F.group_norm(x, self.num_features, eps=self.eps)
        return super().forward(x)


def get_norm_layer(norm_type: str = "instance"):
    """Return a constructor `norm(num_channels)`.

    Instance norm has no affine parameters and keeps no running statistics, as in the
    CycleGAN family: every image is normalised by its own statistics at train and test time.
    """
    if norm_type == "instance":
        return InstanceNorm
    if norm_type == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if norm_type == "none":
        return lambda num_channels: nn.Identity()
    raise ValueError(f"unknown normalization '{norm_type}'; choose instance, batch or none")


def uses_bias(norm_type: str) -> bool:
    """Convs before a batch norm need no bias (the norm's shift replaces it)."""
    return norm_type != "batch"


# Binomial taps of the anti-aliasing filters (Zhang, "Making convolutional networks
# shift-invariant again", 2019), as the CUT family uses them: 3 taps to blur before
# downsampling, 4 taps to interpolate when upsampling.
BINOMIAL_TAPS = {3: (1.0, 2.0, 1.0), 4: (1.0, 3.0, 3.0, 1.0)}
# Upsampling filter of checkpoints written before --upsample_taps existed (they used 3 taps).
LEGACY_UPSAMPLE_TAPS = 3


def _binomial_kernel(taps: int = 3) -> torch.Tensor:
    if taps not in BINOMIAL_TAPS:
        raise ValueError(f"no binomial filter with {taps} taps; choose one of {sorted(BINOMIAL_TAPS)}")
    row = torch.tensor(BINOMIAL_TAPS[taps])
    kernel = row[:, None] * row[None, :]
    return kernel / kernel.sum()


class BlurDownsample(nn.Module):
    """Blur with a 3x3 binomial filter, then keep every second pixel (anti-aliased stride 2)."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        self.register_buffer("kernel", _binomial_kernel(3)[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (1, 1, 1, 1), mode="reflect")
        return F.conv2d(x, self.kernel.to(x.dtype), stride=2, groups=self.channels)


class BlurUpsample(nn.Module):
    """Double the resolution: zero insertion, then a binomial filter (x4), edges replicated.

    With the reference's 4 taps [1, 3, 3, 1] every output pixel sits half-way between input
    samples: out[2j] = (x[j-1] + 3 x[j]) / 4 and out[2j+1] = (3 x[j] + x[j+1]) / 4, the
    bilinear interpolation of a 2x resize. `taps=3` ([1, 2, 1]) is the filter this
    repository used before it matched the reference (out[2j] = x[j], a quarter-pixel shift);
    it is kept so those checkpoints still load. Output size is exactly 2H x 2W.
    """

    def __init__(self, channels: int, taps: int = 4):
        super().__init__()
        self.channels = channels
        self.taps = taps
        # With 4 taps the CPU forward interpolates instead; the kernel stays a buffer either
        # way, as checkpoints hold it.
        self.register_buffer("kernel", (_binomial_kernel(taps) * 4)[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.taps == 4 and x.device.type == "cpu":
            # The same filter as the transposed convolution below, in PyTorch's bilinear
            # kernel: one pass instead of a grouped convolution over a zero-stuffed image.
            # Its borders clamp, as the replication pad does. CUDA keeps the convolution:
            # the bilinear backward there is not deterministic (--deterministic).
            return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        h, w = x.shape[-2:]
        x = F.pad(x, (1, 1, 1, 1), mode="replicate")
        y = F.conv_transpose2d(x, self.kernel.to(x.dtype), stride=2, groups=self.channels)
        # For both filters the output sample belonging to input pixel j (padded index j + 1)
        # is y[2j + 3]; keep [3, 3 + 2H).
        return y[..., 3:3 + 2 * h, 3:3 + 2 * w]


def check_rain_layer(rain_layer: str, global_residual: bool, input_nc: int, output_nc: int) -> None:
    """Raise ValueError for a --rain_layer this module does not know, or for an output that is
    added to an input of another channel count."""
    if rain_layer not in RAIN_LAYERS:
        raise ValueError(f"unknown --rain_layer '{rain_layer}'; choose one of {RAIN_LAYERS}")
    if (global_residual or rain_layer != "none") and input_nc != output_nc:
        raise ValueError("--global_residual and --rain_layer need --input_nc == --output_nc")
    if rain_layer in LINEAR_RAIN_LAYERS and not global_residual:
        raise ValueError(f"--rain_layer {rain_layer} is a correction added to the input: it needs --global_residual")
    if rain_layer == "linear_veil" and (input_nc, output_nc) != (3, 3):
        raise ValueError("--rain_layer linear_veil lifts a veil from RGB images: it needs --input_nc 3 --output_nc 3")


def residual_output(x: torch.Tensor, y: torch.Tensor, global_residual: bool, rain_layer: str = "none",
                    rain_layer_sign: int = -1) -> torch.Tensor:
    """A generator's image from its input `x` and its last layer's output `y`.

    With `global_residual` the network predicts a correction added to its input.

    With rain_layer `leaky` it predicts a rain layer r that is added (rain_layer_sign +1,
    the degrading generator) or removed (-1, the restoring one): rain only brightens, so
    r = leaky_relu(y, 0.1) is non-negative up to a small leak. The leak keeps a gradient
    where y < 0; with a plain ReLU the identity loss drives y below zero everywhere and
    the generator freezes at the identity. `gray` makes the layer colourless (the mean of
    the three output channels, the same for R, G and B), as rain streaks and mist are:
    the generator then cannot tint the image.

    `gray` has an absorbing state (docs/METHODS.md, "The rain layer"): with the ResNet
    generators' last tanh saturated at -1, the leak makes G_A's output its input brightened
    by exactly 0.1, and the saturated tanh passes almost no gradient back. `gray_soft`
    (`soft_rain_layer`) has no such state; `gray` keeps its meaning for old checkpoints.

    `linear`: the correction y has no tanh before it (the generators put an Identity in its
    place) and the image is clamped by `clamp_passing_gradient`. Under the tanh, one step that
    saturates it at -1 leaves the output at its input darkened by half the range, and there it
    stays: the saturated tanh (and the plain clamp, on the pixels it clips) pass almost no
    gradient back, so the L1 loss cannot pull it out (a pseudo-pair run on the small suite set,
    docs/EXPERIMENTS.md, 2026-12-07).
    """
    if rain_layer == "linear":
        return clamp_passing_gradient(x + y)
    if rain_layer == "gray_soft":
        return (x + rain_layer_sign * soft_rain_layer(y)).clamp(-1.0, 1.0)
    if rain_layer == "gray":
        y = y.mean(dim=1, keepdim=True)
    if rain_layer in ("leaky", "gray"):
        return (x + rain_layer_sign * F.leaky_relu(y, 0.1)).clamp(-1.0, 1.0)
    return (x + y).clamp(-1.0, 1.0) if global_residual else y


def clamp_passing_gradient(image: torch.Tensor) -> torch.Tensor:
    """`image` clamped to [-1, 1], with the gradient of the identity: a loss on a clamped pixel
    still moves the value that was clamped (a straight-through estimator)."""
    return image + (image.clamp(-1.0, 1.0) - image).detach()


def soft_rain_layer(y: torch.Tensor) -> torch.Tensor:
    """`--rain_layer gray_soft`: the colourless rain layer r = |mean over channels of y|.

    Why this form: r is non-negative for every y, so the restoring generator (x - r) can
    only darken and the degrading one (x + r) only brighten: there is no leak down which a
    generator losing to its discriminator can drift. Zero rain is y = 0, where the gradient
    of r has magnitude 1/3 per channel (1 for the mean) on either side, so a generator at
    zero rain always feels the GAN's pull; under the ResNet generators' last tanh, y = 0 is
    where tanh is steepest, and r = tanh(|pre-activation|) saturates only at maximal rain
    (r -> 1, half the image range), a state the identity and sparsity terms make expensive.
    (softplus or a sigmoid would make zero rain an asymptote with a vanishing gradient: the
    same trap as the saturated tanh.) NAFNet's head has no tanh: its r is unbounded and the
    image is bounded by the final clamp.
    """
    return y.mean(dim=1, keepdim=True).abs()


def run_layers(layers: nn.Sequential, x: torch.Tensor, skips: dict[int, int], wanted: set[int],
               encode_only: bool = False) -> tuple[torch.Tensor | None, list[torch.Tensor]]:
    """Run `layers` on `x`, adding to layer t's output the saved output of layer `skips[t]`.

    Returns (the last layer's output, the outputs of the `wanted` layers in order); with
    `encode_only` it stops after the last wanted layer and returns None as the output, so a
    contrastive query never runs the decoder. A layer that is both a skip's target and a
    source is saved with its skip added.
    """
    last = max(wanted, default=-1)
    feats, saved = [], {}
    sources = set(skips.values())
    feat = x
    for index, layer in enumerate(layers):
        feat = layer(feat)
        if index in skips:
            feat = feat + saved[skips[index]]
        if index in sources:
            saved[index] = feat
        if index in wanted:
            feats.append(feat)
        if encode_only and index == last:
            return None, feats
    return feat, feats
