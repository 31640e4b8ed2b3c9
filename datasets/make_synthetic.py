"""Synthetic rain / haze datasets built from the photographs scikit-image bundles (SPEC.md 6).

    python -m datasets.make_synthetic --kind rain --preset light --out datasets/rain_light
    python -m datasets.make_synthetic --kind haze --out datasets/haze --source my_photos/

Split (the same for every photograph, see ``_plan_photo``): each photo is cut into three
vertical stripes. The middle stripe, ``test_size`` pixels wide, gives the paired test crops
(testB = clean crop, testA = the same crop degraded, same file stem; non-overlapping
squares). Of the two outer stripes a seeded coin flip per photo picks the one that gives
the degraded training crops (trainA); the other gives the clean training crops (trainB).
The three stripes share no pixel, so no trainA crop overlaps a trainB crop or a test crop,
yet both domains see the same photographs: the same colours, lighting and subjects.
Every box is recorded in ``meta.json`` as ``[top, left, height, width]``.

Everything is drawn from ``numpy.random.default_rng([seed, photo_index, stream])`` with one
stream per purpose (layout, trainA degradations, test degradations), so a seed fixes the
dataset and changing ``crops_per_image`` leaves the test set untouched.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter
from scipy.signal import fftconvolve
from skimage import data as skimage_data
from skimage.transform import resize

if __package__ in (None, ""):
    # Run as a script (python datasets/make_synthetic.py): make the repository importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from util.image_io import ImageReadError, is_image_file, load_rgb, save_image

log = logging.getLogger(__name__)

KINDS = ("rain", "haze")
SPLIT_DIRS = ("trainA", "trainB", "testA", "testB")
# Random streams of ``default_rng([seed, photo_index, stream])``.
_LAYOUT, _TRAIN_DEGRADE, _TEST_DEGRADE = 0, 1, 2


@dataclass(frozen=True)
class RainPreset:
    """Ranges the per-image rain parameters are drawn from, uniformly."""

    layers: tuple[int, int]  # number of streak directions, inclusive range
    density: tuple[float, float]  # fraction of pixels that seed a streak, per layer
    length: tuple[float, float]  # streak length in pixels
    base_angle: float  # |angle from vertical| of the main direction, degrees
    angle_spread: float  # extra +- degrees for each further layer
    width: tuple[float, float]  # Gaussian sigma across the streak; 0 keeps it 1 px thin
    intensity: tuple[float, float]  # peak streak brightness
    blend: str  # "screen" or "additive"
    veil: tuple[float, float]  # opacity of the bright mist dense rain leaves


RAIN_PRESETS = {
    # Rain100L-like: one direction, sparse, thin, semi-transparent streaks.
    "light": RainPreset(
        layers=(1, 1),
        density=(0.002, 0.004),
        length=(10.0, 22.0),
        base_angle=20.0,
        angle_spread=0.0,
        width=(0.0, 0.3),
        intensity=(0.45, 0.75),
        blend="screen",
        veil=(0.0, 0.0),
    ),
    # Rain100H-like: several directions, dense, longer and wider streaks plus a veil.
    "heavy": RainPreset(
        layers=(2, 3),
        density=(0.0015, 0.003),
        length=(20.0, 40.0),
        base_angle=30.0,
        angle_spread=15.0,
        width=(0.4, 0.8),
        intensity=(0.45, 0.7),
        blend="additive",
        veil=(0.08, 0.2),
    ),
}

# Colour photographs bundled with scikit-image (no download needed). Left out: grayscale
# images, textures, microscopy / medical / astronomy images, and motorcycle_right: it is
# the other view of the stereo pair, so its content overlaps motorcycle_left's test stripe
# (shifted by the disparity) and would leak test content into the training set.
SKIMAGE_PHOTOS = {
    "astronaut": skimage_data.astronaut,
    "chelsea": skimage_data.chelsea,
    "coffee": skimage_data.coffee,
    "rocket": skimage_data.rocket,
    "motorcycle_left": lambda: skimage_data.stereo_motorcycle()[0],
}


def _line_kernel(length: float, angle_deg: float) -> np.ndarray:
    """Anti-aliased line of ``length`` pixels, ``angle_deg`` clockwise from vertical.

    Scaled so a single bright pixel turns into a streak of about the same brightness, with
    ends that fade out like real streaks instead of stopping abruptly.
    """
    size = int(math.ceil(length)) | 1
    kernel = np.zeros((size + 2, size + 2), np.float64)
    centre = (size + 1) / 2.0
    samples = int(math.ceil(length * 4))
    offsets = np.linspace(-(length - 1) / 2.0, (length - 1) / 2.0, samples)
    taper = np.sqrt(np.sin(np.pi * (np.arange(samples) + 0.5) / samples))
    angle = math.radians(angle_deg)
    xs = centre + offsets * math.sin(angle)
    ys = centre + offsets * math.cos(angle)
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    # Bilinear splatting of points spaced a quarter pixel apart.
    for dy, dx, weight in (
        (0, 0, (1 - fy) * (1 - fx)),
        (0, 1, (1 - fy) * fx),
        (1, 0, fy * (1 - fx)),
        (1, 1, fy * fx),
    ):
        np.add.at(kernel, (y0 + dy, x0 + dx), weight * taper)
    return kernel * (length / samples)


def _rain_layer(
    shape: tuple[int, int], rng: np.random.Generator, density: float, length: float,
    angle: float, width: float, intensity: float,
) -> np.ndarray:
    """Streak map in [0, 1]: sparse noise -> motion blur along a line -> intensity scaling."""
    kernel = _line_kernel(length, angle)
    pad = kernel.shape[0] - 1
    # Seeds are drawn on a padded canvas so streaks enter from outside the frame.
    seeds = rng.random((shape[0] + pad, shape[1] + pad)) < density
    noise = seeds * rng.uniform(0.6, 1.0, seeds.shape)
    streaks = fftconvolve(noise, kernel, mode="valid")
    if width > 0:
        # Blurring widens the streak but dims it; the gain roughly restores its peak.
        streaks = gaussian_filter(streaks, width) * (1.0 + width)
    return np.clip(streaks * intensity, 0.0, 1.0)


def add_rain(
    img: np.ndarray, rng: np.random.Generator, preset: str = "light"
) -> tuple[np.ndarray, dict]:
    """Add synthetic rain streaks to an HxWx3 float32 image in [0, 1].

    Returns the rainy image (float32, [0, 1]) and the parameters drawn for it.
    """
    if preset not in RAIN_PRESETS:
        raise ValueError(f"unknown rain preset {preset!r}; choose one of {sorted(RAIN_PRESETS)}")
    _check_float_image(img)
    p = RAIN_PRESETS[preset]
    n_layers = int(rng.integers(p.layers[0], p.layers[1] + 1))
    base_angle = float(rng.uniform(-p.base_angle, p.base_angle))
    rain = np.zeros(img.shape[:2], np.float64)
    layers = []
    for i in range(n_layers):
        layer = {
            "angle": base_angle + (float(rng.uniform(-p.angle_spread, p.angle_spread)) if i else 0.0),
            "density": float(rng.uniform(*p.density)),
            "length": float(rng.uniform(*p.length)),
            "width": float(rng.uniform(*p.width)),
            "intensity": float(rng.uniform(*p.intensity)),
        }
        streaks = _rain_layer(img.shape[:2], rng, **layer)
        rain = 1.0 - (1.0 - rain) * (1.0 - streaks)  # layers overlap like light, never > 1
        layers.append(layer)
    rain3 = rain[..., None]
    if p.blend == "screen":
        out = 1.0 - (1.0 - img) * (1.0 - rain3)
    else:
        out = img + rain3
    veil = float(rng.uniform(*p.veil))
    veil_level = float(rng.uniform(0.75, 0.95)) if veil > 0 else 0.0
    out = out * (1.0 - veil) + veil * veil_level
    params = {
        "preset": preset,
        "blend": p.blend,
        "layers": layers,
        "veil": veil,
        "veil_level": veil_level,
    }
    return np.clip(out, 0.0, 1.0).astype(np.float32), params


def _depth_proxy(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Smooth pseudo-depth in [0, 1]: far at the top, plus low-frequency undulation."""
    height, width = shape
    gradient = np.linspace(1.0, 0.0, height)[:, None] * np.ones((1, width))
    coarse = rng.random((4, 4))
    undulation = resize(coarse, shape, order=3, mode="reflect", anti_aliasing=False)
    depth = 0.65 * gradient + 0.35 * undulation
    depth -= depth.min()
    return depth / max(depth.max(), 1e-8)


