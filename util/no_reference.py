"""No-reference image quality: NIQE and PIQE, for photos that have no clean ground truth.

Both are lower-is-better and follow their MATLAB definitions (docs/METHODS.md, section 5):

- NIQE (Mittal, Soundararajan and Bovik, "Making a 'completely blind' image quality
  analyzer", IEEE SPL 2013): the distance between a multivariate Gaussian fitted to
  natural-scene statistics of the image's 96 x 96 blocks (at full and half resolution) and
  the model of pristine photos. The pristine model is the official one, read from
  `util/data/niqe_pris_params.npz` (see util/data/README.md for its source and licence);
  nothing is fitted here. Needs at least two 96-px blocks (e.g. 192 x 96 pixels).
- PIQE (Venkatanath et al., NCC 2015): the share of spatially active 16 x 16 blocks that
  show blockiness or noise, 0-100. Needs no model.

Both score the luminance of an HxWx3 uint8 image: NIQE the BT.601 Y channel (as the
deraining literature reports it), PIQE MATLAB's rgb2gray.
"""
from __future__ import annotations

import math
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.ndimage import correlate
from scipy.special import gamma

from util.image_io import IMG_EXTENSIONS
from util.metrics import MetricsError, images_by_stem, load_scored, rgb_to_y
from util.reporting import column_means

NO_REFERENCE_METRICS = ("niqe", "piqe")
NIQE_BLOCK = 96
PIQE_BLOCK = 16
PRISTINE_PARAMS = Path(__file__).resolve().parent / "data" / "niqe_pris_params.npz"

# AGGD shape parameters searched when fitting (the MATLAB release's grid).
_ALPHAS = np.arange(0.2, 10.001, 0.001)
_RHO = gamma(2 / _ALPHAS) ** 2 / (gamma(1 / _ALPHAS) * gamma(3 / _ALPHAS))
# Neighbour offsets of the paired products: horizontal, vertical, two diagonals.
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


@lru_cache(maxsize=1)
def pristine_model() -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance) of the 36 NIQE features over the pristine photos."""
    with np.load(PRISTINE_PARAMS) as params:
        return params["mu_pris_param"].ravel(), params["cov_pris_param"]


def gaussian_window(size: int = 7, sigma: float = 7 / 6) -> np.ndarray:
    """MATLAB's fspecial('gaussian', size, sigma): normalised to sum 1."""
    x = np.arange(size) - (size - 1) / 2
    window = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * sigma**2))
    return window / window.sum()


