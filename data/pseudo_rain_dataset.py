"""Pseudo rainy pairs rendered from the clean images, with the rain's direction measured on the rainy ones.

For an unpaired rain set (<dataroot>/trainA rainy, <dataroot>/trainB clean) each sample is an
aligned pair (a', b): b a clean training crop, a' the same crop under procedural rain, so that
the restoring generator learns with full supervision what the unpaired GANs have to guess. It is
the rain counterpart of `--dataset_mode pseudo_haze`, and for the same reason: a GAN's rain
generator (the two-stage recipe's G_B) renders a rain unlike the data's (faint, wavy, sparse),
while a renderer that spans every plausible rain teaches the removal of whatever rain comes.

The rain's look is broad rather than a copy of any renderer in datasets/: 1 to 4 planes of
straight streaks, each plane with its own length (3-40 px), width (a cross-section sigma from 0.3
px to `--pseudo_rain_max_width`, 1 by default: wider gained on wide, soft rain and lost on thin
rain, docs/EXPERIMENTS.md 2026-12-08), coverage (log-uniform over a factor of 20), peak opacity
and defocus, laid over the image by addition or by screen blending
(like light), in a near-white colour. What is measured on the data (up to
`--pseudo_rain_calibration` trainA images, util/rain_stats.py's high-pass layer) is
- the direction: each image's dominant streak orientation (structure tensor); an image's rain
  leans anywhere between the 5th and 95th percentiles of those angles widened by `ANGLE_MARGIN`
  degrees, each plane within `PLANE_JITTER` of the image's angle. Images without a dominant
  direction (coherence below `MIN_COHERENCE`) do not count; with fewer than `MIN_DIRECTED` that
  do, the rain leans anywhere within `BROAD_ANGLE` degrees of vertical;
- how much rain there is: the coverage and the opacity of the streaks are scaled until the
  pseudo rainy crops have trainA's high-pass coverage and streak brightness (`match_rain`; a
  warning when they stay more than `CHECK_TOLERANCE` apart). Unmatched, the pairs taught the
  removal of more rain than light rain has: outputs fell below their inputs (docs/EXPERIMENTS.md).
- the veil: a bright mist lifts an image's dark channel; trainA's low dark channel (10th
  percentile, 15-px windows) over the matched pseudo rain's (without a veil) gives the mean
  opacity of trainA's veil, and pseudo veils are drawn up to twice that (`measure_veil`;
  `--pseudo_rain_veil measured`, the default). The median over 7-px windows read dense rain as
  mist (small set: 0.33 for a true mean veil of 0.18; docs/EXPERIMENTS.md, 2026-12-07).
  A fixed largest opacity instead taught every set the same veil: up to 0.3 on unveiled light
  rain, the generator darkened every image, clean ones included, by the average veil.
`--pseudo_rain_veil_unevenness U` makes each veil uneven, its opacity a smooth field between
(1 - u) and (1 + u) times its mean, u drawn up to U per crop (`veil_field`): mist thickens with
depth, and a model taught only even veils lifted one veil everywhere, digging dark areas where
a real veil was thin (docs/EXPERIMENTS.md, 2026-12-08). Off by default.
Sensor noise (`--pseudo_rain_noise`) is off by default.
With probability `--pseudo_identity_share` the pair is (b, b), so that clean images are left alone;
`--pseudo_identity_share_end` makes that probability move linearly to another value by the last
epoch (learn the rain first, then to leave clean images alone); `auto` (train_quick.sh) picks the
end from the budget and the veil, `grown_identity_share`.

The draws come from the sample's own seeded generator, so a resumed run sees the same pairs.
Known limits (docs/EXPERIMENTS.md, 2026-12-06): on light rain the trained generator darkens strong
scene edges in rainy images (0.4 dB under the input), and on rain whose high-pass brightness is
low (wide, blurred streaks) the matched pseudo rain is so faint that L1 keeps the identity.
"""
from __future__ import annotations

import argparse
import logging
import math
import os

import numpy as np
import torch
from scipy.ndimage import gaussian_filter, map_coordinates
from scipy.signal import fftconvolve

from util.dark_channel import dark_channel
from util.image_io import tensor_to_uint8, uint8_to_tensor
from util.rain_stats import LayerStatistics, compare_statistics, rain_layer_y

