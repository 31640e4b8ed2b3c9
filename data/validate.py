"""Check the images of a training folder once, before training starts.

Only the header of each file is parsed (no pixels decoded), so the scan costs a small
fraction of an epoch. Files that fail are named in the log and left out; a file that breaks
later (truncated pixel data, replaced mid-run) is skipped by `BaseDataset.load_any`.
"""
from __future__ import annotations

import logging
import time

from util.image_io import ImageReadError, probe_image

from .image_folder import DatasetError

logger = logging.getLogger(__name__)


def usable_images(folder: str, paths: list[str]) -> list[str]:
    """The paths whose image header parses; raises `DatasetError` naming `folder` if none does."""
    if not paths:
        raise DatasetError(f"no images found in '{folder}'; put png/jpg/... files there or fix --dataroot")
    start = time.perf_counter()
    usable, failures = [], []
    for path in paths:
        try:
            probe_image(path)
            usable.append(path)
        except ImageReadError as err:
            failures.append(err)
    logger.debug("checked %d images in '%s' in %.2f s", len(paths), folder, time.perf_counter() - start)
    if failures:
        logger.warning("%d of %d images in '%s' are unreadable and will not be used:\n  %s",
                       len(failures), len(paths), folder, "\n  ".join(f"{e.path}: {e.reason}" for e in failures))
    if not usable:
        raise DatasetError(f"none of the {len(paths)} images in '{folder}' is readable "
                           f"(e.g. {failures[0].path}: {failures[0].reason}); replace them or fix --dataroot")
    return usable
