"""Small building blocks: normalisation choice and anti-aliased resampling (blur pool)."""
from __future__ import annotations

import functools

import torch
import torch.nn as nn
import torch.nn.functional as F


def get_norm_layer(norm_type: str = "instance"):
    """Return a constructor `norm(num_channels)`.

    Instance norm has no affine parameters and keeps no running statistics, as in the
    CycleGAN family: every image is normalised by its own statistics at train and test time.
    """
    if norm_type == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if norm_type == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if norm_type == "none":
        return lambda num_channels: nn.Identity()
    raise ValueError(f"unknown normalization '{norm_type}'; choose instance, batch or none")


def uses_bias(norm_type: str) -> bool:
    """Convs before a batch norm need no bias (the norm's shift replaces it)."""
    return norm_type != "batch"


def _binomial_kernel() -> torch.Tensor:
    row = torch.tensor([1.0, 2.0, 1.0])
    kernel = row[:, None] * row[None, :]
    return kernel / kernel.sum()


class BlurDownsample(nn.Module):
    """Blur with a 3x3 binomial filter, then keep every second pixel (anti-aliased stride 2)."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        self.register_buffer("kernel", _binomial_kernel()[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (1, 1, 1, 1), mode="reflect")
        return F.conv2d(x, self.kernel.to(x.dtype), stride=2, groups=self.channels)


class BlurUpsample(nn.Module):
    """Double the resolution by zero insertion and the same binomial filter (x4).

    This is bilinear-like interpolation; edges are replicated so borders keep their
    intensity. Output size is exactly 2H x 2W.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        self.register_buffer("kernel", (_binomial_kernel() * 4)[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x = F.pad(x, (1, 1, 1, 1), mode="replicate")
        y = F.conv_transpose2d(x, self.kernel.to(x.dtype), stride=2, groups=self.channels)
        # Input pixel j lands at output 2j + 3 after padding; keep [3, 3 + 2H).
        return y[..., 3:3 + 2 * h, 3:3 + 2 * w]