def add_haze(
    img: np.ndarray,
    rng: np.random.Generator,
    beta_range: tuple[float, float] = (0.6, 1.8),
    A_range: tuple[float, float] = (0.7, 1.0),
) -> tuple[np.ndarray, dict]:
    """Atmospheric scattering model I = J t + A (1 - t), t = exp(-beta d), d a depth proxy.

    ``img`` is HxWx3 float32 in [0, 1]; returns the hazy image and the parameters drawn.
    """
    _check_float_image(img)
    beta = float(rng.uniform(*beta_range))
    airlight = float(rng.uniform(*A_range))
    depth = _depth_proxy(img.shape[:2], rng)
    transmission = np.exp(-beta * depth)[..., None]
    out = img * transmission + airlight * (1.0 - transmission)
    params = {
        "beta": beta,
        "A": airlight,
        "t_min": float(transmission.min()),
        "t_mean": float(transmission.mean()),
    }
    return np.clip(out, 0.0, 1.0).astype(np.float32), params


def _check_float_image(img: np.ndarray) -> None:
    if img.ndim != 3 or img.shape[2] != 3 or not np.issubdtype(img.dtype, np.floating):
        raise ValueError(f"expected an HxWx3 float image in [0, 1], got {img.dtype} {img.shape}")


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def load_photos(source: str | Path | None, max_side: int | None) -> list[tuple[str, np.ndarray]]:
    """(name, HxWx3 uint8) for the bundled photographs or every image in ``source``."""
    if source is None:
        photos = [(name, loader()) for name, loader in SKIMAGE_PHOTOS.items()]
    else:
        folder = Path(source)
        if not folder.is_dir():
            raise FileNotFoundError(f"--source '{folder}' is not a folder of photographs")
        photos = []
        for path in sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p)):
            try:
                photos.append((path.stem, np.asarray(load_rgb(path))))
            except ImageReadError as err:
                log.warning("skipping %s", err)
        if not photos:
            raise FileNotFoundError(f"no readable images in --source '{folder}'")
    if max_side:
        photos = [(name, _limit_size(image, max_side)) for name, image in photos]
    return photos


