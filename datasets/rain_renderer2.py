"""A second rain renderer, unlike make_synthetic's, for conditions no recipe was tuned on.

    python -m datasets.make_synthetic --kind rain --renderer renderer2 --out datasets/rain_r2

Where it differs from ``make_synthetic.add_rain`` (the `varied_*` presets):
- streaks are long (20-40 px at every depth) and dense (0.25-0.4 % of the pixels seed one, per plane,
  3-5 planes), with a brighter head and a fading tail instead of symmetric ends;
- every streak has its own opacity; each plane its own width (a Gaussian cross-section) and
  defocus blur, both growing towards the camera;
- the streaks are screen-blended in a slightly blue-white rain colour, never added;
- the veil is a brighter, uneven mist: its opacity varies smoothly over the image.
Everything is drawn from the ``numpy.random.Generator`` passed in, so a seed fixes the result.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter, zoom
from scipy.signal import fftconvolve

RENDERER_NAME = "renderer2"


@dataclass(frozen=True)
class CurtainRain:
    """Ranges the per-image parameters are drawn from, uniformly (depth d: 0 near, 1 far)."""

    planes: tuple[int, int] = (3, 5)  # depth planes, inclusive range
    density: tuple[float, float] = (0.0025, 0.004)  # fraction of pixels seeding a streak, per plane
    length: tuple[float, float] = (20.0, 40.0)  # streak length in pixels, any depth
    wind: float = 20.0  # |angle from vertical| shared by the planes, degrees
    jitter: float = 4.0  # +- degrees of each plane around the wind
    width: tuple[float, float] = (0.5, 1.4)  # cross-section sigma of a near streak, pixels
    opacity: tuple[float, float] = (0.12, 0.55)  # one streak's peak opacity
    blur: tuple[float, float] = (0.3, 1.8)  # defocus sigma of the nearest plane
    veil: tuple[float, float] = (0.08, 0.28)  # mean opacity of the mist
    veil_level: tuple[float, float] = (0.85, 1.0)  # brightness of the mist


CURTAIN = CurtainRain()


def streak_kernel(length: float, angle_deg: float, width: float) -> np.ndarray:
    """One streak: a segment of ``length`` px, ``angle_deg`` clockwise from vertical, with a
    Gaussian cross-section of sigma ``width`` and a brightness rising from tail (0.25) to head (1)."""
    half = int(math.ceil(length / 2 + 3 * max(width, 0.5))) + 1
    ys, xs = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float64)
    angle = math.radians(angle_deg)
    along_dir = (math.cos(angle), math.sin(angle))  # (dy, dx): downwards, leaning with the wind
    along = ys * along_dir[0] + xs * along_dir[1]
    across = -ys * along_dir[1] + xs * along_dir[0]
    t = np.clip(along / length + 0.5, 0.0, 1.0)  # 0 at the tail (top), 1 at the head
    beyond = np.abs(along) - length / 2  # distance past either end, for round caps
    distance2 = across**2 + np.clip(beyond, 0.0, None) ** 2
    sigma = max(width, 0.35)
    return (0.25 + 0.75 * t) * np.exp(-distance2 / (2 * sigma**2))


def _plane(shape: tuple[int, int], rng: np.random.Generator, density: float, kernel: np.ndarray,
           opacity: tuple[float, float], blur: float) -> np.ndarray:
    """Opacity map in [0, 1] of one plane: seeds of random opacity, drawn out into streaks."""
    pad = kernel.shape[0] - 1
    # Seeds on a padded canvas, so streaks enter from outside the frame.
    seeds = (rng.random((shape[0] + pad, shape[1] + pad)) < density) * rng.uniform(*opacity, (shape[0] + pad,
                                                                                              shape[1] + pad))
    plane = np.clip(fftconvolve(seeds, kernel, mode="valid"), 0.0, None)
    if blur > 0.05:
        # Out of focus: energy spread wider; the gain keeps near streaks visible.
        plane = gaussian_filter(plane, blur) * (1.0 + 0.6 * blur)
    return np.clip(plane, 0.0, 1.0)


def smooth_field(shape: tuple[int, int], rng: np.random.Generator, cells: int = 4) -> np.ndarray:
    """Low-frequency random field in [0, 1] (a coarse grid, cubic-interpolated)."""
    coarse = rng.random((cells, cells))
    field = zoom(coarse, (shape[0] / cells, shape[1] / cells), order=3, mode="nearest")[: shape[0], : shape[1]]
    field = field - field.min()
    return field / max(float(field.max()), 1e-8)


def add_rain2(img: np.ndarray, rng: np.random.Generator, model: CurtainRain = CURTAIN) -> tuple[np.ndarray, dict]:
    """Rain of ``model`` on an HxWx3 float image in [0, 1]; the rainy image (float32) and the parameters drawn."""
    if img.ndim != 3 or img.shape[2] != 3 or not np.issubdtype(img.dtype, np.floating):
        raise ValueError(f"expected an HxWx3 float image in [0, 1], got {img.dtype} {img.shape}")
    shape = img.shape[:2]
    wind = float(rng.uniform(-model.wind, model.wind))
    alpha = np.zeros(shape, np.float64)
    planes = []
    for _ in range(int(rng.integers(model.planes[0], model.planes[1] + 1))):
        depth = float(rng.uniform(0.0, 1.0))
        plane = {
            "depth": depth,
            "angle": wind + float(rng.uniform(-model.jitter, model.jitter)),
            "length": float(rng.uniform(*model.length)),
            "width": float(rng.uniform(*model.width)) * (1.2 - 0.7 * depth),
            "density": float(rng.uniform(*model.density)) * (0.7 + 0.6 * depth),
            "blur": float(rng.uniform(*model.blur)) * (1.0 - depth),
        }
        kernel = streak_kernel(plane["length"], plane["angle"], plane["width"])
        far_dimming = 1.0 - 0.4 * depth
        opacity = (model.opacity[0] * far_dimming, model.opacity[1] * far_dimming)
        layer = _plane(shape, rng, plane["density"], kernel, opacity, plane["blur"])
        alpha = 1.0 - (1.0 - alpha) * (1.0 - layer)  # planes overlap like light
        planes.append(plane)
    colour = np.array([float(rng.uniform(0.9, 0.97)), float(rng.uniform(0.94, 0.99)), 1.0])
    out = 1.0 - (1.0 - img) * (1.0 - alpha[..., None] * colour)  # screen blend
    veil = float(rng.uniform(*model.veil))
    level = float(rng.uniform(*model.veil_level))
    mist = veil * (0.4 + 1.2 * smooth_field(shape, rng))[..., None]  # uneven: 0.4x to 1.6x the mean
    out = out * (1.0 - mist) + mist * level * colour
    params = {"renderer": RENDERER_NAME, "planes": planes, "rain_colour": colour.tolist(), "veil": veil,
              "veil_level": level}
    return np.clip(out, 0.0, 1.0).astype(np.float32), params
