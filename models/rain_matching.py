"""Differentiable rain-layer statistics, for bringing G_B's rain closer to the real rain.

The same estimate as `util.rain_stats.rain_layer_y` without a clean counterpart, on tensors:
the high-pass residual of the image's luma (Y levels minus its Gaussian blur), so that a real
rainy image, whose clean version is unknown, and G_B's rendering are measured alike; the scene
content of both (clean images of the same kind of scenes) largely cancels in the comparison.

- `high_pass_luma(x, sigma)`: Bx1xHxW residual in Y levels of a batch in [-1, 1].
- `soft_statistics(layer, threshold, temperature) -> (coverage, brightness)`: coverage and
  mean brightness of the pixels above `threshold` levels (`util.rain_stats`' definitions), with
  a sigmoid of `temperature` levels in place of the hard threshold so both have gradients.
- `StatisticsMatch`: an exponential moving average of the real rain's statistics (the target;
  one batch is a noisy estimate of trainA's) and the matching loss
      |log((c_fake + 0.001) / (c_real + 0.001))| + |log((m_fake + 1) / (m_real + 1))|,
  scale-free in both, zero where they agree; gradients reach only the fake layer.
- `flat_mask(image, window, std_levels)`: where a batch's luma is flat (util.metrics' flatness,
  in which dark pixels are counted), for the paired model's `--lambda_under_flat`.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from util.rain_stats import RAIN_THRESHOLD, SMOOTH_SIGMA

# BT.601 luma per unit of [0, 1] RGB (util.metrics.rgb_to_y); the offset cancels in a residual.
LUMA_WEIGHTS = (65.481, 128.553, 24.966)
SOFT_TEMPERATURE = 3.0  # levels: width of the sigmoid that replaces the rain threshold


def luma_levels(x: torch.Tensor) -> torch.Tensor:
    """BT.601 Y (without its offset of 16) of a Bx3xHxW batch in [-1, 1], in levels, Bx1xHxW."""
    weights = x.new_tensor(LUMA_WEIGHTS).view(1, 3, 1, 1)
    return ((x + 1) / 2 * weights).sum(dim=1, keepdim=True)


def gaussian_blur(y: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of a Bx1xHxW batch, borders reflected (scipy's 'reflect' mode
    repeats the edge pixel; torch's reflects without it: equal away from the border)."""
    radius = max(1, min(math.ceil(3 * sigma), min(y.shape[-2:]) - 1))
    taps = torch.arange(-radius, radius + 1, dtype=y.dtype, device=y.device)
    kernel = torch.exp(-taps ** 2 / (2 * sigma ** 2))
    kernel = kernel / kernel.sum()
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    return F.conv2d(F.pad(y, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1))


def high_pass_luma(x: torch.Tensor, sigma: float = SMOOTH_SIGMA) -> torch.Tensor:
    """The high-pass rain-layer estimate of a batch in [-1, 1]: Y - blur(Y), in levels."""
    with torch.autocast(device_type=x.device.type, enabled=False):
        y = luma_levels(x.float())
        return y - gaussian_blur(y, sigma)


def soft_statistics(layer: torch.Tensor, threshold: float = RAIN_THRESHOLD,
                    temperature: float = SOFT_TEMPERATURE) -> tuple[torch.Tensor, torch.Tensor]:
    """(coverage, brightness) of a layer in Y levels, a sigmoid standing in for the threshold."""
    weight = torch.sigmoid((layer - threshold) / temperature)
    coverage = weight.mean()
    brightness = (weight * layer).sum() / (weight.sum() + 1e-6)
    return coverage, brightness


class StatisticsMatch:
    """The rain-statistics matching loss against a moving average of the real rain's statistics.

    The target stays a tensor on the layers' device: no step reads it back to the host."""

    def __init__(self, decay: float = 0.9, threshold: float = RAIN_THRESHOLD, temperature: float = SOFT_TEMPERATURE):
        self.decay, self.threshold, self.temperature = decay, threshold, temperature
        self.target: torch.Tensor | None = None  # (coverage, brightness) of the real rain

    def update_target(self, real_layer: torch.Tensor) -> None:
        """Fold one batch of real rain layers into the target (no gradient)."""
        with torch.no_grad():
            batch = torch.stack(soft_statistics(real_layer.float(), self.threshold, self.temperature))
            if self.target is None:
                self.target = batch
            else:
                self.target = self.decay * self.target.to(batch.device) + (1 - self.decay) * batch

    def loss(self, fake_layer: torch.Tensor) -> torch.Tensor:
        """The matching loss of `fake_layer` against the target (call `update_target` first)."""
        if self.target is None:
            raise RuntimeError("StatisticsMatch.loss before any update_target")
        coverage, brightness = soft_statistics(fake_layer.float(), self.threshold, self.temperature)
        target = self.target.to(coverage.device)
        return (torch.log((coverage + 1e-3) / (target[0] + 1e-3)).abs()
                + torch.log((brightness.clamp(min=0) + 1) / (target[1].clamp(min=0) + 1)).abs())

    def state_dict(self) -> dict:
        return {"target": self.target.tolist() if self.target is not None else None}

    def load_state_dict(self, state: dict) -> None:
        target = state.get("target")
        self.target = torch.tensor(target, dtype=torch.float32) if target is not None else None


def flat_mask(image: torch.Tensor, window: int, std_levels: float) -> torch.Tensor:
    """1 where an image batch (Bx3xHxW in [-1, 1]) is flat, else 0 (Bx1xHxW, float32): the
    standard deviation of its BT.601 luma in a window x window box (borders reflected), on the
    16..235 scale of util.metrics.rgb_to_y, under std_levels. The training-side twin of the
    flatness in which util.metrics.dark_artifacts counts dark pixels.
    """
    # A variance is a difference of close local means: float32, as in losses.ssim_loss.
    with torch.autocast(device_type=image.device.type, enabled=False):
        y = luma_levels(image.float())  # without rgb_to_y's offset, which a deviation ignores
        pad = window // 2
        y = F.pad(y, (pad, pad, pad, pad), mode="reflect")
        mean = F.avg_pool2d(y, window, stride=1)
        mean_sq = F.avg_pool2d(y * y, window, stride=1)
        std = (mean_sq - mean * mean).clamp(min=0).sqrt()
        return (std < std_levels).float()