def _limit_size(image: np.ndarray, max_side: int) -> np.ndarray:
    height, width = image.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1.0:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))


def _plan_photo(
    height: int, width: int, rng: np.random.Generator, size: int, test_size: int,
    crops_per_image: int, test_per_image: int,
) -> dict:
    """Regions and crop boxes ``[top, left, height, width]`` of one photograph."""
    side = (width - test_size) // 2
    right = side + test_size
    stripes = {"left": [0, 0, height, side], "right": [0, right, height, width - right]}
    a_side = "left" if rng.random() < 0.5 else "right"
    regions = {
        "trainA": stripes[a_side],
        "trainB": stripes["right" if a_side == "left" else "left"],
        "test": [0, side, height, test_size],
    }
    slots = height // test_size
    chosen = sorted(rng.choice(slots, size=min(test_per_image, slots), replace=False).tolist())
    offset = int(rng.integers(0, height - slots * test_size + 1))
    test_boxes = [[offset + s * test_size, side, test_size, test_size] for s in chosen]
    train_boxes = {}
    for domain in ("trainA", "trainB"):
        _, left, _, region_width = regions[domain]
        tops = rng.integers(0, height - size + 1, crops_per_image)
        lefts = left + rng.integers(0, region_width - size + 1, crops_per_image)
        train_boxes[domain] = [[int(t), int(x), size, size] for t, x in zip(tops, lefts)]
    return {"regions": regions, "test": test_boxes, **train_boxes}


def _crop(image: np.ndarray, box: list[int]) -> np.ndarray:
    top, left, height, width = box
    return image[top : top + height, left : left + width]


def _prepare_out_dir(out: Path, overwrite: bool) -> None:
    existing = [out / d for d in SPLIT_DIRS if (out / d).is_dir() and any((out / d).iterdir())]
    if existing and not overwrite:
        raise FileExistsError(
            f"'{existing[0]}' already holds files; pass overwrite=True (--overwrite) to replace "
            f"the dataset in '{out}' or choose another output folder"
        )
    for d in SPLIT_DIRS:
        shutil.rmtree(out / d, ignore_errors=True)
        (out / d).mkdir(parents=True)


