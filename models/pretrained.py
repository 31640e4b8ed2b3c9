"""Shipped models: one restoring generator in a small file under pretrained/.

A shipped model is a checkpoint cut down to what restoration needs, so `load_generator`
reads it like any checkpoint: `nets` holds only the generator test.py would load (the EMA
copy when the run kept one), `test_nets` maps the restoring direction to it, and `opt` holds
only the architecture options that rebuild it. `source` records the checkpoint it came from.
A model card, `pretrained/<NAME>.md`, sits beside each file.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from util.atomic_file import atomic_write
from util.checkpoint import CHECKPOINT_VERSION, CheckpointError, file_digest, load_checkpoint

from .loading import GENERATOR_OPTIONS, upsample_taps_of

logger = logging.getLogger(__name__)

PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"
SHIPPED_KIND = "shipped_generator"
SUFFIX = ".pt"
# Shipped models are committed to the repository: keep them small.
MAX_SHIPPED_MB = 5.0
# The card's line naming the file states its full SHA-256 (MODEL_CARD.template.md).
CARD_DIGEST = re.compile(r"MB, SHA-256 `([0-9a-f]{64})`")


def card_digest(model_file: str | Path) -> str | None:
    """The SHA-256 the model card beside `model_file` states for it; None without a card."""
    card = Path(model_file).with_suffix(".md")
    if not card.is_file():
        return None
    found = CARD_DIGEST.search(card.read_text(encoding="utf-8", errors="replace"))
    return found.group(1) if found else None


def verify_shipped(model_file: str | Path) -> None:
    """Refuse a model file whose bytes differ from what its card states.

    torch.load checks no checksum: damaged weight bytes load and restore every image black.
    A file without a card (a training checkpoint) is not checked here.
    """
    expected = card_digest(model_file)
    if expected is None:
        return
    actual = file_digest(model_file, 64)
    if actual != expected:
        card = Path(model_file).with_suffix(".md")
        raise CheckpointError(f"'{model_file}' is damaged or was replaced: its SHA-256 is {actual[:12]}..., its model "
                              f"card {card} states {expected[:12]}...; restore it with `git checkout -- {model_file}` "
                              "(or export it again with scripts/export_pretrained.py --overwrite)")


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


def shipped_state(checkpoint: Mapping[str, Any], source_path: str | Path, direction: str = "AtoB",
                  half: bool = False) -> dict[str, Any]:
    """The shipped-model dict of a loaded training checkpoint: its restoring generator only."""
    net_name = checkpoint.get("test_nets", {}).get(direction)
    if net_name is None or net_name not in checkpoint["nets"]:
        raise CheckpointError(f"'{source_path}' has no generator for direction {direction}")
    saved = checkpoint.get("opt", {})
    options = {key: saved[key] for key in GENERATOR_OPTIONS if key in saved}
    # Written out even when the checkpoint predates the flag, so the file says which filter it needs.
    options["upsample_taps"] = upsample_taps_of(saved)
    weights = {k: v.half() if half and v.is_floating_point() else v for k, v in checkpoint["nets"][net_name].items()}
    return {
        "version": CHECKPOINT_VERSION,
        "kind": SHIPPED_KIND,
        "model": checkpoint.get("model"),
        "test_nets": {direction: net_name},
        "nets": {net_name: weights},
        "position": dict(checkpoint.get("position", {})),
        "opt": options,
        "source": {"checkpoint": str(source_path), "sha256": file_digest(source_path),
                   "name": saved.get("name"), "dataroot": saved.get("dataroot")},
    }


def export_generator(checkpoint_path: str | Path, out: str | Path, direction: str = "AtoB",
                     half: bool = False) -> dict[str, Any]:
    """Read a training checkpoint and write its restoring generator to `out`; returns the state."""
    state = shipped_state(load_checkpoint(checkpoint_path), checkpoint_path, direction, half)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out, "wb") as fh:
        torch.save(state, fh)
    logger.info("wrote %s (%.2f MB) from %s", out, out.stat().st_size / 1e6, checkpoint_path)
    return state
