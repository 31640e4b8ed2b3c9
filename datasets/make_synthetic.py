"""Synthetic rain / haze datasets from clean photographs (layout, rain model: datasets/README.md).

    python -m datasets.make_synthetic --kind rain --preset varied_heavy --out datasets/rain_heavy
    python -m datasets.make_synthetic --kind haze --out datasets/haze --source my_photos/

Photographs (``--source``): 'embedded' (default) is the 35-photo catalogue of
``datasets/photos.py`` (scikit-image's photographs plus four Debian packages, fetched once
into datasets/photos/), 'suite' its second, disjoint catalogue of 23 (datasets/photos_suite/),
'skimage' the 5 photographs scikit-image bundles, or any folder.

Renderers (``--renderer``): 'default' is this module's rain and haze; 'renderer2' the second
renderers of datasets/rain_renderer2.py and datasets/haze_renderer2.py. ``--max_per_domain N``
builds a small set: at most N crops per training domain.

Split (``--split``):
- 'photos' (default except for 'skimage'): whole photographs are held out for testing (the
  catalogue's 8, or a seeded ``test_fraction`` of a folder), so test scores measure unseen
  scenes. Every other photo is cut in two halves: a seeded coin flip per photo picks the
  half that gives the degraded training crops (trainA); the other gives the clean ones
  (trainB). Test crops are non-overlapping grid cells of the test photos.
- 'stripes' (the layout of the oldest sets): each photo gives a middle test stripe and two outer
  training stripes.
Either way no trainA crop overlaps a trainB crop or a test crop, yet both domains see the
same photographs (colours, lighting, subjects), so an unpaired model cannot pass a colour or
content shift off as deraining. Every box is recorded in ``meta.json`` as
``[top, left, height, width]``.

Rain models (``--preset``): ``varied_light``, ``varied_heavy`` and ``varied_mixed`` draw rain
of several depths from wide ranges (``LayeredRain``); ``light`` and ``heavy`` are fixed-look
presets (one or two streak directions), kept bit-for-bit.

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
from scipy.ndimage import gaussian_filter
from scipy.signal import fftconvolve
from skimage import data as skimage_data
from skimage.transform import resize

if __package__ in (None, ""):
    # Run as a script (python datasets/make_synthetic.py): make the repository importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datasets import haze_renderer2, rain_renderer2
from datasets.photos import SUITE_PHOTOS, PhotoFetchError, fetch_photos, shrink_photo, test_photo_names
from util.image_io import ImageReadError, is_image_file, load_rgb, save_image

log = logging.getLogger(__name__)

KINDS = ("rain", "haze")
# --renderer: 'default' is this module's add_rain / add_haze (the embedded sets); 'renderer2' the
# second renderers of datasets/rain_renderer2.py and datasets/haze_renderer2.py.
DEFAULT_RENDERER = "default"
RENDERERS = (DEFAULT_RENDERER, rain_renderer2.RENDERER_NAME)
SPLIT_DIRS = ("trainA", "trainB", "testA", "testB")
# Random streams of ``default_rng([seed, photo_index, stream])``.
_LAYOUT, _TRAIN_DEGRADE, _TEST_DEGRADE = 0, 1, 2


@dataclass(frozen=True)
class RainPreset:
    """Fixed-look presets: ranges the per-image rain parameters are drawn from, uniformly.

    Kept bit-for-bit under their names (`light`, `heavy`) so earlier datasets can be rebuilt.
    """

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



@dataclass(frozen=True)
class LayeredRain:
    """Rain of several depths, each layer's look drawn from wide ranges (the `varied_*` presets).

    Every layer gets a depth d in [0, 1] (0 = near the camera) that couples its parameters the
    way real rain looks: near streaks are longer, wider, brighter and out of focus (blurred);
    far ones are short, thin, dim and dense. Directions share a wind angle and differ a
    little per layer. Blending is screen (light mixing) or additive, drawn per image, and a
    bright veil of fine mist may be laid over everything.
    """

    layers: tuple[int, int]  # number of depth layers, inclusive range
    density: tuple[float, float]  # fraction of pixels seeding a streak, at middle depth
    length: tuple[float, float]  # streak length in pixels, at middle depth
    angle: float  # |wind angle from vertical|, degrees
    angle_spread: float  # +- degrees of each layer around the wind angle
    width: tuple[float, float]  # Gaussian sigma across a near streak
    blur: tuple[float, float]  # defocus sigma of the nearest layer
    intensity: tuple[float, float]  # peak brightness of a near streak
    screen_probability: float  # chance of screen blending (else additive)
    veil: tuple[float, float]  # opacity of the bright mist


LAYERED_PRESETS = {
    # Rain100L-like and beyond: one or two depths, sparse, thin to medium streaks.
    "varied_light": LayeredRain(
        layers=(1, 2), density=(0.001, 0.003), length=(8.0, 30.0), angle=25.0, angle_spread=6.0,
        width=(0.0, 0.6), blur=(0.0, 1.0), intensity=(0.3, 0.75), screen_probability=0.7, veil=(0.0, 0.04),
    ),
    # Rain100H-like and beyond: two to four depths, dense, long and wide streaks, a veil.
    "varied_heavy": LayeredRain(
        layers=(2, 4), density=(0.0015, 0.004), length=(15.0, 45.0), angle=30.0, angle_spread=10.0,
        width=(0.3, 1.1), blur=(0.0, 1.5), intensity=(0.4, 0.8), screen_probability=0.3, veil=(0.05, 0.22),
    ),
}
# `varied_mixed` draws varied_light or varied_heavy for each image, with equal chance.
MIXED_PRESET = "varied_mixed"
PRESET_NAMES = (*RAIN_PRESETS, *LAYERED_PRESETS, MIXED_PRESET)

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
    if preset not in PRESET_NAMES:
        raise ValueError(f"unknown rain preset {preset!r}; choose one of {sorted(PRESET_NAMES)}")
    _check_float_image(img)
    if preset == MIXED_PRESET:
        preset = "varied_light" if rng.random() < 0.5 else "varied_heavy"
    if preset in LAYERED_PRESETS:
        return _add_layered_rain(img, rng, preset)
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
    out, veil = _blend_rain(img, rain, p.blend == "screen", p.veil, rng)
    params = {"preset": preset, "blend": p.blend, "layers": layers, **veil}
    return out, params


def _blend_rain(img: np.ndarray, rain: np.ndarray, screen: bool, veil_range: tuple[float, float],
                rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Lay the streak map over the image (screen: like light; else additive), then a bright
    veil of opacity drawn from `veil_range`. Returns the image (float32, [0, 1]) and the veil drawn."""
    rain3 = rain[..., None]
    out = 1.0 - (1.0 - img) * (1.0 - rain3) if screen else img + rain3
    veil = float(rng.uniform(*veil_range))
    veil_level = float(rng.uniform(0.75, 0.95)) if veil > 0 else 0.0
    out = out * (1.0 - veil) + veil * veil_level
    return np.clip(out, 0.0, 1.0).astype(np.float32), {"veil": veil, "veil_level": veil_level}


