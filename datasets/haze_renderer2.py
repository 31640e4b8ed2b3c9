"""A second haze renderer, unlike make_synthetic's, for conditions no recipe was tuned on.

    python -m datasets.make_synthetic --kind haze --renderer renderer2 --out datasets/haze_r2

The scattering model I = J t + A (1 - t), t = exp(-beta d), as in ``make_synthetic.add_haze``,
but where that one uses a grey airlight, one beta and a depth that is mostly a vertical ramp:
- the airlight is coloured: a slightly blue (clear-sky haze) or yellow (smog, dust) tint;
- the depth comes partly from the scene: a blurred map of brightness minus saturation (the
  colour attenuation prior of Zhu, Mai and Shao 2015: hazy, distant regions are bright and
  unsaturated), mixed with a ground plane receding in a random direction and a horizon at a
  random height, above which everything is far;
- beta varies smoothly over the image (patchy haze);
- sensor noise (read noise plus signal-dependent shot noise) is added after the haze.
Everything is drawn from the ``numpy.random.Generator`` passed in, so a seed fixes the result.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from datasets.rain_renderer2 import smooth_field

RENDERER_NAME = "renderer2"
TINTS = ("blue", "yellow", "neutral")
# Per-channel airlight factors of a tint of strength s (R, G, B).
_TINT_DIRECTIONS = {"blue": (-1.0, -0.3, 1.0), "yellow": (0.6, 0.4, -1.0), "neutral": (0.0, 0.0, 0.0)}


def scene_depth(img: np.ndarray) -> np.ndarray:
    """Depth cue in [0, 1] from the image: blurred (brightness - saturation), far where high."""
    value = img.max(axis=2)
    saturation = (value - img.min(axis=2)) / np.maximum(value, 1e-3)
    sigma = 0.08 * min(img.shape[:2])
    cue = gaussian_filter(value - saturation, sigma, mode="reflect")
    cue = cue - cue.min()
    return cue / max(float(cue.max()), 1e-8)


def _normalise(x: np.ndarray) -> np.ndarray:
    x = x - x.min()
    return x / max(float(x.max()), 1e-8)


def depth_map(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Scene cue, a receding plane and a horizon, mixed with random weights; [0, 1], 1 far."""
    height, width = img.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    direction = float(rng.uniform(0.0, 2.0 * np.pi))
    plane = _normalise(np.cos(direction) * ys / height + np.sin(direction) * xs / width)
    horizon_at = float(rng.uniform(0.15, 0.65))
    softness = float(rng.uniform(0.03, 0.12))
    horizon = 1.0 / (1.0 + np.exp((ys / height - horizon_at) / softness))  # 1 above the horizon
    weights = rng.dirichlet((2.0, 1.0, 1.0))
    depth = _normalise(weights[0] * scene_depth(img) + weights[1] * plane + weights[2] * horizon)
    return depth, {"depth_weights": {"scene": float(weights[0]), "plane": float(weights[1]),
                                     "horizon": float(weights[2])},
                   "plane_direction": direction, "horizon": horizon_at}


def add_haze2(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Haze on an HxWx3 float image in [0, 1]; the hazy image (float32) and the parameters drawn."""
    if img.ndim != 3 or img.shape[2] != 3 or not np.issubdtype(img.dtype, np.floating):
        raise ValueError(f"expected an HxWx3 float image in [0, 1], got {img.dtype} {img.shape}")
    depth, depth_params = depth_map(img, rng)
    beta = float(rng.uniform(0.7, 2.0))
    patchiness = float(rng.uniform(0.15, 0.4))
    beta_map = beta * (1.0 + patchiness * (2.0 * smooth_field(img.shape[:2], rng, cells=3) - 1.0))
    transmission = np.exp(-beta_map * depth)[..., None]
    tint = TINTS[int(rng.integers(len(TINTS) - 1))] if rng.random() < 0.85 else "neutral"
    strength = float(rng.uniform(0.03, 0.1)) if tint != "neutral" else 0.0
    level = float(rng.uniform(0.7, 0.95))
    airlight = np.clip(level * (1.0 + strength * np.array(_TINT_DIRECTIONS[tint])), 0.0, 1.0)
    out = img * transmission + airlight * (1.0 - transmission)
    read_noise = float(rng.uniform(0.002, 0.008))
    shot_gain = float(rng.uniform(0.00005, 0.0003))
    noise = rng.standard_normal(out.shape) * np.sqrt(read_noise**2 + shot_gain * np.clip(out, 0.0, 1.0))
    params = {"renderer": RENDERER_NAME, "beta": beta, "beta_patchiness": patchiness, "A": airlight.tolist(),
              "tint": tint, "tint_strength": strength, "read_noise": read_noise, "shot_gain": shot_gain,
              "t_min": float(transmission.min()), "t_mean": float(transmission.mean()), **depth_params}
    return np.clip(out + noise, 0.0, 1.0).astype(np.float32), params
