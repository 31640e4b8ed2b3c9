"""Pseudo hazy pairs rendered from the clear images, with haze measured on the hazy ones.

For an unpaired haze set (<dataroot>/trainA hazy, <dataroot>/trainB clear) each sample is an
aligned pair (a', b): b a clear training crop, a' the same crop through the scattering model
a' = b t + A (1 - t), so that the restoring generator can learn from full supervision what
the unpaired GANs have to guess (D4, CVPR 2022, renders new haze through the same model).

What the pairs must not invent is how much haze there is and of what colour: those are
measured on the real hazy images. At start the dark channel prior (util/dark_channel.py) reads,
for up to `--pseudo_haze_calibration` trainA images, the airlight (its colour and brightness)
and the spread of the unrefined transmission (its 10th and 90th percentiles), divided by the
transmission the prior reads into the clear trainB images (about 0.7 on the embedded sets: it
sees haze in every bright surface; dividing it out brought the measured range close to the
renderer's true one on the embedded haze, docs/EXPERIMENTS.md). A sample draws one
such record, and the transmission across its crop runs from one percentile to the other along
a smooth depth field d in [0, 1], d a random mix of a ramp in a random direction and a
bilinearly smoothed random grid: t = t_far + (t_near - t_far) (1 - d). The geometry is
deliberately generic (not the renderers of datasets/): the network has to read the haze's
density from the image, not from where it sits. Sensor noise of up to `--pseudo_haze_noise`
(standard deviation, on [0, 1]) is added; with probability `--pseudo_identity_share` the pair is
(b, b), so that clear images are left alone.

The draws come from the sample's own seeded generator, so a resumed run sees the same pairs.
"""
from __future__ import annotations

import argparse
import logging
import os

import numpy as np
import torch
import torch.nn.functional as F

from util.dark_channel import OMEGA, PATCH, TOP, haziest_airlight, unrefined_transmission

from .base_dataset import BaseDataset
from .calibration import calibration_count, calibration_image, spread
from .image_folder import DatasetError, make_dataset
from .pseudo_pair_dataset import share
from .validate import usable_images

logger = logging.getLogger(__name__)

T_FLOOR = 0.1  # the thinnest transmission drawn (the haze layer's default --t_min)
JITTER_T, JITTER_A = 0.05, 0.03  # uniform jitter of a record's percentiles and airlight colours
DENSITIES = ("measured", "broad")  # --pseudo_haze_density