from .base_dataset import BaseDataset, iterations_per_epoch, last_epoch_of_budget, planned_iterations
from .calibration import calibration_count, calibration_image, spread
from .image_folder import DatasetError, make_dataset
from .pseudo_pair_dataset import share
from .validate import usable_images

logger = logging.getLogger(__name__)

PLANES = (1, 4)  # streak planes per image, inclusive
LENGTH = (3.0, 40.0)  # streak length in pixels
WIDTH = (0.3, 1.0)  # cross-section sigma of a streak, pixels
COVER = (0.005, 0.1)  # share of the pixels a plane's streaks cover (log-uniform): sets the seed density
OPACITY = (0.15, 0.9)  # a plane's brightest streak; each streak draws 30-100 % of it
DEFOCUS = (0.0, 0.8)  # Gaussian blur of a plane, pixels
VEIL_LEVEL = (0.7, 1.0)  # brightness the veil tends to
VEIL_PATCH = 15  # dark-channel window (px) of the veil estimate: wider than most streaks, so rain barely lifts it
VEIL_PERCENTILE = 10  # of an image's dark channel: low, so that dense streaks are not taken for a veil
VEIL_LIMIT = 0.5  # the largest veil opacity a measurement may set
VEIL_GRID = 3  # control points per side of an uneven veil: one swell or thinning across a crop
TINT = 0.05  # largest departure of the rain's colour from white, per channel
ANGLE_MARGIN = 5.0  # degrees added either side of the measured range of directions
PLANE_JITTER = 5.0  # degrees either side of the image's direction, per plane
BROAD_ANGLE = 30.0  # degrees either side of vertical without a measured direction
MAX_ANGLE = 45.0  # the measured range is clipped to this either side of vertical
MIN_COHERENCE = 0.15  # below it an image's streaks are taken to have no dominant direction
MIN_DIRECTED = 3  # images with a dominant direction needed to measure the range
CHECK_TOLERANCE = 0.25  # relative difference of coverage / brightness from trainA's logged as a warning
MATCH_STEPS = 6  # multiplicative steps towards trainA's coverage and brightness
SCALE_LIMITS = (0.2, 8.0)  # bounds of the coverage and opacity scales
DISTRACTOR_GAP = 20.0  # degrees between the rain's range of directions and a distractor's
DISTRACTOR_PLANES = (1, 3)  # planes of distractor lines on a crop that gets them, inclusive
DISTRACTOR_TINT = 0.15  # largest departure of a distractor's colour from a grey, per channel
DISTRACTOR_COVER = 3.0  # coverage scale of a distractor plane: denser than rain, like the edges of a photograph


def streak_kernel(length: float, angle_deg: float, width: float) -> np.ndarray:
    """A straight streak of `length` px at `angle_deg` from vertical (positive leans right at the
    top), with a Gaussian cross-section of sigma `width` and round ends; its peak is 1."""
    half = int(math.ceil(length / 2 + 3 * width)) + 1
    ys, xs = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float64)
    angle = math.radians(angle_deg)
    dy, dx = math.cos(angle), -math.sin(angle)  # downwards along the streak
    along = ys * dy + xs * dx
    across = xs * dy - ys * dx
    beyond = np.clip(np.abs(along) - length / 2, 0.0, None)
    return np.exp(-(across ** 2 + beyond ** 2) / (2 * width ** 2))


def render_streaks(shape: tuple[int, int], rng: np.random.Generator, angles: tuple[float, float],
                   scales: tuple[float, float] = (1.0, 1.0), planes: int | None = None,
                   widths: tuple[float, float] = WIDTH) -> np.ndarray:
    """An HxW streak map in [0, 1] leaning within `angles` (degrees from vertical, low and high),
    the drawn coverage and opacity multiplied by `scales`, in `planes` planes (drawn from `PLANES`
    when None) of streaks whose cross-section sigma is drawn within `widths` (px), overlapping
    like light (screen blending)."""
    height, width = shape
    centre = rng.uniform(*angles)
    rain = np.zeros(shape)
    if planes is None:
        planes = int(rng.integers(PLANES[0], PLANES[1] + 1))
    for _ in range(planes):
        length = rng.uniform(*LENGTH)
        streak_width = rng.uniform(*widths)
        kernel = streak_kernel(length, centre + rng.uniform(-PLANE_JITTER, PLANE_JITTER), streak_width)
        pad = kernel.shape[0] // 2
        cover = math.exp(rng.uniform(math.log(COVER[0]), math.log(COVER[1]))) * scales[0]
        density = cover / (length * (1.0 + 2.0 * streak_width))
        canvas = (height + 2 * pad, width + 2 * pad)
        seeds = (rng.random(canvas) < density) * rng.uniform(0.3, 1.0, size=canvas) * rng.uniform(*OPACITY) * scales[1]
        plane = fftconvolve(seeds, kernel, mode="same")[pad:pad + height, pad:pad + width]
        blur = rng.uniform(*DEFOCUS)
        if blur > 0.3:
            plane = gaussian_filter(plane, blur)
        rain = 1.0 - (1.0 - rain) * (1.0 - np.clip(plane, 0.0, 1.0))
    return rain


