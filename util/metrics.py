"""PSNR and SSIM as the deraining / dehazing papers report them, and the deraining and
dehazing diagnostics that PSNR hides (docs/METHODS.md, section 5).

Deraining papers score the Y channel of YCbCr (BT.601, MATLAB's ``rgb2ycbcr``), dehazing
papers score RGB; both with data range 255 and Wang et al.'s Gaussian-window SSIM.

Y is kept as float64 and never rounded to 8 bits: the MATLAB scripts that produced the
published tables convert with ``im2double`` first, so ``rgb2ycbcr`` returns floats there too.
Rounding Y would shift PSNR by up to a few hundredths of a dB on clean restorations.

PSNR averages errors over the whole image, so leftover streaks and dark blotches on a few
per cent of the pixels barely move it. Two diagnostics, in Y levels, count them:

- rain residue: of the brightness the rain added (pixels where the rainy input's Y exceeds
  the ground truth's by more than RAIN_LEVELS = 15), the share still in the output,
  clip((out - gt) / (input - gt), 0, 1) averaged over those pixels: 1 untouched, 0 gone;
  None for an image without such pixels.
- dark artifacts: the share of all pixels that the output makes darker than both the input
  and the ground truth by more than DARK_LEVELS = 20, counted where the ground truth is flat
  (its standard deviation of Y in a FLAT_WINDOW = 7 square, borders reflected, under
  FLAT_STD_LEVELS = 6): blotches and dark ghosts of over-subtracted streaks.

Dehazing is scored on RGB, with two diagnostics:

- CIEDE2000: the mean colour difference (CIE 2000 formula on CIELAB, D65) between output
  and ground truth per pixel; a global colour cast raises it where PSNR stays fair.
- residual haze: the output's mean dark channel (HAZE_PATCH = 15-pixel patches, the dark
  channel prior's) minus the ground truth's, in 8-bit levels. 0: as clear as the ground
  truth; the hazy input's value is the haze there was to remove; below 0: over-dehazed.
"""
from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import numpy as np
from scipy.ndimage import uniform_filter
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import structural_similarity

from util.dark_channel import dark_channel
from util.image_io import IMG_EXTENSIONS, ImageReadError, is_image_file, load_rgb
from util.reporting import column_means, present

log = logging.getLogger(__name__)

CHANNELS = ("y", "rgb")
TASKS = ("rain", "haze")  # which diagnostics evaluate_folders adds when it has the inputs
HAZE_COLUMNS = ("ciede2000", "residual_haze", "input_residual_haze")  # haze_scores' keys
DATA_RANGE = 255.0
SSIM_SIGMA = 1.5
# skimage's Gaussian window for sigma 1.5 is 11 x 11 (truncated at 3.5 sigma).
SSIM_WINDOW = 2 * int(3.5 * SSIM_SIGMA + 0.5) + 1

# The diagnostics' thresholds, in Y levels of rgb_to_y (defined in the module docstring).
RAIN_LEVELS = 15.0  # input brighter than the ground truth by more: a rain pixel
DARK_LEVELS = 20.0  # output darker than input and ground truth by more: a dark pixel
RAIN_LEFT = 0.8  # a mean rain residue at least this: most of the rain is still in the outputs
FLAT_WINDOW = 7  # side of the square in which the ground truth's flatness is measured
FLAT_STD_LEVELS = 6.0  # local standard deviation under which the ground truth is flat
HAZE_PATCH = 15  # side of the dark channel's patch in the residual haze (the dark channel prior's)


class MetricsError(ValueError):
    """A folder pair cannot be scored; the message names the offending file."""


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """BT.601 luma of an HxWx3 uint8 image, as float64 on the 16..235 scale."""
    _check_rgb_uint8(img, "image")
    rgb = img.astype(np.float64) / 255.0
    return 16.0 + 65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]


def psnr(pred: np.ndarray, gt: np.ndarray, channel: str = "y", crop_border: int = 0) -> float:
    """Peak signal-to-noise ratio in dB (data range 255); ``inf`` for identical images."""
    a, b = _prepare(pred, gt, channel, crop_border)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(DATA_RANGE**2 / mse)