def _add_layered_rain(img: np.ndarray, rng: np.random.Generator, preset: str) -> tuple[np.ndarray, dict]:
    """`LayeredRain`: layers of several depths, blended like light (see the class)."""
    p = LAYERED_PRESETS[preset]
    n_layers = int(rng.integers(p.layers[0], p.layers[1] + 1))
    wind = float(rng.uniform(-p.angle, p.angle))
    rain = np.zeros(img.shape[:2], np.float64)
    layers = []
    for _ in range(n_layers):
        depth = float(rng.uniform(0.0, 1.0))
        layer = {
            "depth": depth,
            "angle": wind + float(rng.uniform(-p.angle_spread, p.angle_spread)),
            "density": float(rng.uniform(*p.density)) * (0.6 + 0.8 * depth),
            "length": float(rng.uniform(*p.length)) * (1.3 - 0.6 * depth),
            "width": float(rng.uniform(*p.width)) * (1.2 - 0.8 * depth),
            "intensity": float(rng.uniform(*p.intensity)) * (1.0 - 0.45 * depth),
            "blur": float(rng.uniform(*p.blur)) * (1.0 - depth),
        }
        streaks = _rain_layer(img.shape[:2], rng, layer["density"], layer["length"], layer["angle"],
                              layer["width"], layer["intensity"])
        if layer["blur"] > 0.05:
            # Out-of-focus rain: softer and dimmer, its energy spread over a wider streak.
            streaks = gaussian_filter(streaks, layer["blur"]) * (1.0 + 0.5 * layer["blur"])
        rain = 1.0 - (1.0 - rain) * (1.0 - np.clip(streaks, 0.0, 1.0))
        layers.append(layer)
    screen = bool(rng.random() < p.screen_probability)
    out, veil = _blend_rain(img, rain, screen, p.veil, rng)
    return out, {"preset": preset, "blend": "screen" if screen else "additive", "layers": layers, **veil}


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


