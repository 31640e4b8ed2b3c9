"""Statistics of a rain layer: how much of the image rain covers, how bright and how long it is.

A rain layer is what rain adds to an image, in BT.601 Y levels (HxW float). Where the clean
counterpart is known (a `--paired` synthetic set, or a generator's input), it is rainy - clean;
where it is not, `rain_layer_y` estimates it as the image minus a Gaussian-smoothed copy of
itself (a high-pass residual: thin bright streaks stand out of their surroundings, smooth
content cancels; scene edges leak in, so compare estimates with estimates).

`LayerStatistics` pools layers (one image or a folder) into:
- coverage: the share of pixels the layer brightens by more than `threshold` levels (15);
- brightness: the mean of the layer on those pixels (levels; None without any);
- run_length: the mean length in pixels of the vertical runs of such pixels, a cheap proxy for
  streak length (near-vertical streaks give long runs, blobs and specks short ones);
- orientation: the dominant streak direction in degrees from vertical (positive leans right at
  the top), from the structure tensor of the layer's positive part summed over all pixels;
- coherence: 0 (no dominant direction) to 1 (every streak parallel);
- mean: the layer's mean over all pixels (levels): below 0 where the "rain" darkens the image,
  as a rain generator's leak does.
`compare_statistics` says which of coverage and brightness stray from a reference by more than
a relative tolerance: the check made before pseudo pairs are trained on.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import gaussian_filter

from util.metrics import rgb_to_y

RAIN_THRESHOLD = 15.0  # levels of Y a pixel must be brightened by to count as rain
SMOOTH_SIGMA = 2.0  # px: wider than a streak (1-3 px), narrower than most scene structure


def rain_layer_y(rainy: np.ndarray, clean: np.ndarray | None = None, sigma: float = SMOOTH_SIGMA) -> np.ndarray:
    """The rain layer of an HxWx3 uint8 image in Y levels: rainy - clean when `clean` is given,
    otherwise rainy minus its Gaussian blur (sigma px), the high-pass estimate."""
    y = rgb_to_y(rainy)
    if clean is not None:
        if clean.shape != rainy.shape:
            raise ValueError(f"rain_layer_y: clean image {clean.shape} differs from the rainy one {rainy.shape}")
        return y - rgb_to_y(clean)
    return y - gaussian_filter(y, sigma, mode="reflect")


def _vertical_runs(mask: np.ndarray) -> tuple[int, int]:
    """(number of vertical runs of True, their total length) in a 2-D boolean mask."""
    padded = np.pad(mask.astype(np.int8), ((1, 1), (0, 0)))
    starts = int((np.diff(padded, axis=0) == 1).sum())
    return starts, int(mask.sum())


@dataclass
class LayerStatistics:
    """Running sums over any number of rain layers; `summary()` gives the statistics."""

    threshold: float = RAIN_THRESHOLD
    pixels: int = 0
    covered: int = 0
    covered_sum: float = 0.0
    total: float = 0.0
    runs: int = 0
    tensor: np.ndarray = field(default_factory=lambda: np.zeros(3))  # Jxx, Jyy, Jxy

    def add(self, layer: np.ndarray) -> LayerStatistics:
        """Pool one HxW layer (Y levels) into the sums; returns self."""
        layer = np.asarray(layer, dtype=np.float64)
        if layer.ndim != 2:
            raise ValueError(f"LayerStatistics.add needs an HxW layer, got shape {layer.shape}")
        mask = layer > self.threshold
        self.pixels += mask.size
        self.covered += int(mask.sum())
        self.covered_sum += float(layer[mask].sum())
        self.total += float(layer.sum())
        self.runs += _vertical_runs(mask)[0]
        gy, gx = np.gradient(np.maximum(layer, 0.0))
        self.tensor += np.array([(gx * gx).sum(), (gy * gy).sum(), (gx * gy).sum()])
        return self

    def summary(self) -> dict[str, float | None]:
        """coverage, brightness, run_length, orientation, coherence, mean (module docstring)."""
        jxx, jyy, jxy = self.tensor
        trace = jxx + jyy
        # The dominant gradient direction is across the streaks; the streaks run at right angles to it.
        # Rows grow downwards, so an angle measured from the x axis turns clockwise; the streaks'
        # angle from the vertical (positive: '/') equals the gradient's angle from the horizontal.
        orientation = math.degrees(0.5 * math.atan2(2 * jxy, jxx - jyy))
        return {
            "coverage": self.covered / self.pixels if self.pixels else 0.0,
            "brightness": self.covered_sum / self.covered if self.covered else None,
            "run_length": self.covered / self.runs if self.runs else None,
            "orientation": float(orientation) if trace > 0 else None,
            "coherence": float(math.sqrt((jxx - jyy) ** 2 + 4 * jxy ** 2) / trace) if trace > 0 else None,
            "mean": self.total / self.pixels if self.pixels else 0.0,
        }


def layer_statistics(layers, threshold: float = RAIN_THRESHOLD) -> dict[str, float | None]:
    """The pooled statistics of an iterable of HxW rain layers (Y levels)."""
    stats = LayerStatistics(threshold)
    for layer in layers:
        stats.add(layer)
    return stats.summary()


def compare_statistics(measured: dict, reference: dict, tolerance: float,
                       keys: tuple[str, ...] = ("coverage", "brightness")) -> list[str]:
    """One line per statistic of `keys` whose relative difference |measured / reference - 1|
    exceeds `tolerance` (a missing value on either side counts as a difference); [] if none."""
    problems = []
    for key in keys:
        got, want = measured.get(key), reference.get(key)
        if got is None or want is None or want == 0:
            if got != want:
                problems.append(f"{key}: {got} against {want}")
            continue
        if abs(got / want - 1) > tolerance:
            problems.append(f"{key}: {got:.4g} against {want:.4g} ({got / want - 1:+.0%}, tolerance {tolerance:.0%})")
    return problems