def ssim(pred: np.ndarray, gt: np.ndarray, channel: str = "y", crop_border: int = 0) -> float:
    """Gaussian-window SSIM (sigma 1.5, K1 0.01, K2 0.03, population covariance)."""
    a, b = _prepare(pred, gt, channel, crop_border)
    if min(a.shape[0], a.shape[1]) < SSIM_WINDOW:
        raise ValueError(
            f"SSIM needs at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels after cropping "
            f"crop_border={crop_border}; got {a.shape[0]}x{a.shape[1]}"
        )
    return float(
        structural_similarity(
            a,
            b,
            gaussian_weights=True,
            sigma=SSIM_SIGMA,
            use_sample_covariance=False,
            data_range=DATA_RANGE,
            channel_axis=2 if channel == "rgb" else None,
        )
    )


def _check_rgb_uint8(img: np.ndarray, what: str) -> None:
    if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3:
        shape = getattr(img, "shape", type(img).__name__)
        raise ValueError(f"{what} must be an HxWx3 array, got shape {shape}")
    if img.dtype != np.uint8:
        raise ValueError(f"{what} must be uint8 (0..255), got dtype {img.dtype}")


class CropBorderError(ValueError):
    """--crop_border leaves no pixel of an image: no score can exist, so the run is refused."""


def check_crop_border(crop_border: int, height: int, width: int, name: str = "") -> None:
    """Raise `CropBorderError` when cutting `crop_border` pixels off each side leaves nothing
    of a height x width image (`name` names it); shared by evaluate.py and test.py, so that
    both refuse the same value in the same words."""
    if 2 * crop_border >= min(height, width):
        raise CropBorderError(f"--crop_border {crop_border} leaves nothing of the {height}x{width} image"
                              f"{' ' + name if name else ''}: give at most {(min(height, width) - 1) // 2}")