def mscn(image: np.ndarray) -> np.ndarray:
    """Mean-subtracted, contrast-normalised coefficients (local Gaussian statistics, C = 1)."""
    window = gaussian_window()
    mu = correlate(image, window, mode="nearest")
    sigma = np.sqrt(np.abs(correlate(image * image, window, mode="nearest") - mu * mu))
    return (image - mu) / (sigma + 1)


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    return ((1.5 * ax**3 - 2.5 * ax**2 + 1) * (ax <= 1)
            + (-0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


def _resize_axis(image: np.ndarray, scale: float, axis: int) -> np.ndarray:
    """MATLAB imresize along one axis: bicubic, antialiased when shrinking, mirrored borders."""
    length = image.shape[axis]
    out_length = math.ceil(length * scale)
    kernel_scale = min(scale, 1.0)  # a wider kernel when shrinking is the antialiasing
    width = 4 / kernel_scale
    centre = np.arange(1, out_length + 1) / scale + 0.5 * (1 - 1 / scale)
    first = np.floor(centre - width / 2)
    taps = first[:, None] + np.arange(math.ceil(width) + 2)[None, :]
    weights = kernel_scale * _cubic(kernel_scale * (centre[:, None] - taps))
    weights /= weights.sum(axis=1, keepdims=True)
    mirrored = np.concatenate([np.arange(length), np.arange(length)[::-1]])
    sources = mirrored[(taps.astype(int) - 1) % (2 * length)]
    gathered = np.take(image, sources, axis=axis)  # axis becomes (out_length, taps)
    moved = np.moveaxis(gathered, (axis, axis + 1), (-2, -1))
    return np.moveaxis((moved * weights).sum(axis=-1), -1, axis)


def imresize(image: np.ndarray, scale: float) -> np.ndarray:
    """A 2-D float image resized by `scale` as MATLAB's imresize(image, scale) does (bicubic)."""
    return _resize_axis(_resize_axis(image, scale, 0), scale, 1)


def _nearest(increasing: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Index of the closest entry of an increasing array to each value (the first on a tie),
    what an argmin of squared differences gives, without the len(values) x len(array) table."""
    right = np.clip(np.searchsorted(increasing, values), 1, len(increasing) - 1)
    left = right - 1
    return np.where(values - increasing[left] <= increasing[right] - values, left, right)


def aggd_fit(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Asymmetric generalised Gaussian fit of each row: (shape alpha, left scale, right scale).

    Moment matching over the grid `_ALPHAS`, as the NIQE/BRISQUE releases do. A row with no
    negative (or no positive) value gives NaN, which the pooling leaves out.
    """
    square = samples * samples
    negative, positive = samples < 0, samples > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        left = np.sqrt((square * negative).sum(1) / negative.sum(1))
        right = np.sqrt((square * positive).sum(1) / positive.sum(1))
        ratio = left / right
        r_hat = np.abs(samples).mean(1) ** 2 / square.mean(1)
        r_norm = r_hat * (ratio**3 + 1) * (ratio + 1) / (ratio**2 + 1) ** 2
    alpha = np.where(np.isfinite(r_norm), _ALPHAS[_nearest(_RHO, np.nan_to_num(r_norm))], np.nan)
    spread = np.sqrt(gamma(1 / alpha) / gamma(3 / alpha))
    return alpha, left * spread, right * spread


def _block_features(coefficients: np.ndarray, block: int) -> np.ndarray:
    """The 18 NIQE features of each `block` x `block` tile of an MSCN map: the AGGD of the
    coefficients (shape, mean scale) and, for each neighbour direction, of their products
    with the neighbour (shape, mean, left and right scales). Rows in row-major tile order."""
    rows, cols = coefficients.shape[0] // block, coefficients.shape[1] // block
    tiles = (coefficients[:rows * block, :cols * block]
             .reshape(rows, block, cols, block).swapaxes(1, 2).reshape(-1, block, block))
    alpha, left, right = aggd_fit(tiles.reshape(len(tiles), -1))
    features = [alpha, (left + right) / 2]
    for shift in _SHIFTS:
        # The neighbour wraps around inside the tile, as MATLAB's circshift does.
        products = tiles * np.roll(tiles, shift, axis=(1, 2))
        alpha, left, right = aggd_fit(products.reshape(len(tiles), -1))
        mean = (right - left) * gamma(2 / alpha) / gamma(1 / alpha)
        features += [alpha, mean, left, right]
    return np.stack(features, axis=1)


def niqe_of_luma(luma: np.ndarray) -> float:
    """NIQE of a 2-D luminance image on the 0-255 scale."""
    rows, cols = luma.shape[0] // NIQE_BLOCK, luma.shape[1] // NIQE_BLOCK
    if rows * cols < 2:
        raise ValueError(f"NIQE needs at least two {NIQE_BLOCK}x{NIQE_BLOCK} blocks (e.g. {2 * NIQE_BLOCK}x"
                         f"{NIQE_BLOCK} pixels); got {luma.shape[1]}x{luma.shape[0]}")
    image = luma[:rows * NIQE_BLOCK, :cols * NIQE_BLOCK].astype(np.float64)
    full = _block_features(mscn(image), NIQE_BLOCK)
    half = _block_features(mscn(imresize(image / 255.0, 0.5) * 255.0), NIQE_BLOCK // 2)
    features = np.concatenate([full, half], axis=1)
    complete = features[~np.isnan(features).any(axis=1)]
    if len(complete) < 2:
        raise ValueError("NIQE: fewer than two blocks have texture to fit (a flat image?)")
    mu_pristine, cov_pristine = pristine_model()
    difference = mu_pristine - np.nanmean(features, axis=0)
    pooled = (cov_pristine + np.cov(complete, rowvar=False)) / 2
    return float(np.sqrt(difference @ np.linalg.pinv(pooled) @ difference))


def niqe(image: np.ndarray) -> float:
    """NIQE of an HxWx3 uint8 image, on its BT.601 Y channel rounded to integers (as MATLAB's
    rgb2ycbcr gives for uint8 images). Lower is more natural. Raises ValueError for an image
    smaller than two 96-px blocks."""
    return niqe_of_luma(np.round(rgb_to_y(image)))


def _edge_segments(edges: np.ndarray, window: int) -> np.ndarray:
    """All `window`-long runs of each edge: (..., length) -> (..., length - window + 1, window)."""
    return np.lib.stride_tricks.sliding_window_view(edges, window, axis=-1)


def piqe(image: np.ndarray, activity_threshold: float = 0.1, impaired_threshold: float = 0.1,
         segment: int = 6) -> float:
    """PIQE of an HxWx3 uint8 image, 0 (best) to 100 (worst; also a flat image).

    As MATLAB's piqe: the image is replicate-padded to a multiple of 16, turned grey
    (rgb2gray, rounded), normalised to MSCN coefficients; each 16 x 16 block whose variance
    exceeds `activity_threshold` counts, and adds (1 - variance) when a 6-pixel run of one of
    its edges is nearly flat (std < `impaired_threshold`: blockiness) and its variance when
    its centre and surround deviate like noise. Score = (sum + 1) / (active blocks + 1) * 100.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 image, got shape {image.shape} and dtype {image.dtype}")
    pad = [(0, -image.shape[0] % PIQE_BLOCK), (0, -image.shape[1] % PIQE_BLOCK), (0, 0)]
    padded = np.pad(image, pad, mode="edge").astype(np.float64)
    grey = np.round(padded @ np.array([0.298936021293775, 0.587043074451121, 0.114020904255103]))
    coefficients = mscn(grey)
    rows, cols = grey.shape[0] // PIQE_BLOCK, grey.shape[1] // PIQE_BLOCK
    blocks = coefficients.reshape(rows, PIQE_BLOCK, cols, PIQE_BLOCK).swapaxes(1, 2).reshape(-1, PIQE_BLOCK,
                                                                                           PIQE_BLOCK)
    variance = blocks.reshape(len(blocks), -1).var(axis=1, ddof=1)
    active = variance > activity_threshold

    edges = np.stack([blocks[:, 0, :], blocks[:, :, -1], blocks[:, -1, :], blocks[:, :, 0]], axis=1)
    impaired = (_edge_segments(edges, segment).std(axis=-1, ddof=1) < impaired_threshold).any(axis=(1, 2))

    # Centre: the two middle columns. Surround: MATLAB deletes column 8, then column 9 of what
    # is left (the original column 10), so the original column 9 stays in the surround.
    centre = blocks[:, :, 7:9].reshape(len(blocks), -1).std(axis=1, ddof=1)
    surround_cols = [c for c in range(PIQE_BLOCK) if c not in (7, 9)]
    surround = blocks[:, :, surround_cols].reshape(len(blocks), -1).std(axis=1, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre_surround = np.nan_to_num(centre / surround)
        sigma = np.sqrt(variance)
        beta = np.abs(sigma - centre_surround) / np.maximum(sigma, centre_surround)
    noisy = sigma > 2 * beta
    distortion = (active * impaired * (1 - variance)).sum() + (active * noisy * variance).sum()
    return float((distortion + 1) / (active.sum() + 1) * 100)


def no_reference_scores(image: np.ndarray) -> dict[str, float | None]:
    """{'niqe': ..., 'piqe': ...} of an HxWx3 uint8 image; None where the image is too small."""
    try:
        niqe_score = niqe(image)
    except ValueError:
        niqe_score = None
    return {"niqe": niqe_score, "piqe": piqe(image)}


def score_folder(folder: str | os.PathLike) -> tuple[list[dict], dict]:
    """NIQE and PIQE of every image directly inside `folder`: (rows, mean), rows
    `{name, niqe, piqe}` (name = file stem, NIQE None for images under two 96-px blocks) in
    sorted order, mean `{niqe, piqe, count}`. Raises MetricsError naming an unreadable file."""
    images = images_by_stem(Path(folder))
    if not images:
        raise MetricsError(f"no images in '{folder}' (looked for {', '.join(IMG_EXTENSIONS)})")
    rows = [{"name": stem, **no_reference_scores(load_scored(path))} for stem, path in images.items()]
    return rows, {**column_means(rows, NO_REFERENCE_METRICS), "count": len(rows)}
