"""Find the images of a folder, recursively, in a stable sorted order."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from util.image_io import is_image_file


class DatasetError(RuntimeError):
    """A dataset folder is missing, empty or unusable; the message names it."""


def make_dataset(directory: str | os.PathLike, max_dataset_size: int | None = None) -> list[str]:
    """Sorted paths of every image below `directory` (png, jpg, jpeg, bmp, tif, tiff, webp)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DatasetError(f"'{directory}' is not a folder; check --dataroot (expected trainA/, trainB/, testA/ ...)")
    paths = sorted(str(Path(root) / f) for root, files in _walk_once(directory)
                   for f in files if is_image_file(f) and not f.startswith("."))
    if max_dataset_size is not None:
        paths = paths[:max_dataset_size]
    return paths


def _walk_once(directory: Path) -> Iterator[tuple[str, list[str]]]:
    """os.walk following links, but entering each real folder once: a link to a parent would loop forever."""
    seen = set()
    for root, dirs, files in os.walk(directory, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        yield root, files