def distractor_angle(rng: np.random.Generator, angles: tuple[float, float]) -> float:
    """A direction (degrees from vertical, in [-90, 90)) at least `DISTRACTOR_GAP` away from the
    rain's range `angles`: lines that way cannot be rain."""
    low, high = angles[0] - DISTRACTOR_GAP, angles[1] + DISTRACTOR_GAP
    span = 180.0 - (high - low)
    if span <= 0:
        return angles[1] + 90.0
    angle = high + rng.uniform(0.0, span)
    return (angle + 90.0) % 180.0 - 90.0


def add_distractors(image: np.ndarray, rng: np.random.Generator, angles: tuple[float, float]) -> np.ndarray:
    """The 3xHxW image in [0, 1] with thin bright and dark lines in directions the rain never takes
    (`distractor_angle`): drawn into the input and the target alike, they teach the generator that
    a thin line across the rain is scene content, as the edges of a photograph are."""
    for _ in range(int(rng.integers(DISTRACTOR_PLANES[0], DISTRACTOR_PLANES[1] + 1))):
        lines = render_streaks(tuple(image.shape[1:]), rng, (distractor_angle(rng, angles),) * 2,
                               scales=(DISTRACTOR_COVER, 1.0), planes=1)[None]
        shade = np.clip(rng.uniform(0.0, 1.0) + rng.uniform(-DISTRACTOR_TINT, DISTRACTOR_TINT, size=3), 0.0, 1.0)
        shade = shade[:, None, None]
        image = image * (1.0 - lines) + shade * lines
    return image


def to_unit(crop: torch.Tensor) -> np.ndarray:
    """A 3xHxW crop in [-1, 1] as float64 on [0, 1], where the rain is drawn."""
    return (crop.numpy().astype(np.float64) + 1.0) / 2.0


def from_unit(image: np.ndarray) -> torch.Tensor:
    """`to_unit`'s inverse, clipped to [0, 1] first."""
    return torch.from_numpy(2.0 * np.clip(image, 0.0, 1.0) - 1.0).float()


def with_distractors(clean: torch.Tensor, rng: np.random.Generator, angles: tuple[float, float]) -> torch.Tensor:
    """`add_distractors` on a 3xHxW crop in [-1, 1]."""
    return from_unit(add_distractors(to_unit(clean), rng, angles))


def veil_field(shape: tuple[int, int], rng: np.random.Generator, unevenness: float) -> np.ndarray:
    """HxW factors between 1 - unevenness and 1 + unevenness, smooth: bilinear between a
    VEIL_GRID x VEIL_GRID grid of uniform draws spanning the image. Written apart from
    datasets/rain_renderer2.smooth_field on purpose: that renderer is held out from tuning, so the
    training rain borrows none of its code."""
    grid = 1.0 + rng.uniform(-unevenness, unevenness, size=(VEIL_GRID, VEIL_GRID))
    rows, cols = np.meshgrid(np.linspace(0, VEIL_GRID - 1, shape[0]), np.linspace(0, VEIL_GRID - 1, shape[1]),
                             indexing="ij")
    return map_coordinates(grid, [rows, cols], order=1)


