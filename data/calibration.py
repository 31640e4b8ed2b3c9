"""What the pseudo-pair datasets (pseudo_haze, pseudo_rain) share to measure a domain at start:
which images to read, how large, and the flag for how many."""
from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
from PIL import Image

from util.image_io import load_rgb

CALIBRATION_SIDE = 256  # images are measured at most this large (the measurements' patches are in pixels)


def spread(paths: list[str], count: int) -> list[str]:
    """Up to `count` of `paths`, spread evenly over the list (its first and last included)."""
    return [paths[i] for i in np.linspace(0, len(paths) - 1, min(count, len(paths))).astype(int)]


def calibration_image(path: str) -> np.ndarray:
    """An image as HxWx3 uint8, at most CALIBRATION_SIDE large."""
    image = load_rgb(path)
    image.thumbnail((CALIBRATION_SIDE, CALIBRATION_SIDE), Image.BICUBIC)
    return np.asarray(image, dtype=np.uint8)


def calibration_count(flag: str) -> Callable[[str], int]:
    """The argparse type of a calibration-size flag: a whole number of at least 1, or an error naming `flag`."""
    def parse(text: str) -> int:
        value = int(text)
        if value < 1:
            raise argparse.ArgumentTypeError(f"{flag} must be at least 1, got '{text}'")
        return value
    return parse
