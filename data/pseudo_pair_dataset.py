"""Pseudo pairs for the second stage of the two-stage recipe (scripts/train_two_stage.sh).

<dataroot>/trainA/X is a frozen rain generator's rendering G_B(b) of the clean image
<dataroot>/trainB/X = b (scripts/render_pseudo_pairs.py writes such a folder). Each sample is
an aligned pair (a', b), cropped and flipped alike, where a' is
- b itself with probability `--pseudo_identity_share` (an identity pair: a clean image is to
  be left alone), otherwise
- b + s r with s drawn uniformly from `--rain_scale_range LO,HI` (rain-density augmentation of
  the pseudo rain layer; 1,1 keeps G_B's rain as rendered), clamped to the image range, where
  r = max(G_B(b) - b, 0) (`--pseudo_layer positive`, the default: rain only brightens, and the
  darkening that G_B's leaky rain layer adds everywhere would teach stage 2 to brighten every
  image) or r = G_B(b) - b (`signed`).
The draws come from the sample's own seeded generator, so a resumed run sees the same pairs.
"""
from __future__ import annotations

import argparse

import numpy as np

from .aligned_dataset import AlignedDataset

PSEUDO_LAYERS = ("positive", "signed")


def scale_range(text: str) -> tuple[float, float]:
    """'LO,HI' with 0 <= LO <= HI, for --rain_scale_range."""
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--rain_scale_range needs LO,HI (two numbers), got '{text}'") from None
    if not 0 <= low <= high:
        raise argparse.ArgumentTypeError(f"--rain_scale_range needs 0 <= LO <= HI, got '{text}'")
    return low, high


def share(text: str) -> float:
    """A number in [0, 1), for --pseudo_identity_share."""
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"--pseudo_identity_share must be in [0, 1), got '{text}'")
    return value


class PseudoPairDataset(AlignedDataset):
    @staticmethod
    def modify_commandline_options(parser, is_train: bool):
        parser.add_argument("--pseudo_identity_share", type=share, default=0.2,
                            help="share of the samples that are identity pairs (b, b): clean images are left "
                                 "alone")
        parser.add_argument("--rain_scale_range", type=scale_range, default=(1.0, 1.0), metavar="LO,HI",
                            help="the pseudo rain layer G_B(b) - b is scaled by a factor drawn uniformly from "
                                 "LO..HI (rain-density augmentation; 1,1 keeps it as rendered)")
        parser.add_argument("--pseudo_layer", default="positive", choices=PSEUDO_LAYERS,
                            help="positive: only what G_B(b) adds to b is rain (its darkening is dropped); "
                                 "signed: G_B(b) - b as rendered")
        return parser

    def __init__(self, opt):
        super().__init__(opt)
        self.identity_share = opt.pseudo_identity_share
        self.scale_low, self.scale_high = opt.rain_scale_range
        self.positive = opt.pseudo_layer == "positive"

    def __getitem__(self, key) -> dict:
        item = super().__getitem__(key)
        index, epoch, _ = self.sample_rng(key)
        rng = np.random.default_rng([self.seed, epoch, index, 1])  # not the crop's draws
        clean, rendered = item["B"], item["A"]
        if rng.random() < self.identity_share:
            item["A"] = clean.clone()
        else:
            layer = rendered - clean
            if self.positive:
                layer = layer.clamp(min=0.0)
            scale = rng.uniform(self.scale_low, self.scale_high)
            item["A"] = (clean + scale * layer).clamp(-1.0, 1.0)
        return item
