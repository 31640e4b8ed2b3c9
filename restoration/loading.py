"""The one way to a restorer: a training checkpoint, a shipped model or a method without training.

    open_restorer(checkpoint="checkpoints/run/latest.pt", direction="AtoB", device="cuda", tile=512)
    open_restorer(pretrained="rain_synthetic")       # pretrained/rain_synthetic.pt, checked against its card
    open_restorer(method="dcp", method_options={"dcp_patch": 15})

test.py, `Restorer.from_*`, scripts/export_onnx.py, scripts/export_pretrained.py and the
benchmarks load through here. A file with a model card beside it (a shipped model) is hashed
once: the SHA-256 is compared with the card's and its first 12 digits name the file in the results.
"""
from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from models.loading import first_line, generator_from_saved_options, restoring_net_name
from util.checkpoint import CheckpointError, file_digest, load_checkpoint

from .methods import build_method
from .restorer import Restorer
from .shipped import PRETRAINED_DIR, SUFFIX, card_digest
from .sources import LoadedCheckpoint, MethodSource

logger = logging.getLogger(__name__)

# Where load_generator puts the network unless told otherwise.
CPU = torch.device("cpu")
# Digits of the SHA-256 that name a checkpoint in results (metrics.csv, the page).
SHORT_DIGEST = 12

__all__ = ["CPU", "LoadedCheckpoint", "MethodSource", "load_generator", "open_restorer", "pretrained_path",
           "read_checkpoint", "verify_shipped"]


def open_restorer(*, checkpoint: str | Path | None = None, pretrained: str | None = None, method: str | None = None,
                  method_options: argparse.Namespace | Mapping[str, Any] | None = None, direction: str = "AtoB",
                  device: torch.device | str = "cpu", pretrained_dir: str | Path = PRETRAINED_DIR,
                  **runtime_settings) -> Restorer:
    """A Restorer from exactly one source: a checkpoint file (its `direction` generator), a
    shipped model (a name in `pretrained_dir` or a file's path; it restores AtoB) or a method
    without training (its options a namespace or dict of its flags). `runtime_settings` are
    Restorer's: tile, tile_overlap, amp, backend."""
    given = [name for name, value in (("checkpoint", checkpoint), ("pretrained", pretrained), ("method", method))
             if value is not None]
    if len(given) != 1:
        raise ValueError(f"open_restorer takes exactly one of checkpoint, pretrained and method; got "
                         f"{', '.join(given) or 'none'}")
    if method is not None:
        built = build_method(method, method_options)
        source = MethodSource(method, built.describe())
        logger.info("restoring with %s", source.describe())
        return Restorer(built, source, device, **runtime_settings)
    if pretrained is not None:
        checkpoint, direction = pretrained_path(pretrained, pretrained_dir), "AtoB"
    net, source = load_generator(checkpoint, direction, torch.device(device))
    return Restorer(net, source, device, **runtime_settings)


def pretrained_path(name: str, folder: str | Path = PRETRAINED_DIR) -> Path:
    """The file of a shipped model: `folder/<name>.pt` for a plain name; a path (one with a
    '/' or ending in .pt) is taken as it is, so a model outside the repository works too."""
    if "/" in name or name.endswith(SUFFIX):
        path = Path(name)
    else:
        path = Path(folder) / f"{name}{SUFFIX}"
    if not path.is_file():
        shipped = sorted(p.stem for p in Path(folder).glob(f"*{SUFFIX}"))
        raise CheckpointError(f"no shipped model '{path}'; available in {folder}: {', '.join(shipped) or 'none'}")
    return path


def verify_shipped(model_file: str | Path, digest: str | None = None) -> str:
    """The file's full SHA-256 (`digest` if the caller has it), after refusing a file whose
    bytes differ from what its model card states.

    torch.load checks no checksum: damaged weight bytes load and restore every image black.
    A file without a card (a training checkpoint) is not checked.
    """
    actual = digest or file_digest(model_file, 64)
    expected = card_digest(model_file)
    if expected is not None and actual != expected:
        card = Path(model_file).with_suffix(".md")
        raise CheckpointError(f"'{model_file}' is damaged or was replaced: its SHA-256 is {actual[:12]}..., its model "
                              f"card {card} states {expected[:12]}...; restore it with `git checkout -- {model_file}` "
                              "(or export it again with scripts/export_pretrained.py --overwrite)")
    return actual


def read_checkpoint(path: str | Path) -> tuple[dict[str, Any], str]:
    """A checkpoint's state and its full SHA-256, verified against its model card when it has one.
    The file is hashed once, before torch reads it (damaged bytes may not even unpickle)."""
    digest = verify_shipped(path) if Path(path).is_file() else None
    return load_checkpoint(path, map_location="cpu"), digest


def load_generator(checkpoint: str | Path, direction: str = "AtoB",
                   device: torch.device = CPU) -> tuple[nn.Module, LoadedCheckpoint]:
    """Build the restoring generator from a checkpoint's own options and load its weights.

    The architecture flags (netG, ngf, norm, anti-aliasing) come from the checkpoint, so a
    user need not repeat them at test time. Only that one generator is built. A shipped
    model is checked against its card first.
    """
    state, digest = read_checkpoint(checkpoint)
    train_opt = state.get("opt", {})
    net_name = restoring_net_name(state, checkpoint, direction)
    net = generator_from_saved_options(train_opt, net_name)
    try:
        net.load_state_dict(state["nets"][net_name])
    except RuntimeError as err:
        raise CheckpointError(f"the weights of net{net_name} in '{checkpoint}' do not fit the network its options "
                              f"describe ({first_line(err)}); the checkpoint is damaged or was edited") from err
    net.to(device).eval()
    source = LoadedCheckpoint(Path(checkpoint), train_opt, dict(state.get("position", {})), digest[:SHORT_DIGEST])
    logger.info("loaded net%s from %s", net_name, source.describe())
    return net, source
