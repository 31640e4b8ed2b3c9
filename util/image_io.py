"""Robust image reading and writing shared by datasets, test.py and the metrics.

Research folders hold every kind of image: 16-bit PNGs, palette GIF-like PNGs, RGBA
screenshots, CMYK JPEGs from cameras, rotated phone photos. Everything is turned into
8-bit RGB here, once, so no other module has to care.
"""
from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from util.atomic_file import atomic_write

IMG_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class ImageReadError(OSError):
    """An image file cannot be opened or decoded; names the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read image '{self.path}': {reason}")


def is_image_file(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(IMG_EXTENSIONS)


def display_name(name: str | os.PathLike) -> str:
    """A file name as valid UTF-8 text for pages, CSV files and terminals.

    Linux file names are bytes; Python keeps the bytes that are not UTF-8 as surrogates,
    which open() and print() refuse to encode. They are shown as escapes (\\xff) instead.
    """
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL image as 8-bit RGB: 16-bit and float grey scaled, transparency on white."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16/32-bit and float grey: scale by the type's range instead of clipping at 255.
        # Float images in [0, 1] (scientific TIFFs) are the usual convention for floats.
        arr = np.nan_to_num(np.asarray(img, dtype=np.float64))
        if img.mode == "F" and arr.max() <= 1.0:
            top = 1.0
        else:
            top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, mode="L").convert("RGB")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        # Composite transparency on white: black behind a transparent logo surprises people.
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return img.convert("RGB")


def _check_regular_file(path: str | os.PathLike) -> None:
    # Image.open on a FIFO or device would block forever; a dangling link has nothing to read.
    try:
        info = os.stat(path)
    except OSError as err:
        raise ImageReadError(path, f"{type(err).__name__}: {err.strerror or err}") from err
    if not stat.S_ISREG(info.st_mode):
        raise ImageReadError(path, "not a regular file (a folder, FIFO or device)")
    if info.st_size == 0:
        raise ImageReadError(path, "file is empty")


@contextlib.contextmanager
def _decoding(path: str | os.PathLike) -> Iterator[None]:
    try:
        yield
    # Decoders raise many types on malformed bytes (OSError, SyntaxError, EOFError, struct.error,
    # IndexError, DecompressionBombError, MemoryError...): each means this file cannot be used.
    except Exception as err:
        raise ImageReadError(path, f"{type(err).__name__}: {err}") from err


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Read any supported image as 8-bit RGB with its EXIF orientation applied."""
    _check_regular_file(path)
    with _decoding(path), Image.open(path) as img:
        img.load()
        img = ImageOps.exif_transpose(img)
        return to_rgb(img)


def probe_image(path: str | os.PathLike) -> tuple[int, int]:
    """Cheap validity check: parse the header only (no pixels decoded); returns (width, height).

    A file that passes can still fail in `load_rgb` (truncated or corrupt pixel data).
    """
    _check_regular_file(path)
    with _decoding(path), Image.open(path) as img:
        return img.size


def tensor_to_uint8(t: torch.Tensor) -> np.ndarray:
    """Map a CHW (or 1xCHW) tensor in [-1, 1] to an HxWx3 uint8 array."""
    t = t.detach()
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ValueError(f"expected one image, got a batch of {t.shape[0]}")
        t = t[0]
    t = t.float().cpu().clamp(-1, 1)
    if t.shape[0] == 1:
        t = t.expand(3, -1, -1)
    arr = ((t.permute(1, 2, 0).numpy() + 1.0) * 127.5).round()
    return arr.astype(np.uint8)


def uint8_to_tensor(arr: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 array -> 3xHxW float tensor in [-1, 1]."""
    return torch.from_numpy(np.array(arr, dtype=np.uint8)).permute(2, 0, 1).float() / 127.5 - 1.0


def save_image(image: np.ndarray | Image.Image, path: str | os.PathLike) -> None:
    """Write an image atomically (temp file + rename): a crash never leaves half a PNG."""
    path = Path(path)
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG"}.get(path.suffix.lower(), "PNG")
    with atomic_write(path, "wb") as fh:
        image.save(fh, format=fmt)
