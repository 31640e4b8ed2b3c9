"""Test-time restoration: run a generator on any image size, tile big ones."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from util.image_io import tensor_to_uint8, uint8_to_tensor

# Smaller tiles are mostly border: the padding and instance norm's per-tile statistics would
# dominate the result (README "Testing on your own photos").
MIN_TILE = 64
# Pixels converted to uint8 at a time after tiled restoration (a few MB of temporaries).
BAND_PIXELS = 1 << 18


def check_tiling(tile: int, overlap: int) -> None:
    """Raise ValueError for tiles that leave gaps or crawl: tiles advance by tile - overlap
    pixels, so an overlap near the tile runs the network on thousands of tiles."""
    if tile < 0 or (tile and tile < MIN_TILE):
        raise ValueError(f"tile ({tile}) must be 0 (whole images) or at least {MIN_TILE} pixels")
    if tile and not 0 <= overlap <= tile // 2:
        raise ValueError(f"tile_overlap ({overlap}) must be at least 0 and at most half of tile ({tile}): give "
                         f"e.g. {tile // 8}")


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad the bottom/right so H and W are multiples; returns the original size."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        # Reflection needs the pad to be smaller than the side; tiny images fall back to replicate.
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


@torch.no_grad()
def run_padded(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Translate an image of any size: pad to the network's multiple, run, crop back."""
    multiple = getattr(net, "size_multiple", 4)
    # Very small images also need room for the reflection pads inside the network.
    h, w = x.shape[-2:]
    if min(h, w) < 4 * multiple:
        x_big = F.pad(x, (0, max(0, 4 * multiple - w), 0, max(0, 4 * multiple - h)), mode="replicate")
        return run_padded(net, x_big)[..., :h, :w]
    padded, (h, w) = pad_to_multiple(x, multiple)
    return net(padded)[..., :h, :w]


def is_out_of_memory(err: BaseException) -> bool:
    """True for an allocation failure: MemoryError, CUDA out of memory, or the CPU allocator's
    RuntimeError ("DefaultCPUAllocator: can't allocate memory")."""
    if isinstance(err, (MemoryError, torch.OutOfMemoryError)):
        return True
    text = str(err).lower()
    return isinstance(err, RuntimeError) and ("can't allocate memory" in text or "not enough memory" in text
                                              or "out of memory" in text)


def _ramp(n: int, overlap: int, device, dtype) -> torch.Tensor:
    """Weights rising linearly over `overlap` pixels at each end of a side of `n` (never zero)."""
    if overlap <= 0:
        return torch.ones(n, device=device, dtype=dtype)
    pos = torch.arange(n, device=device, dtype=dtype)
    edge = torch.minimum(pos + 1, n - pos).clamp(max=overlap)
    return edge / overlap


def _feather_window(th: int, tw: int, overlap: int, device, dtype) -> torch.Tensor:
    """Weights rising linearly over `overlap` pixels at each edge (never zero)."""
    return _ramp(th, overlap, device, dtype)[:, None] * _ramp(tw, overlap, device, dtype)[None, :]


def _tile_starts(length: int, tile: int, step: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


@torch.no_grad()
def restore(net: torch.nn.Module, x: torch.Tensor, tile: int = 0, overlap: int = 32) -> torch.Tensor:
    """Restore a 1x3xHxW image in [-1, 1]; with `tile`, in overlapping feathered tiles.

    Tiling bounds memory by the tile size: a 4000x3000 photo needs only one tile's
    activations at a time. Instance norm makes each tile's statistics local, so tiles
    should be large (512 or more) for results close to whole-image processing.
    """
    h, w = x.shape[-2:]
    if tile <= 0 or (h <= tile and w <= tile):
        return run_padded(net, x)
    if not 0 <= overlap < tile:
        raise ValueError(f"--tile_overlap ({overlap}) must be at least 0 and smaller than --tile ({tile})")
    if overlap > tile // 2:
        raise ValueError(f"--tile_overlap ({overlap}) is more than half of --tile ({tile}): each tile would advance "
                         f"only {tile - overlap} pixels")
    step = tile - overlap
    out = torch.zeros_like(x, dtype=torch.float32)
    weight = torch.zeros((1, 1, h, w), device=x.device, dtype=torch.float32)
    for top in _tile_starts(h, tile, step):
        for left in _tile_starts(w, tile, step):
            patch = x[..., top:top + tile, left:left + tile]
            result = run_padded(net, patch).float()
            win = _feather_window(patch.shape[-2], patch.shape[-1], overlap, x.device, torch.float32)
            out[..., top:top + tile, left:left + tile] += result * win
            weight[..., top:top + tile, left:left + tile] += win
    return out.div_(weight).to(x.dtype)


@torch.no_grad()
def restore_tiled_uint8(net: torch.nn.Module, image: np.ndarray, tile: int, overlap: int,
                        device: torch.device) -> tuple[np.ndarray, bool]:
    """Restore an HxWx3 uint8 photo in feathered tiles -> (HxWx3 uint8, all values finite).

    What `restore` computes, but holding only the uint8 input, one float32 accumulator and the
    uint8 output at full size: each tile is converted when it is cut, the blending weights are
    one row and one column (every tile of a row of tiles has the same height, so their sum is
    separable), and the result is converted band by band. A 6000 x 4000 photo then needs about
    0.45 GB besides the network's activations on one tile, instead of about 1.4 GB.
    """
    check_tiling(tile, overlap)
    h, w = image.shape[:2]
    step = tile - overlap
    out = torch.zeros((1, 3, h, w), device=device, dtype=torch.float32)
    row_weight = torch.zeros(h, device=device, dtype=torch.float32)
    col_weight = torch.zeros(w, device=device, dtype=torch.float32)
    tops, lefts = _tile_starts(h, tile, step), _tile_starts(w, tile, step)
    for top in tops:
        rows = _ramp(min(tile, h - top), overlap, device, torch.float32)
        row_weight[top:top + len(rows)] += rows
        for left in lefts:
            cols = _ramp(min(tile, w - left), overlap, device, torch.float32)
            if top == tops[0]:
                col_weight[left:left + len(cols)] += cols
            patch = uint8_to_tensor(image[top:top + tile, left:left + tile])[None].to(device)
            result = run_padded(net, patch).float()
            out[..., top:top + len(rows), left:left + len(cols)] += result * (rows[:, None] * cols[None, :])
    restored = np.empty_like(image)
    finite = True
    band = max(1, BAND_PIXELS // w)
    for top in range(0, h, band):  # band by band: even isfinite() on the whole image would cost 0.5 GB
        part = out[0, :, top:top + band] / (row_weight[top:top + band, None] * col_weight[None, :])
        if not bool(torch.isfinite(part).all()):
            finite, part = False, torch.nan_to_num(part)
        restored[top:top + band] = tensor_to_uint8(part)
    return restored, finite