def prior_transmission(image01: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unrefined transmission HxW, airlight (3,)) of an HxWx3 image in [0, 1] by the dark channel prior."""
    airlight = haziest_airlight(image01, PATCH, TOP)
    return unrefined_transmission(image01, airlight, PATCH, OMEGA), airlight


def haze_record(hazy01: np.ndarray, clear_reading: float = 1.0) -> tuple[float, float, np.ndarray]:
    """(t_far, t_near, airlight (3,)) of an HxWx3 hazy image in [0, 1]: the 10th and 90th
    percentiles of the prior's transmission divided by `clear_reading`, and its airlight.

    The prior reads haze into clear scenes too (bright surfaces, sky: their dark channel is not
    0), and by about the same factor into hazy ones: t_est = t (1 - omega dark(J / A)) + ...
    `clear_reading` (`clear_transmission` of the clear images) divides that factor out."""
    transmission, airlight = prior_transmission(hazy01)
    far, near = np.percentile(transmission, [10, 90]) / clear_reading
    far = float(np.clip(far, T_FLOOR, 1.0))
    return far, float(np.clip(near, far, 1.0)), airlight


def clear_transmission(clear01: np.ndarray) -> float:
    """The median transmission the prior reads in a clear image (1 where its assumption holds)."""
    return float(np.median(prior_transmission(clear01)[0]))


def smooth_depth(size: tuple[int, int], rng: np.random.Generator) -> torch.Tensor:
    """HxW depth field in [0, 1]: a ramp in a random direction mixed with a random coarse grid
    (2 to 5 cells a side) upsampled bilinearly, in random proportions."""
    height, width = size
    angle = rng.uniform(0.0, 2.0 * np.pi)
    ys, xs = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    ramp = np.cos(angle) * xs + np.sin(angle) * ys
    cells = int(rng.integers(2, 6))
    grid = torch.from_numpy(rng.random((1, 1, cells, cells))).float()
    blobs = F.interpolate(grid, size=(height, width), mode="bilinear", align_corners=True)[0, 0]
    mix = rng.uniform(0.0, 1.0)
    depth = mix * _normalised(ramp) + (1.0 - mix) * _normalised(blobs)
    return _normalised(depth)


def _normalised(field: torch.Tensor) -> torch.Tensor:
    low, high = field.min(), field.max()
    return (field - low) / (high - low) if high > low else torch.zeros_like(field)


def render_pseudo_haze(clear: torch.Tensor, record: tuple[float, float, np.ndarray], noise: float,
                       rng: np.random.Generator, density: str = "measured") -> torch.Tensor:
    """A 3xHxW clear crop in [-1, 1] under haze like `record`'s, in [-1, 1]. `density` measured:
    the transmission spans the record's percentiles; broad: it spans [t_far, t_near] drawn
    uniformly from [T_FLOOR, 1] (only the airlight is the record's)."""
    far, near, airlight = record
    if density == "broad":
        far, near = sorted(rng.uniform(T_FLOOR, 1.0, size=2))
    else:
        far = float(np.clip(far + rng.uniform(-JITTER_T, JITTER_T), T_FLOOR, 1.0))
        near = float(np.clip(near + rng.uniform(-JITTER_T, JITTER_T), far, 1.0))
    colour = np.clip(airlight + rng.uniform(-JITTER_A, JITTER_A, size=3), 0.0, 1.0)
    depth = smooth_depth(tuple(clear.shape[1:]), rng)
    transmission = (far + (near - far) * (1.0 - depth))[None]
    colour_t = torch.from_numpy(colour).float()[:, None, None]
    hazy01 = (clear + 1.0) / 2.0 * transmission + colour_t * (1.0 - transmission)
    sigma = rng.uniform(0.0, noise)
    if sigma > 0:
        hazy01 = hazy01 + sigma * torch.from_numpy(rng.standard_normal(hazy01.shape)).float()
    return (2.0 * hazy01 - 1.0).clamp(-1.0, 1.0)


def noise_level(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 0.2:
        raise argparse.ArgumentTypeError(f"--pseudo_haze_noise must be in [0, 0.2], got '{text}'")
    return value


class PseudoHazeDataset(BaseDataset):
    @staticmethod
    def modify_commandline_options(parser, is_train: bool):
        parser.add_argument("--pseudo_identity_share", type=share, default=0.15,
                            help="share of the samples that are identity pairs (b, b): clear images are left "
                                 "alone")
        parser.add_argument("--pseudo_haze_calibration", default=64,
                            type=calibration_count("--pseudo_haze_calibration"),
                            help="how many trainA (hazy) images the haze's density and airlight are measured on")
        parser.add_argument("--pseudo_haze_density", choices=DENSITIES, default="measured",
                            help="measured: the transmission of a pseudo hazy crop spans the percentiles the dark "
                                 "channel prior measured on a hazy image; broad: any range in [0.1, 1] (the "
                                 "airlight is measured either way)")
        parser.add_argument("--pseudo_haze_noise", type=noise_level, default=0.02,
                            help="largest standard deviation of the sensor noise added to a pseudo hazy crop "
                                 "(on [0, 1]; each sample draws one below it)")
        return parser

    def __init__(self, opt):
        super().__init__(opt)
        if not opt.is_train:
            raise DatasetError("--dataset_mode pseudo_haze renders training pairs; test with the hazy images "
                               "themselves (test.py's default)")
        self.dir_A = os.path.join(opt.dataroot, "trainA")
        self.dir_B = os.path.join(opt.dataroot, "trainB")
        if opt.direction != "AtoB":
            raise DatasetError("--dataset_mode pseudo_haze renders haze onto trainB (clear): it needs "
                               "--direction AtoB")
        self.B_paths = usable_images(self.dir_B, make_dataset(self.dir_B, opt.max_dataset_size))
        hazy_paths = usable_images(self.dir_A, make_dataset(self.dir_A, opt.max_dataset_size))
        self.records = calibrate(hazy_paths, self.B_paths, opt.pseudo_haze_calibration)
        self.A_paths = self.B_paths  # the pseudo hazy image of sample i is rendered from B_paths[i]
        self.identity_share = opt.pseudo_identity_share
        self.noise = opt.pseudo_haze_noise
        self.density = opt.pseudo_haze_density

    def __len__(self) -> int:
        return len(self.B_paths)

    def __getitem__(self, key) -> dict:
        index, epoch, rng = self.sample_rng(key)
        clear, path = self.load_any(self.B_paths, index, rng, self.dir_B, epoch)
        draws = np.random.default_rng([self.seed, epoch, index, 2])  # not the crop's draws
        if draws.random() < self.identity_share:
            hazy = clear.clone()
        else:
            record = self.records[int(draws.integers(0, len(self.records)))]
            hazy = render_pseudo_haze(clear, record, self.noise, draws, self.density)
        return {"A": hazy, "B": clear, "A_paths": path, "B_paths": path}


def calibrate(hazy_paths: list[str], clear_paths: list[str], count: int) -> list[tuple[float, float, np.ndarray]]:
    """Haze records of up to `count` hazy images spread evenly over `hazy_paths`, their density
    corrected by the prior's median reading of up to `count` clear images; logged."""
    if not hazy_paths:
        raise DatasetError("--dataset_mode pseudo_haze measures the haze on trainA, which holds no image")
    reading = float(np.median([clear_transmission(_measured(path)) for path in spread(clear_paths, count)]))
    reading = max(reading, T_FLOOR)
    records = [haze_record(_measured(path), reading) for path in spread(hazy_paths, count)]
    far = np.array([r[0] for r in records])
    near = np.array([r[1] for r in records])
    airlight = np.array([r[2] for r in records])
    logger.info("pseudo haze measured on %d hazy images (the prior reads t = %.2f into clear ones): transmission "
                "10th percentile %.2f-%.2f, 90th %.2f-%.2f, airlight %.2f-%.2f", len(records), reading, far.min(),
                far.max(), near.min(), near.max(), airlight.min(), airlight.max())
    return records


def _measured(path: str) -> np.ndarray:
    """An image as HxWx3 in [0, 1], at most data/calibration.py's CALIBRATION_SIDE large."""
    return calibration_image(path).astype(np.float64) / 255.0
