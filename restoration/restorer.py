"""Restore images from Python: a checkpoint's or a shipped model's generator, or a method
without training, behind one call.

    from restoration import Restorer
    restorer = Restorer.from_pretrained("rain_synthetic")            # pretrained/rain_synthetic.pt
    restorer = Restorer.from_checkpoint("checkpoints/run/latest.pt", device="cuda", tile=512)
    restorer = Restorer.from_method("dcp")                           # restoration/methods.py
    clean = restorer.restore(Image.open("rainy.jpg"))                  # PIL in, PIL out
    clean = restorer.restore(array)                                    # HxWx3 uint8 in, same out

test.py restores every image through this class; restoration/loading.py builds it. A PIL
image is turned upright by its EXIF orientation first, as test.py reads files; a shipped
model whose bytes differ from what its model card states is refused, and an output that is
non-finite or one constant value (a damaged or diverged model) is reported with a warning.
"""
from __future__ import annotations

import logging
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from PIL import Image, ImageOps

from runtime.backends import DEFAULT_BACKEND, check_backend_amp, choose_backend, inference_network
from runtime.inference import check_tiling, restore, restore_tiled_uint8
from runtime.precision import amp_mode
from util.image_io import tensor_to_uint8, to_rgb, uint8_to_tensor

from .methods import Method
from .shipped import PRETRAINED_DIR
from .sources import LoadedCheckpoint, MethodSource

logger = logging.getLogger(__name__)


class Restorer:
    """One restoring generator on one device, or one method without training.

    For a generator: `tile` > 0 restores in overlapping tiles of that size (bounded memory
    for large photos); `backend` is how it runs (runtime.backends: 'auto' picks the fastest
    here, or torch, channels_last, winograd, bf16, ...); `amp` ('auto', 'on', 'off'; True /
    False as 'on' / 'off'): 'on' runs any backend under bf16 autocast, 'off' keeps 'auto'
    from choosing bf16, and 'auto' lets it. A method (restoration/methods.py) runs on the
    CPU's numpy arrays as it is: these settings do not apply to it.
    """

    def __init__(self, net: nn.Module | Method, source: LoadedCheckpoint | MethodSource,
                 device: torch.device | str = "cpu", tile: int = 0, tile_overlap: int = 32, amp: str | bool = "auto",
                 backend: str = DEFAULT_BACKEND):
        check_tiling(tile, tile_overlap)
        self.device = torch.device(device)
        self.source = source
        self.tile, self.tile_overlap = tile, tile_overlap
        self.amp = amp_mode(amp)
        if not isinstance(net, nn.Module):  # a method without training
            self.method, self.net, self.backend = net, None, "method"
            self.backend_choice = f"method {source.describe()} (no network: --backend, --amp and --tile do not apply)"
            return
        self.method = None
        check_backend_amp(backend, self.amp)
        net = net.to(self.device).eval()
        if backend == "auto":
            self.backend, why = choose_backend(net, self.device, self.amp)
            self.backend_choice = f"backend auto: {self.backend} ({why})"
        else:
            self.backend = backend
            self.backend_choice = f"backend {backend} (--backend {backend})"
        self.net = inference_network(net, self.backend, self.device)

    # restoration/loading.py builds Restorers, so it is imported when called, not at the top.
    @classmethod
    def from_checkpoint(cls, path: str | Path, direction: str = "AtoB", device: torch.device | str = "cpu",
                        **settings) -> Restorer:
        """The generator a training checkpoint (or a shipped-model file) restores `direction` with."""
        from .loading import open_restorer
        return open_restorer(checkpoint=path, direction=direction, device=device, **settings)

    @classmethod
    def from_pretrained(cls, name: str, device: torch.device | str = "cpu", folder: str | Path = PRETRAINED_DIR,
                        **settings) -> Restorer:
        """A shipped model by name (`pretrained/<name>.pt`) or by the path of its file."""
        from .loading import open_restorer
        return open_restorer(pretrained=name, pretrained_dir=folder, device=device, **settings)

    @classmethod
    def from_method(cls, name: str, options=None, device: torch.device | str = "cpu", **settings) -> Restorer:
        """A method without training by name (restoration/methods.py), with its options (a dict
        or namespace of its flags; the rest take their defaults)."""
        from .loading import open_restorer
        return open_restorer(method=name, method_options=options, device=device, **settings)

    def restore_array(self, image: np.ndarray, label: str = "image") -> np.ndarray:
        """HxWx3 uint8 -> restored HxWx3 uint8 of the same size; `label` names the image in warnings."""
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 array, got shape {np.shape(image)} and dtype "
                             f"{getattr(image, 'dtype', type(image).__name__)}")
        if image.size == 0:
            raise ValueError(f"expected an image with pixels, got an empty array of shape {image.shape}")
        if self.method is not None:
            return self.restore_with_method(image)
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16) if self.amp == "on" else nullcontext()
        with autocast:
            if self.tile and max(image.shape[:2]) > self.tile:  # bounded memory: never the whole image in float
                out, finite = restore_tiled_uint8(self.net, image, self.tile, self.tile_overlap, self.device)
            else:
                restored = restore(self.net, uint8_to_tensor(image)[None].to(self.device), self.tile,
                                   self.tile_overlap)
                finite = bool(torch.isfinite(restored).all())
                out = tensor_to_uint8(restored if finite else torch.nan_to_num(restored))
        if not finite:
            self.warn(label, "non-finite values (NaN or Inf)")
        elif out.min() == out.max() and image.min() != image.max():
            self.warn(label, f"one value ({out.min()}) in every pixel")
        return out

    def restore_with_method(self, image: np.ndarray) -> np.ndarray:
        """The method's output, checked: a method that breaks its promise is a bug to report, not an image."""
        out = self.method.restore_array(image)
        if not isinstance(out, np.ndarray) or out.shape != image.shape or out.dtype != np.uint8:
            raise TypeError(f"method {self.source.describe()} returned shape {np.shape(out)} and dtype "
                            f"{getattr(out, 'dtype', type(out).__name__)} for a {image.shape} uint8 image; "
                            "a method must return the same shape in uint8")
        return out

    def warn(self, label: str, problem: str) -> None:
        logger.warning("the restored %s has %s: the model %s is damaged or its training diverged; check its file "
                       "(a shipped model: git checkout -- pretrained/) or use another checkpoint",
                       label, problem, self.source.path)

    def restore(self, image: Image.Image | np.ndarray) -> Image.Image | np.ndarray:
        """Restore a PIL image (any mode; the result is RGB, upright by its EXIF orientation, as
        test.py reads files) or an HxWx3 uint8 array; returns the same type at the same size."""
        if isinstance(image, Image.Image):
            return Image.fromarray(self.restore_array(np.asarray(to_rgb(ImageOps.exif_transpose(image)))))
        return self.restore_array(np.asarray(image))