def add_veil(image: np.ndarray, rng: np.random.Generator, largest: float, unevenness: float = 0.0) -> np.ndarray:
    """`image` (CxHxW on [0, 1]) under a bright veil of opacity drawn up to `largest` (none at 0),
    uneven by up to `unevenness` (`veil_field`; none at 0, and then no further draws)."""
    if largest <= 0:
        return image
    opacity = rng.uniform(0.0, largest)
    level = rng.uniform(*VEIL_LEVEL)
    if unevenness > 0:
        opacity = opacity * veil_field(image.shape[-2:], rng, rng.uniform(0.0, unevenness))
    return image * (1.0 - opacity) + opacity * level


def render_pseudo_rain(clean: torch.Tensor, rng: np.random.Generator,
                       angles: tuple[float, float] = (-BROAD_ANGLE, BROAD_ANGLE), veil: float = 0.0,
                       noise: float = 0.0, scales: tuple[float, float] = (1.0, 1.0),
                       veil_unevenness: float = 0.0, widths: tuple[float, float] = WIDTH) -> torch.Tensor:
    """A 3xHxW clean crop in [-1, 1] under procedural rain (module docstring) leaning within
    `angles` (degrees), coverage and opacity scaled by `scales`, streak sigmas within `widths`
    (px), under a veil of opacity up to `veil` (uneven by up to `veil_unevenness`), with sensor
    noise of standard deviation up to `noise` (on [0, 1]), in [-1, 1]."""
    image = to_unit(clean)
    streaks = render_streaks(tuple(image.shape[1:]), rng, angles, scales, widths=widths)[None]
    colour = (1.0 - rng.uniform(0.0, TINT, size=3))[:, None, None]
    if rng.random() < 0.5:
        rainy = 1.0 - (1.0 - image) * (1.0 - colour * streaks)
    else:
        rainy = image + colour * streaks
    rainy = add_veil(rainy, rng, veil, veil_unevenness)
    if noise > 0:
        rainy = rainy + rng.uniform(0.0, noise) * rng.standard_normal(rainy.shape)
    return from_unit(rainy)


