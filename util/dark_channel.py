"""The dark channel (He, Sun, Tang, CVPR 2009) and the guided filter (He, Sun, Tang, ECCV 2010):
the numerical pieces of the dark channel prior, shared by the haze metrics (util/metrics.py)
and the training-free method (restoration/dark_channel_prior.py).

Images are float arrays in [0, 1]. Windows are clipped at the image's borders: a border
pixel's minimum or mean is taken over the part of its window inside the image, so an image
smaller than the window is handled like any other.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import minimum_filter

# The paper's constants (He, Sun, Tang 2009): 15-px patches, omega 0.95 (a little haze kept), the
# airlight from the brightest 0.1% of the dark channel. The method's flags, the haze layer's
# `--haze_init dcp` and the pseudo-haze calibration all start from these.
PATCH, OMEGA, TOP = 15, 0.95, 0.001
MIN_AIRLIGHT = 1e-3  # no airlight component below this: a black image would otherwise divide by zero


def dark_channel(img01: np.ndarray, patch: int) -> np.ndarray:
    """HxW: at each pixel the minimum over a patch x patch square of the minimum over the colours.

    For a haze-free outdoor photograph it is close to 0 almost everywhere; haze lifts it
    towards the airlight. `img01` is HxWx3 in [0, 1] (HxW is taken as one colour).
    """
    if patch < 1:
        raise ValueError(f"the dark channel's patch must be at least 1 pixel, got {patch}")
    img = np.asarray(img01, dtype=np.float64)
    if img.ndim == 3:
        img = img.min(axis=2)
    if img.ndim != 2:
        raise ValueError(f"dark_channel needs an HxWx3 or HxW image, got shape {np.shape(img01)}")
    # mode "nearest" repeats the border pixels, which never lowers a minimum: the same as a
    # window clipped to the image.
    return minimum_filter(img, size=patch, mode="nearest")


def haziest_airlight(hazy01: np.ndarray, patch: int, top: float, mode: str = "brightest") -> np.ndarray:
    """The airlight (3,) of an HxWx3 hazy image in [0, 1], taken from its haziest pixels: the
    `top` share of pixels whose dark channel is brightest. `mode` brightest (the paper): the
    brightest input colour among them; mean: their mean colour. No component below MIN_AIRLIGHT."""
    dark = dark_channel(hazy01, patch).ravel()
    count = max(1, int(top * dark.size))
    haziest = np.argpartition(dark, dark.size - count)[dark.size - count:]
    colours = np.asarray(hazy01, dtype=np.float64).reshape(-1, 3)[haziest]
    if mode == "brightest":
        airlight = colours[np.argmax(colours.sum(axis=1))]
    elif mode == "mean":
        airlight = colours.mean(axis=0)
    else:
        raise ValueError(f"unknown airlight mode {mode!r}; choose brightest or mean")
    return np.maximum(airlight, MIN_AIRLIGHT)


def unrefined_transmission(hazy01: np.ndarray, airlight: np.ndarray, patch: int, omega: float) -> np.ndarray:
    """HxW: the prior's patchwise transmission t = 1 - omega dark_channel(I / A), before any refinement."""
    return 1.0 - omega * dark_channel(hazy01 / airlight, patch)


def _window_sums(values: np.ndarray, radius: int, axis: int) -> np.ndarray:
    """Sum over [i - radius, i + radius] along `axis`, clipped to the array: two lookups in a
    cumulative sum per element, whatever the radius."""
    n = values.shape[axis]
    cumulative = np.cumsum(values, axis=axis)
    zero = np.zeros_like(np.take(cumulative, [0], axis=axis))
    cumulative = np.concatenate([zero, cumulative], axis=axis)
    index = np.arange(n)
    upper = np.minimum(index + radius + 1, n)
    lower = np.maximum(index - radius, 0)
    return np.take(cumulative, upper, axis=axis) - np.take(cumulative, lower, axis=axis)


def box_filter(img: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the (2 radius + 1)-pixel square around each pixel of an HxW (or HxWxC) array,
    the square clipped to the image; O(1) per pixel through cumulative sums."""
    if radius < 0:
        raise ValueError(f"the box filter's radius must be >= 0, got {radius}")
    values = np.asarray(img, dtype=np.float64)
    if values.ndim not in (2, 3):
        raise ValueError(f"box_filter needs an HxW or HxWxC array, got shape {values.shape}")
    sums = _window_sums(_window_sums(values, radius, 0), radius, 1)
    height, width = values.shape[:2]
    counts = _window_sums(np.ones(height), radius, 0)[:, None] * _window_sums(np.ones(width), radius, 0)[None, :]
    if values.ndim == 3:
        counts = counts[..., None]
    return sums / counts


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Edge-preserving smoothing of `src` (HxW) that follows the edges of `guide` (HxW).

    In each window the output is a linear function a * guide + b fitted to `src` by least
    squares with the ridge `eps` on a; each pixel averages the fits of the windows that hold
    it. A larger `eps` smooths more; eps -> 0 copies the guide's edges.
    """
    guide = np.asarray(guide, dtype=np.float64)
    src = np.asarray(src, dtype=np.float64)
    if guide.ndim != 2 or guide.shape != src.shape:
        raise ValueError(f"guided_filter needs two HxW arrays of one size, got {guide.shape} and {src.shape}")
    if eps <= 0:
        raise ValueError(f"the guided filter's eps must be > 0, got {eps}")
    mean_guide = box_filter(guide, radius)
    mean_src = box_filter(src, radius)
    covariance = box_filter(guide * src, radius) - mean_guide * mean_src
    variance = box_filter(guide * guide, radius) - mean_guide * mean_guide
    slope = covariance / (variance + eps)
    offset = mean_src - slope * mean_guide
    return box_filter(slope, radius) * guide + box_filter(offset, radius)