SPLITS = ("photos", "stripes")
# --source values that name a collection rather than a folder.
EMBEDDED, SKIMAGE, SUITE = "embedded", "skimage", "suite"
EMBEDDED_FOLDER = Path(__file__).resolve().parent / "photos"
SUITE_FOLDER = Path(__file__).resolve().parent / "photos_suite"  # the second catalogue, datasets/suite.py's


def load_photos(source: str | Path | None, max_side: int | None) -> list[tuple[str, np.ndarray]]:
    """(name, HxWx3 uint8) for scikit-image's photographs (None or 'skimage'), the embedded
    catalogue ('embedded', fetched once into datasets/photos), the suite's second catalogue
    ('suite', into datasets/photos_suite) or every image in a folder."""
    if source in (None, SKIMAGE):
        photos = [(name, loader()) for name, loader in SKIMAGE_PHOTOS.items()]
    else:
        folder = _catalogue_folder(source)
        if source == EMBEDDED:
            fetch_photos(folder)
        elif source == SUITE:
            fetch_photos(folder, photos=SUITE_PHOTOS)
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
        photos = [(name, shrink_photo(image, max_side)) for name, image in photos]
    return photos


def _catalogue_folder(source: str | Path) -> Path:
    return {EMBEDDED: EMBEDDED_FOLDER, SUITE: SUITE_FOLDER}.get(str(source), Path(source))


def held_out_photos(source: str | Path | None, names: list[str], seed: int, fraction: float) -> set[str]:
    """Photos kept for testing: the catalogue's own choice, else a seeded `fraction` of them."""
    folder = source if source in (None, SKIMAGE) else _catalogue_folder(source)
    listed = test_photo_names(folder) if folder not in (None, SKIMAGE) else None
    if listed is not None:
        return listed & set(names)
    if len(names) < 2:
        raise ValueError("--split photos holds whole photographs out for testing and needs at least 2; "
                         "pass more photos or --split stripes")
    count = min(len(names) - 1, max(1, math.ceil(fraction * len(names))))
    rng = np.random.default_rng([seed, _LAYOUT])
    return set(rng.choice(sorted(names), size=count, replace=False).tolist())


def _random_boxes(region: list[int], size: int, count: int, rng: np.random.Generator) -> list[list[int]]:
    top, left, height, width = region
    tops = top + rng.integers(0, height - size + 1, count)
    lefts = left + rng.integers(0, width - size + 1, count)
    return [[int(t), int(x), size, size] for t, x in zip(tops, lefts)]