def build_dataset(
    out_dir: str | Path,
    kind: str = "rain",
    preset: str = "light",
    source: str | Path | None = None,
    size: int = 128,
    crops_per_image: int = 40,
    test_per_image: int = 3,
    seed: int = 0,
    test_size: int = 128,
    max_side: int | None = 1024,
    overwrite: bool = False,
) -> dict:
    """Write trainA/trainB/testA/testB PNGs and ``meta.json`` under ``out_dir``.

    ``kind`` 'rain' uses ``preset`` ('light' / 'heavy'); 'haze' ignores it. ``source`` is a
    folder of photographs (default: the scikit-image photographs), each shrunk to at most
    ``max_side`` pixels. Photos narrower than ``2 * size + test_size`` or lower than
    ``max(size, test_size)`` are skipped with a warning. Returns the metadata written.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of {KINDS}")
    if kind == "rain" and preset not in RAIN_PRESETS:
        raise ValueError(f"unknown rain preset {preset!r}; choose one of {sorted(RAIN_PRESETS)}")
    if min(size, test_size, crops_per_image, test_per_image) < 1:
        raise ValueError("size, test_size, crops_per_image and test_per_image must be >= 1")
    out = Path(out_dir)
    photos = load_photos(source, max_side)
    usable = []
    for name, image in photos:
        height, width = image.shape[:2]
        if width < 2 * size + test_size or height < max(size, test_size):
            log.warning(
                "skipping photo '%s' (%dx%d): needs at least %d px wide and %d px high for "
                "two training stripes and a test stripe", name, width, height,
                2 * size + test_size, max(size, test_size),
            )
            continue
        usable.append((name, image))
    if not usable:
        raise ValueError(f"no photograph is large enough for size={size}, test_size={test_size}")
    _prepare_out_dir(out, overwrite)

    def degrade(clean: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        clean_f = clean.astype(np.float32) / 255.0
        if kind == "rain":
            return add_rain(clean_f, rng, preset)
        return add_haze(clean_f, rng)

    meta = {
        "kind": kind,
        "preset": preset if kind == "rain" else None,
        "seed": seed,
        "size": size,
        "test_size": test_size,
        "crops_per_image": crops_per_image,
        "test_per_image": test_per_image,
        "source": str(source) if source is not None else "skimage.data",
        "max_side": max_side,
        "split": (
            "per photo: middle stripe (test_size wide) -> paired test crops; one outer "
            "stripe (seeded coin flip) -> degraded trainA crops, the other -> clean trainB "
            "crops; boxes are [top, left, height, width]"
        ),
        "photos": [],
        "trainA": [],
        "trainB": [],
        "test": [],
    }
    for index, (name, image) in enumerate(usable):
        plan = _plan_photo(
            image.shape[0], image.shape[1], np.random.default_rng([seed, index, _LAYOUT]),
            size, test_size, crops_per_image, test_per_image,
        )
        meta["photos"].append(
            {"name": name, "height": image.shape[0], "width": image.shape[1], "regions": plan["regions"]}
        )
        train_rng = np.random.default_rng([seed, index, _TRAIN_DEGRADE])
        for k, box in enumerate(plan["trainA"]):
            degraded, params = degrade(_crop(image, box), train_rng)
            file = f"{name}_a{k:03d}.png"
            save_image(_to_uint8(degraded), out / "trainA" / file)
            meta["trainA"].append({"file": file, "photo": name, "box": box, "params": params})
        for k, box in enumerate(plan["trainB"]):
            file = f"{name}_b{k:03d}.png"
            save_image(np.ascontiguousarray(_crop(image, box)), out / "trainB" / file)
            meta["trainB"].append({"file": file, "photo": name, "box": box})
        test_rng = np.random.default_rng([seed, index, _TEST_DEGRADE])
        for k, box in enumerate(plan["test"]):
            clean = np.ascontiguousarray(_crop(image, box))
            degraded, params = degrade(clean, test_rng)
            file = f"{name}_t{k}.png"
            save_image(clean, out / "testB" / file)
            save_image(_to_uint8(degraded), out / "testA" / file)
            meta["test"].append({"file": file, "photo": name, "box": box, "params": params})
    with open(out / "meta.json", "w") as fh:
        json.dump(meta, fh, indent=1)
    log.info(
        "wrote %d trainA, %d trainB and %d test pairs from %d photos to %s",
        len(meta["trainA"]), len(meta["trainB"]), len(meta["test"]), len(usable), out,
    )
    return meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build a synthetic unpaired rain / haze dataset.")
    parser.add_argument("--kind", choices=KINDS, default="rain")
    parser.add_argument("--preset", choices=sorted(RAIN_PRESETS), default="light", help="rain strength (rain only)")
    parser.add_argument("--source", help="folder of clean photographs (default: scikit-image's photographs)")
    parser.add_argument("--out", required=True, help="dataset root to create (trainA, trainB, testA, testB)")
    parser.add_argument("--size", type=int, default=128, help="side of the square training crops")
    parser.add_argument("--test_size", type=int, default=128, help="side of the square test crops")
    parser.add_argument("--crops_per_image", type=int, default=40, help="training crops per photo and domain")
    parser.add_argument("--test_per_image", type=int, default=3, help="test pairs per photo (at most)")
    parser.add_argument(
        "--max_side", type=int, default=1024, help="shrink larger photos to this longest side (0: never)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset in --out")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(levelname)s: %(message)s", level=logging.INFO)
    try:
        build_dataset(
            args.out, kind=args.kind, preset=args.preset, source=args.source, size=args.size,
            crops_per_image=args.crops_per_image, test_per_image=args.test_per_image,
            seed=args.seed, test_size=args.test_size, max_side=args.max_side,
            overwrite=args.overwrite,
        )
    except (FileExistsError, FileNotFoundError, ValueError) as err:
        log.error("%s", err)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