def bounded(name: str, low: float, high: float):
    """The argparse type `name` (argparse names it for a non-number) of a number in [low, high]."""
    def parse(text: str) -> float:
        value = float(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be in [{low:g}, {high:g}], got '{text}'")
        return value
    parse.__name__ = name
    return parse


probability = bounded("probability", 0.0, 1.0)
opacity_floor = bounded("opacity_floor", SCALE_LIMITS[0], 1.0)
fraction = bounded("fraction", 0.0, 0.5)
streak_sigma = bounded("streak_sigma", WIDTH[0], 4.0)


# `--pseudo_identity_share_end auto`: measured at 28,000 iterations (about 15 minutes on 2 CPU
# cores), a share moving from 0.3 to 0.6 over the run gave clean photographs 2.3-5.7 dB on every
# seed of three conditions for 0.04-0.42 dB of rain removal; at 4,000 iterations it cost 0.7-1.2 dB
# (docs/EXPERIMENTS.md, 2026-12-07, evening and night). So the share stays constant up to
# GROWTH_FROM iterations and ends higher the longer the budget, at GROWN_SHARE from GROWN_AT on.
# Only where the pseudo rain has a veil: identity pairs are there to stop the generator taking a
# mist out of clean photographs, and without one (light rain, largest veil 0.02) they came back
# untouched with the share constant (44.8 dB to infinity) while growing it cost 0.68-0.69 dB (3 seeds).
GROWTH_FROM, GROWN_AT, GROWN_SHARE, GROWTH_BASE = 4000, 28000, 0.6, 0.3
GROWTH_VEIL = 0.1  # the largest pseudo veil from which it grows (measured: light 0.02; mixed 0.16 to small 0.41)


def grown_identity_share(start: float, iterations: int, veil: float) -> float | None:
    """The identity share at the last epoch for `auto`: None (constant) up to GROWTH_FROM
    iterations or under a largest pseudo veil below GROWTH_VEIL, else GROWTH_BASE rising linearly
    to GROWN_SHARE at GROWN_AT, never below `start`."""
    if iterations <= GROWTH_FROM or veil < GROWTH_VEIL:
        return None
    progress = min((iterations - GROWTH_FROM) / (GROWN_AT - GROWTH_FROM), 1.0)
    return max(start, GROWTH_BASE + (GROWN_SHARE - GROWTH_BASE) * progress)


def share_end_setting(text: str) -> str | float:
    """`--pseudo_identity_share_end`: 'auto' or a share in [0, 1)."""
    return text if text == "auto" else share(text)


def veil_setting(text: str) -> str | float:
    """`--pseudo_rain_veil`: 'measured', or the largest opacity in [0, 0.5]."""
    return text if text == "measured" else fraction(text)


class PseudoRainDataset(BaseDataset):
    @staticmethod
    def modify_commandline_options(parser, is_train: bool):
        parser.add_argument("--pseudo_identity_share", type=share, default=0.15,
                            help="share of the samples that are identity pairs (b, b): clean images are left "
                                 "alone")
        parser.add_argument("--pseudo_identity_share_end", type=share_end_setting, default=None,
                            help="the identity share at the last epoch, reached linearly from "
                                 "--pseudo_identity_share at the first (default: constant); 'auto': constant "
                                 "up to 4,000 iterations or without a veil, else rising to 0.6 at 28,000 and "
                                 "longer budgets")
        parser.add_argument("--pseudo_rain_veil", type=veil_setting, default="measured",
                            help="largest opacity of a bright veil over the pseudo rain: 'measured' (twice the mean "
                                 "veil measured on trainA) or a number in [0, 0.5] (0: streaks only)")
        parser.add_argument("--pseudo_rain_veil_unevenness", type=fraction, default=0.0,
                            help="how uneven the pseudo veil may be: its opacity a smooth field from (1 - u) to "
                                 "(1 + u) times its mean, u drawn up to this per crop (0: even)")
        parser.add_argument("--pseudo_rain_max_width", type=streak_sigma, default=WIDTH[1],
                            help=f"largest cross-section sigma of a pseudo streak, px (drawn from {WIDTH[0]:g}): "
                                 "wider for rain of wide, soft streaks")
        parser.add_argument("--pseudo_rain_noise", type=fraction, default=0.0,
                            help="largest standard deviation of sensor noise on a pseudo rainy crop (on [0, 1])")
        parser.add_argument("--pseudo_rain_distractors", type=probability, default=0.0,
                            help="share of the crops that get thin lines across the rain's direction in both the "
                                 "input and the target, so that scene edges are not taken for rain")
        parser.add_argument("--pseudo_rain_min_opacity", type=opacity_floor, default=SCALE_LIMITS[0],
                            help="lowest opacity scale the match to trainA's rain may choose: keeps faint, wide "
                                 "rain from being matched by streaks too dim to learn from")
        parser.add_argument("--pseudo_rain_calibration", default=64,
                            type=calibration_count("--pseudo_rain_calibration"),
                            help="how many trainA (rainy) images the rain's direction, coverage and brightness are "
                                 "measured on (and clean trainB images the match is checked on)")
        return parser

    def __init__(self, opt):
        super().__init__(opt)
        if not opt.is_train:
            raise DatasetError("--dataset_mode pseudo_rain renders training pairs; test with the rainy images "
                               "themselves (test.py's default)")
        if opt.direction != "AtoB":
            raise DatasetError("--dataset_mode pseudo_rain renders rain onto trainB (clean): it needs "
                               "--direction AtoB")
        self.dir_A = os.path.join(opt.dataroot, "trainA")
        self.dir_B = os.path.join(opt.dataroot, "trainB")
        self.B_paths = usable_images(self.dir_B, make_dataset(self.dir_B, opt.max_dataset_size))
        rainy_paths = usable_images(self.dir_A, make_dataset(self.dir_A, opt.max_dataset_size))
        if not rainy_paths:
            raise DatasetError("--dataset_mode pseudo_rain measures the rain on trainA, which holds no image")
        # Each calibration image is read once; every measurement below works on these.
        rainy = [calibration_image(path) for path in spread(rainy_paths, opt.pseudo_rain_calibration)]
        cleans = [uint8_to_tensor(calibration_image(path))
                  for path in spread(self.B_paths, opt.pseudo_rain_calibration)]
        self.angles, reference = measure_rain(rainy)
        fixed_veil = 0.0 if opt.pseudo_rain_veil == "measured" else opt.pseudo_rain_veil
        self.widths = (WIDTH[0], opt.pseudo_rain_max_width)
        self.scales = match_rain(cleans, reference, self.angles, fixed_veil, opt.pseudo_rain_min_opacity,
                                 self.widths)
        self.veil = (measure_veil(rainy, pseudo_renders(cleans, self.angles, self.scales, widths=self.widths))
                     if opt.pseudo_rain_veil == "measured" else fixed_veil)
        self.A_paths = self.B_paths  # the pseudo rainy image of sample i is rendered from B_paths[i]
        self.identity_share = opt.pseudo_identity_share
        # As one process counts epochs: under DDP each process's epochs are shorter, so the ramp ends early.
        per_epoch = iterations_per_epoch(len(self), opt.batch_size)
        self.last_epoch = last_epoch_of_budget(opt, per_epoch)
        self.identity_share_end = opt.pseudo_identity_share_end
        if self.identity_share_end == "auto":
            budget = planned_iterations(opt, per_epoch)
            self.identity_share_end = grown_identity_share(self.identity_share, budget, self.veil)
            if self.identity_share_end is None:
                logger.info("pseudo rain: identity share %.3f throughout (auto: it grows over budgets above %d "
                            "iterations where the largest pseudo veil is at least %.2f; here %d and %.3f)",
                            self.identity_share, GROWTH_FROM, GROWTH_VEIL, budget, self.veil)
        if self.identity_share_end is not None:
            logger.info("pseudo rain: identity share %.3f at epoch 1, %.3f at epoch %d", self.identity_share,
                        self.identity_share_end, self.last_epoch)
        self.noise = opt.pseudo_rain_noise
        self.veil_unevenness = opt.pseudo_rain_veil_unevenness
        self.distractors = opt.pseudo_rain_distractors

    def __len__(self) -> int:
        return len(self.B_paths)

    def identity_share_at(self, epoch: int) -> float:
        """The identity share in `epoch` (1 the first): --pseudo_identity_share, moving linearly to
        --pseudo_identity_share_end at the last epoch where that is given."""
        if self.identity_share_end is None:
            return self.identity_share
        progress = min(max((epoch - 1) / max(self.last_epoch - 1, 1), 0.0), 1.0)
        return self.identity_share + (self.identity_share_end - self.identity_share) * progress

    def __getitem__(self, key) -> dict:
        index, epoch, rng = self.sample_rng(key)
        clean, path = self.load_any(self.B_paths, index, rng, self.dir_B, epoch)
        lines = np.random.default_rng([self.seed, epoch, index, 4])
        if self.distractors and lines.random() < self.distractors:
            clean = with_distractors(clean, lines, self.angles)
        draws = np.random.default_rng([self.seed, epoch, index, 3])  # not the crop's draws
        if draws.random() < self.identity_share_at(epoch):
            rainy = clean.clone()
        else:
            rainy = render_pseudo_rain(clean, draws, self.angles, self.veil, self.noise, self.scales,
                                       self.veil_unevenness, self.widths)
        return {"A": rainy, "B": clean, "A_paths": path, "B_paths": path}


def measure_rain(rainy: list[np.ndarray]) -> tuple[tuple[float, float], dict]:
    """(range of streak directions in degrees (low, high), pooled high-pass statistics) of the
    rainy HxWx3 uint8 images."""
    pooled = LayerStatistics()
    directions = []
    for image in rainy:
        layer = rain_layer_y(image)
        pooled.add(layer)
        own = LayerStatistics().add(layer).summary()
        if own["orientation"] is not None and (own["coherence"] or 0.0) >= MIN_COHERENCE:
            directions.append(own["orientation"])
    summary = pooled.summary()
    if len(directions) >= MIN_DIRECTED:
        low, high = np.percentile(directions, [5, 95])
        angles = (float(max(low - ANGLE_MARGIN, -MAX_ANGLE)), float(min(high + ANGLE_MARGIN, MAX_ANGLE)))
        how = f"measured on {len(directions)} of them"
    else:
        angles = (-BROAD_ANGLE, BROAD_ANGLE)
        how = f"broad: only {len(directions)} have a dominant direction"
    logger.info("pseudo rain: trainA streaks lean %+.0f to %+.0f degrees (%s); coverage %.2f%%, brightness %s "
                "levels", angles[0], angles[1], how, 100 * summary["coverage"], _fmt(summary["brightness"]))
    return angles, summary


def pseudo_renders(cleans: list[torch.Tensor], angles: tuple[float, float], scales: tuple[float, float],
                   veil: float = 0.0, widths: tuple[float, float] = WIDTH) -> list[np.ndarray]:
    """The clean crops (3xHxW in [-1, 1]) under pseudo rain drawn from a fixed seed, so that two
    calls differ only by their settings, as HxWx3 uint8."""
    rng = np.random.default_rng(0)
    return [tensor_to_uint8(render_pseudo_rain(clean, rng, angles, veil, scales=scales, widths=widths))
            for clean in cleans]


def pseudo_statistics(cleans: list[torch.Tensor], angles: tuple[float, float], scales: tuple[float, float],
                      veil: float = 0.0, widths: tuple[float, float] = WIDTH) -> dict:
    """The pooled high-pass rain statistics of `pseudo_renders`."""
    stats = LayerStatistics()
    for rainy in pseudo_renders(cleans, angles, scales, veil, widths):
        stats.add(rain_layer_y(rainy))
    return stats.summary()


def match_rain(cleans: list[torch.Tensor], reference: dict, angles: tuple[float, float], veil: float = 0.0,
               min_opacity: float = SCALE_LIMITS[0], widths: tuple[float, float] = WIDTH) -> tuple[float, float]:
    """(coverage scale, opacity scale) under which the pseudo rain on the clean crops (3xHxW in
    [-1, 1]) has the high-pass coverage and streak brightness of `reference` (trainA's): a few
    multiplicative steps, each scale within `SCALE_LIMITS`, the opacity scale at least
    `min_opacity`. Logs the match (a warning where it stays beyond `CHECK_TOLERANCE`, as when
    trainA holds little rain, or where the floor keeps the pseudo rain brighter than trainA's)."""
    scales = (1.0, 1.0)
    for _ in range(MATCH_STEPS):
        got = pseudo_statistics(cleans, angles, scales, veil, widths)
        if not got["coverage"] or not got["brightness"] or not reference["brightness"]:
            break
        scales = (float(np.clip(scales[0] * reference["coverage"] / got["coverage"], *SCALE_LIMITS)),
                  float(np.clip(scales[1] * reference["brightness"] / got["brightness"], min_opacity,
                                SCALE_LIMITS[1])))
    got = pseudo_statistics(cleans, angles, scales, veil, widths)
    problems = compare_statistics(got, reference, CHECK_TOLERANCE)
    if problems:
        logger.warning("pseudo rain differs from trainA's rain (%s) at coverage x%.2f, opacity x%.2f; check that "
                       "trainA holds rain and trainB none", "; ".join(problems), *scales)
    else:
        logger.info("pseudo rain matched to trainA's: coverage %.2f%% (trainA %.2f%%), brightness %.1f levels "
                    "(trainA %.1f) at coverage x%.2f, opacity x%.2f", 100 * got["coverage"],
                    100 * reference["coverage"], got["brightness"], reference["brightness"], *scales)
    return scales


def low_dark(image: np.ndarray) -> float:
    """The `VEIL_PERCENTILE`th percentile of an HxWx3 uint8 image's dark channel, on [0, 1]."""
    return float(np.percentile(dark_channel(image.astype(np.float64) / 255.0, VEIL_PATCH), VEIL_PERCENTILE))


def measure_veil(rainy: list[np.ndarray], streaked: list[np.ndarray]) -> float:
    """The largest veil opacity for the pseudo rain: twice the mean opacity v that brings the mean
    low dark channel (`low_dark`) of the pseudo rainy clean images `streaked` (streaks only, matched), d,
    to that of the `rainy` images (trainA's), d_A: a veil of level l lifts it to d (1 - v) + v l, so
    v = (d_A - d) / (l - d), l the mean of `VEIL_LEVEL`. Within [0, `VEIL_LIMIT`]; logged. Images
    HxWx3 uint8."""
    rainy_dark = float(np.mean([low_dark(image) for image in rainy]))
    base, level = float(np.mean([low_dark(image) for image in streaked])), float(np.mean(VEIL_LEVEL))
    mean_veil = max(rainy_dark - base, 0.0) / max(level - base, 1e-3)
    largest = float(min(2.0 * mean_veil, VEIL_LIMIT))
    logger.info("pseudo rain veil: trainA's low dark channel %.3f, the pseudo rain's %.3f: mean veil %.3f, pseudo "
                "veils up to %.3f", rainy_dark, base, mean_veil, largest)
    return largest


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