def _train_halves(height: int, width: int, rng: np.random.Generator) -> dict:
    """The two halves of a photo (left/right, or top/bottom for a portrait photo), one per domain."""
    if width >= height:
        half = width // 2
        parts = ([0, 0, height, half], [0, half, height, width - half])
    else:
        half = height // 2
        parts = ([0, 0, half, width], [half, 0, height - half, width])
    a_first = rng.random() < 0.5
    return {"trainA": parts[0] if a_first else parts[1], "trainB": parts[1] if a_first else parts[0]}


def _test_grid_boxes(height: int, width: int, test_size: int, count: int, rng: np.random.Generator) -> list:
    """`count` non-overlapping test_size squares from a grid laid over the photo at random."""
    rows, cols = height // test_size, width // test_size
    off_y = int(rng.integers(0, height - rows * test_size + 1))
    off_x = int(rng.integers(0, width - cols * test_size + 1))
    cells = sorted(rng.choice(rows * cols, size=min(count, rows * cols), replace=False).tolist())
    return [[off_y + (c // cols) * test_size, off_x + (c % cols) * test_size, test_size, test_size] for c in cells]


def _plan_stripes(
    height: int, width: int, rng: np.random.Generator, size: int, test_size: int,
    crops_per_image: int, test_per_image: int,
) -> dict:
    """`--split stripes`: regions and crop boxes ``[top, left, height, width]`` of one photograph."""
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
    train_boxes = {domain: _random_boxes(regions[domain], size, crops_per_image, rng)
                   for domain in ("trainA", "trainB")}
    return {"regions": regions, "test": test_boxes, **train_boxes}


def crop_counts(photos: int, crops_per_image: int, max_per_domain: int | None) -> list[int]:
    """Training crops per photo and domain: `crops_per_image` each, or, with `max_per_domain`, at most
    that many in all, shared out as evenly as the photos allow (the first photos get one more)."""
    if max_per_domain is None:
        return [crops_per_image] * photos
    share, extra = divmod(max_per_domain, max(photos, 1))
    return [min(crops_per_image, share + (i < extra)) for i in range(photos)]


def _plan_held_out(
    height: int, width: int, rng: np.random.Generator, size: int, test_size: int,
    crops_per_image: int, test_per_image: int, is_test: bool,
) -> dict:
    """`--split photos`: a test photo gives only test crops, a training photo only training crops."""
    if is_test:
        return {"regions": {"test": [0, 0, height, width]}, "trainA": [], "trainB": [],
                "test": _test_grid_boxes(height, width, test_size, test_per_image, rng)}
    regions = _train_halves(height, width, rng)
    boxes = {domain: _random_boxes(regions[domain], size, crops_per_image, rng) for domain in ("trainA", "trainB")}
    return {"regions": regions, "test": [], **boxes}


def _fits(split: str, height: int, width: int, size: int, test_size: int, is_test: bool) -> str | None:
    """Why a photo is too small for its role, or None."""
    if split == "stripes":
        if width < 2 * size + test_size or height < max(size, test_size):
            return f"needs at least {2 * size + test_size} px wide and {max(size, test_size)} px high " \
                   "for two training stripes and a test stripe"
        return None
    if is_test:
        return None if min(height, width) >= test_size else f"needs at least {test_size} px on each side"
    if max(height, width) < 2 * size or min(height, width) < size:
        return f"needs {2 * size} x {size} px for its two training halves"
    return None


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


SPLIT_DESCRIPTIONS = {
    "stripes": "per photo: middle stripe (test_size wide) -> paired test crops; one outer stripe (seeded coin "
               "flip) -> degraded trainA crops, the other -> clean trainB crops; boxes are [top, left, height, width]",
    "photos": "test photos (listed in 'test_photos') give only paired test crops (non-overlapping grid cells); "
              "every other photo gives degraded trainA crops from one half (seeded coin flip) and clean trainB "
              "crops from the other half; boxes are [top, left, height, width]",
}


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
    split: str = "stripes",
    test_fraction: float = 0.2,
    paired: bool = False,
    renderer: str = DEFAULT_RENDERER,
    max_per_domain: int | None = None,
) -> dict:
    """Write trainA/trainB/testA/testB PNGs and ``meta.json`` under ``out_dir``.

    ``kind`` 'rain' uses ``preset`` (see PRESET_NAMES); 'haze' ignores it. ``source``: None or
    'skimage' (scikit-image's 5 photographs), 'embedded' (the 35-photo catalogue of
    datasets/photos.py) or a folder of photographs; each is shrunk to at most ``max_side``.
    ``split`` 'stripes' cuts every photo into train / test stripes; 'photos' holds whole
    photographs out for testing (the catalogue's choice, else a seeded ``test_fraction``).
    Photos too small for their role are skipped with a warning. ``paired`` writes the clean
    version of every trainA crop to trainB under the same name (a supervised set for
    `--model paired`, the upper bound of the unpaired models) instead of independent crops.
    ``renderer`` 'renderer2' draws rain / haze with datasets/rain_renderer2.py /
    haze_renderer2.py instead (``preset`` is then ignored). ``max_per_domain`` caps trainA and
    trainB at that many crops each (a small set), shared out over the training photos.
    Returns the metadata written.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of {KINDS}")
    if kind == "rain" and preset not in PRESET_NAMES:
        raise ValueError(f"unknown rain preset {preset!r}; choose one of {sorted(PRESET_NAMES)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
    if renderer not in RENDERERS:
        raise ValueError(f"unknown renderer {renderer!r}; choose one of {RENDERERS}")
    if max_per_domain is not None and max_per_domain < 1:
        raise ValueError(f"max_per_domain must be >= 1, got {max_per_domain}")
    if min(size, test_size, crops_per_image, test_per_image) < 1:
        raise ValueError("size, test_size, crops_per_image and test_per_image must be >= 1")
    out = Path(out_dir)
    photos = load_photos(source, max_side)
    test_names = held_out_photos(source, [n for n, _ in photos], seed, test_fraction) if split == "photos" else set()
    usable = []
    for name, image in photos:
        problem = _fits(split, *image.shape[:2], size, test_size, name in test_names)
        if problem:
            log.warning("skipping photo '%s' (%dx%d): %s", name, image.shape[1], image.shape[0], problem)
            continue
        usable.append((name, image))
    if not any(name not in test_names for name, _ in usable):
        raise ValueError(f"no photograph is large enough for size={size}, test_size={test_size}")
    _prepare_out_dir(out, overwrite)

    def degrade(clean: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        clean_f = clean.astype(np.float32) / 255.0
        if renderer != DEFAULT_RENDERER:
            return (rain_renderer2.add_rain2 if kind == "rain" else haze_renderer2.add_haze2)(clean_f, rng)
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
        "split": SPLIT_DESCRIPTIONS[split],
        "test_photos": sorted(n for n, _ in usable if n in test_names),
        "paired": paired,
        "photos": [],
        "trainA": [],
        "trainB": [],
        "test": [],
    }
    if renderer != DEFAULT_RENDERER or max_per_domain is not None:  # the embedded sets' meta.json stays as it was
        meta.update(renderer=renderer, max_per_domain=max_per_domain)
        if renderer != DEFAULT_RENDERER:
            meta["preset"] = None
    train_names = [name for name, _ in usable if split == "stripes" or name not in test_names]
    counts = dict(zip(train_names, crop_counts(len(train_names), crops_per_image, max_per_domain)))
    for index, (name, image) in enumerate(usable):
        layout_rng = np.random.default_rng([seed, index, _LAYOUT])
        crops = counts.get(name, crops_per_image)
        if split == "stripes":
            plan = _plan_stripes(*image.shape[:2], layout_rng, size, test_size, crops, test_per_image)
        else:
            plan = _plan_held_out(*image.shape[:2], layout_rng, size, test_size, crops, test_per_image,
                                  name in test_names)
        meta["photos"].append(
            {"name": name, "height": image.shape[0], "width": image.shape[1], "regions": plan["regions"]}
        )
        train_rng = np.random.default_rng([seed, index, _TRAIN_DEGRADE])
        for k, box in enumerate(plan["trainA"]):
            degraded, params = degrade(_crop(image, box), train_rng)
            file = f"{name}_a{k:03d}.png"
            save_image(_to_uint8(degraded), out / "trainA" / file)
            meta["trainA"].append({"file": file, "photo": name, "box": box, "params": params})
            if paired:
                save_image(np.ascontiguousarray(_crop(image, box)), out / "trainB" / file)
                meta["trainB"].append({"file": file, "photo": name, "box": box})
        for k, box in enumerate([] if paired else plan["trainB"]):
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
    parser.add_argument("--preset", choices=PRESET_NAMES, default="varied_light",
                        help="rain model (rain only): varied_light / varied_heavy / varied_mixed (rain of several "
                             "depths, wide parameter ranges), or light / heavy (Rain100L- / Rain100H-like streaks "
                             "without depths, narrow parameter ranges)")
    parser.add_argument("--renderer", choices=RENDERERS, default=DEFAULT_RENDERER,
                        help="default: this module's rain (--preset) / haze; renderer2: the second renderers "
                             "(datasets/rain_renderer2.py: long, dense, screen-blended streaks, uneven mist; "
                             "datasets/haze_renderer2.py: tinted airlight, depth from the scene, patchy haze, noise)")
    parser.add_argument("--source", default=EMBEDDED,
                        help="'embedded': the 35 photographs of datasets/photos.py (fetched once from Debian "
                             "packages into datasets/photos/); 'suite': the 23 other photographs of the suite's "
                             "held-out conditions (datasets/photos_suite/); 'skimage': scikit-image's 5; or a folder")
    parser.add_argument("--split", choices=SPLITS, default=None,
                        help="photos: hold whole photographs out for testing; stripes: cut every photo into "
                             "train / test stripes. Default: stripes for --source skimage, photos otherwise")
    parser.add_argument("--test_fraction", type=float, default=0.2,
                        help="with --split photos and a folder without photos.json: fraction of photos held out")
    parser.add_argument("--out", required=True, help="dataset root to create (trainA, trainB, testA, testB)")
    parser.add_argument("--size", type=int, default=128, help="side of the square training crops")
    parser.add_argument("--test_size", type=int, default=128, help="side of the square test crops")
    parser.add_argument("--crops_per_image", type=int, default=40, help="training crops per photo and domain")
    parser.add_argument("--test_per_image", type=int, default=3, help="test pairs per test photo (at most)")
    parser.add_argument("--max_per_domain", type=int, default=None,
                        help="a small set: at most this many trainA and trainB crops each, shared out over the "
                             "training photos (at most --crops_per_image per photo)")
    parser.add_argument(
        "--max_side", type=int, default=1024, help="shrink larger photos to this longest side (0: never)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset in --out")
    parser.add_argument("--paired", action="store_true",
                        help="trainB holds the clean version of each trainA crop (same name): supervised data "
                             "for --model paired, the upper bound of the unpaired models")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(levelname)s: %(message)s", level=logging.INFO)
    split = args.split or ("stripes" if args.source == SKIMAGE else "photos")
    try:
        build_dataset(
            args.out, kind=args.kind, preset=args.preset, source=args.source, size=args.size,
            crops_per_image=args.crops_per_image, test_per_image=args.test_per_image,
            seed=args.seed, test_size=args.test_size, max_side=args.max_side,
            overwrite=args.overwrite, split=split, test_fraction=args.test_fraction, paired=args.paired,
            renderer=args.renderer, max_per_domain=args.max_per_domain,
        )
    except (FileExistsError, FileNotFoundError, ValueError, PhotoFetchError) as err:
        log.error("%s", err)
        return 2
    except OSError as err:  # no space left (util.atomic_file.DiskFullError), permissions
        log.error("cannot write the dataset: %s", err)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