def _prepare(
    pred: np.ndarray, gt: np.ndarray, channel: str, crop_border: int
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a pair, crop the border and convert to the float arrays that are scored."""
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {CHANNELS}, got {channel!r}")
    _check_rgb_uint8(pred, "pred")
    _check_rgb_uint8(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt differ in size: pred {pred.shape}, gt {gt.shape}")
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    check_crop_border(crop_border, *pred.shape[:2])
    if crop_border:
        pred = pred[crop_border:-crop_border, crop_border:-crop_border]
        gt = gt[crop_border:-crop_border, crop_border:-crop_border]
    if channel == "y":
        return rgb_to_y(pred), rgb_to_y(gt)
    return pred.astype(np.float64), gt.astype(np.float64)


def images_by_stem(folder: Path) -> dict[str, Path]:
    """Map file stem -> path for the images directly inside ``folder``."""
    if not folder.is_dir():
        raise MetricsError(f"'{folder}' is not a folder: pass the folder that holds the images")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or not is_image_file(path):
            continue
        if path.stem in found:
            raise MetricsError(
                f"'{path}' and '{found[path.stem]}' share the stem '{path.stem}': "
                "keep one of them so the match is unambiguous"
            )
        found[path.stem] = path
    return found


def load_scored(path: Path) -> np.ndarray:
    """The image as uint8 RGB; an unreadable file is a MetricsError naming it."""
    try:
        return np.asarray(load_rgb(path))
    except ImageReadError as err:
        raise MetricsError(str(err)) from err


def color_shift(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean over R, G, B of |mean of the channel in pred - mean in gt|, in 0-255 units.

    A restoration that removes rain but tints the image scores high here; the deraining
    targets require the output's shift to be no larger than the degraded input's.
    """
    means = pred.reshape(-1, 3).astype(np.float64).mean(axis=0) - gt.reshape(-1, 3).astype(np.float64).mean(axis=0)
    return float(np.abs(means).mean())


def rain_residue(out: np.ndarray, inp: np.ndarray, gt: np.ndarray) -> float | None:
    """The share of the rain's brightness still present in the output: 1 untouched, 0 gone.

    Rain pixels are those where the rainy input's Y exceeds the ground truth's by more than
    RAIN_LEVELS; each keeps clip((out - gt) / (input - gt), 0, 1) of what the rain added, and
    the residue is the mean over them. None when the image has no rain pixel. All three are
    HxWx3 uint8 of one size.
    """
    y_out, y_in, y_gt = _luma_triple(out, inp, gt)
    added = y_in - y_gt
    rain = added > RAIN_LEVELS
    if not rain.any():
        return None
    kept = np.clip((y_out[rain] - y_gt[rain]) / added[rain], 0.0, 1.0)
    return float(kept.mean())


def dark_artifacts(out: np.ndarray, inp: np.ndarray, gt: np.ndarray) -> float:
    """The share of ALL pixels (0-1) that the output makes darker than both the input and the
    ground truth by more than DARK_LEVELS, counted where the ground truth is flat (local
    FLAT_WINDOW x FLAT_WINDOW standard deviation of Y under FLAT_STD_LEVELS): blotches and
    dark ghosts of over-subtracted streaks, which no real scene detail explains there.
    """
    y_out, y_in, y_gt = _luma_triple(out, inp, gt)
    darker = (y_out < y_in - DARK_LEVELS) & (y_out < y_gt - DARK_LEVELS)
    flat = local_std(y_gt, FLAT_WINDOW) < FLAT_STD_LEVELS
    return float(np.mean(darker & flat))


def local_std(y: np.ndarray, size: int) -> np.ndarray:
    """Standard deviation of ``y`` in a size x size box around each pixel (borders reflected)."""
    mean = uniform_filter(y, size, mode="reflect")
    mean_sq = uniform_filter(y * y, size, mode="reflect")
    return np.sqrt(np.maximum(mean_sq - mean * mean, 0.0))


def ciede2000(out: np.ndarray, gt: np.ndarray) -> float:
    """Mean CIEDE2000 colour difference over the pixels of two HxWx3 uint8 images (0: identical;
    about 1 is the smallest difference an observer notices, side by side)."""
    _check_pair(out, gt)
    return float(np.mean(deltaE_ciede2000(rgb2lab(out), rgb2lab(gt))))


def residual_haze(out: np.ndarray, gt: np.ndarray, patch: int = HAZE_PATCH) -> float:
    """The output's mean dark channel minus the ground truth's, in 8-bit levels: 0 as clear as
    the ground truth, positive where haze is left, negative where the output is too dark."""
    _check_pair(out, gt)
    return float(dark_channel(out.astype(np.float64), patch).mean() - dark_channel(gt.astype(np.float64), patch).mean())


def haze_scores(out: np.ndarray, inp: np.ndarray | None, gt: np.ndarray) -> dict[str, float]:
    """The dehazing diagnostics of one restored image: ``ciede2000`` and ``residual_haze`` of the
    output and, with the hazy input, ``input_residual_haze`` (the haze there was to remove)."""
    scores = {"ciede2000": ciede2000(out, gt), "residual_haze": residual_haze(out, gt)}
    if inp is not None:
        scores["input_residual_haze"] = residual_haze(inp, gt)
    return scores


def _check_pair(out: np.ndarray, gt: np.ndarray) -> None:
    _check_rgb_uint8(out, "out")
    _check_rgb_uint8(gt, "gt")
    if out.shape != gt.shape:
        raise ValueError(f"out and gt differ in size: {out.shape}, {gt.shape}")


def _luma_triple(out: np.ndarray, inp: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    for what, img in (("out", out), ("input", inp), ("gt", gt)):
        _check_rgb_uint8(img, what)
    if not out.shape == inp.shape == gt.shape:
        raise ValueError(f"out, input and gt differ in size: {out.shape}, {inp.shape}, {gt.shape}")
    return rgb_to_y(out), rgb_to_y(inp), rgb_to_y(gt)


def evaluate_folders(
    pred_dir: str | os.PathLike,
    gt_dir: str | os.PathLike,
    channel: str = "y",
    crop_border: int = 0,
    input_dir: str | os.PathLike | None = None,
    task: str = "rain",
) -> tuple[list[dict], dict]:
    """Score every image of ``pred_dir`` against the ground truth with the same file stem.

    Returns ``(rows, mean)``: rows ``{name, psnr, ssim, color_shift}`` (name = the file stem)
    in sorted order, and ``{psnr, ssim, color_shift, count}`` averaged over them. The mean PSNR is ``inf`` when
    one restoration is exact. Extra ground-truth files are ignored.

    With ``input_dir`` (the degraded inputs, matched by stem too) rows also hold
    ``rain_residue`` (None for an image without rain pixels) and ``dark_artifacts``, and the
    mean holds ``rain_residue`` over the images that have one (None if none does),
    ``rain_residue_count`` and ``dark_artifacts``. These two use the whole image.
    With ``task="haze"`` the inputs bring the dehazing diagnostics instead (``haze_scores``:
    ``ciede2000``, ``residual_haze``, ``input_residual_haze``, per row and averaged).
    """
    if channel not in CHANNELS:
        raise MetricsError(f"channel must be one of {CHANNELS}, got {channel!r}")
    if task not in TASKS:
        raise MetricsError(f"task must be one of {TASKS}, got {task!r}")
    preds = images_by_stem(Path(pred_dir))
    if not preds:
        raise MetricsError(f"no images in '{pred_dir}' (looked for {', '.join(IMG_EXTENSIONS)})")
    gts = images_by_stem(Path(gt_dir))
    inputs = images_by_stem(Path(input_dir)) if input_dir is not None else None
    rows = []
    for stem, pred_path in preds.items():
        pred = load_scored(pred_path)
        gt = _load_match(pred, pred_path, gts, gt_dir, "ground truth")
        inp = _load_match(pred, pred_path, inputs, input_dir, "input") if inputs is not None else None
        try:
            row = {
                "name": stem,
                "psnr": psnr(pred, gt, channel, crop_border),
                "ssim": ssim(pred, gt, channel, crop_border),
                "color_shift": color_shift(pred, gt),
            }
            if inp is not None and task == "haze":
                row.update(haze_scores(pred, inp, gt))
            elif inp is not None:
                row["rain_residue"] = rain_residue(pred, inp, gt)
                row["dark_artifacts"] = dark_artifacts(pred, inp, gt)
        except ValueError as err:
            raise MetricsError(f"cannot score '{pred_path}': {err}") from err
        log.debug("%s: PSNR %.4f SSIM %.4f", stem, row["psnr"], row["ssim"])
        rows.append(row)
    mean = {
        "psnr": float(np.mean([r["psnr"] for r in rows])),
        "ssim": float(np.mean([r["ssim"] for r in rows])),
        "color_shift": float(np.mean([r["color_shift"] for r in rows])),
        "count": len(rows),
    }
    if inputs is not None and task == "haze":
        mean.update(column_means(rows, HAZE_COLUMNS))
    elif inputs is not None:
        mean.update(column_means(rows, ("rain_residue", "dark_artifacts")))
        mean["rain_residue_count"] = len(present(r["rain_residue"] for r in rows))
    return rows, mean


def _load_match(pred: np.ndarray, pred_path: Path, found: dict[str, Path], folder, what: str) -> np.ndarray:
    """The image of ``found`` with pred's stem, checked to be pred's size; MetricsError naming both."""
    path = found.get(pred_path.stem)
    if path is None:
        raise MetricsError(
            f"no {what} for '{pred_path}': expected a file named '{pred_path.stem}.<ext>' in '{folder}'"
        )
    image = load_scored(path)
    if image.shape != pred.shape:
        raise MetricsError(
            f"size mismatch: '{pred_path}' is {pred.shape[1]}x{pred.shape[0]} but "
            f"'{path}' is {image.shape[1]}x{image.shape[0]} (width x height)"
        )
    return image
