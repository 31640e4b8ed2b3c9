"""Export a training checkpoint's restoring generator as a shipped model (restoration/shipped.py).

A shipped model is a checkpoint cut down to what restoration needs: `nets` holds only the
generator test.py would load (the EMA copy when the run kept one), `test_nets` maps the
restoring direction to it, `opt` holds only the architecture options that rebuild it and
`source` the checkpoint it came from.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from models.loading import GENERATOR_OPTIONS, restoring_net_name, upsample_taps_of
from util.atomic_file import atomic_write
from util.checkpoint import CHECKPOINT_VERSION, file_digest

from .loading import SHORT_DIGEST, read_checkpoint
from .shipped import SHIPPED_KIND

logger = logging.getLogger(__name__)


def shipped_state(checkpoint: Mapping[str, Any], source_path: str | Path, direction: str = "AtoB",
                  half: bool = False, source_digest: str | None = None) -> dict[str, Any]:
    """The shipped-model dict of a loaded training checkpoint: its restoring generator only.
    `source_digest`: the checkpoint file's short SHA-256 where the caller has it (else it is hashed)."""
    net_name = restoring_net_name(checkpoint, source_path, direction)
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
        "source": {"checkpoint": str(source_path), "sha256": source_digest or file_digest(source_path),
                   "name": saved.get("name"), "dataroot": saved.get("dataroot")},
    }


def export_generator(checkpoint_path: str | Path, out: str | Path, direction: str = "AtoB",
                     half: bool = False) -> dict[str, Any]:
    """Read a training checkpoint and write its restoring generator to `out`; returns the state."""
    checkpoint, digest = read_checkpoint(checkpoint_path)
    state = shipped_state(checkpoint, checkpoint_path, direction, half, digest[:SHORT_DIGEST])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out, "wb") as fh:
        torch.save(state, fh)
    logger.info("wrote %s (%.2f MB) from %s", out, out.stat().st_size / 1e6, checkpoint_path)
    return state
