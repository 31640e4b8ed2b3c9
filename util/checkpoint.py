"""Checkpoint files that are never half-written and never run foreign code when loaded, and
the plain-data parts of a training state: options and random number generators."""
from __future__ import annotations

import hashlib
import os
import pickle
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from util.atomic_file import atomic_write

CHECKPOINT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated, or holds something other than plain tensors."""


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> None:
    """Write to a temporary `<path>.*.tmp`, flush and fsync, then rename over `path`.

    A kill at any moment leaves either the previous file or the new one, never a mix; a full
    disk raises `DiskFullError` and keeps the previous file.
    """
    with atomic_write(path, "wb", durable=True) as fh:
        torch.save(state, fh)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load with `weights_only=True`: tensors, numbers, strings and containers only."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' does not exist; check --name, --epoch and --checkpoints_dir")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        # torch's own message runs to many lines and suggests weights_only=False, which would
        # run whatever code the file holds: name only what was refused.
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        held = f" ({found.group(1)})" if found else ""
        raise CheckpointError(f"refusing to load '{path}': it holds Python objects{held} besides tensors and plain "
                              "data, which this repository never saves and which could run code; the checkpoints to "
                              "trust are those written by train.py or scripts/export_pretrained.py") from err
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise CheckpointError(f"checkpoint '{path}' is corrupt or truncated ({err}); use another epoch") from err
    if not isinstance(state, dict) or not isinstance(state.get("nets"), dict):
        held = (f"a dict without networks (keys: {', '.join(sorted(map(str, state))[:8]) or 'none'})"
                if isinstance(state, dict) else f"a {type(state).__name__}")
        raise CheckpointError(f"'{path}' is not a checkpoint of this repository: it holds {held}; "
                              "check --name, --epoch and --checkpoints_dir")
    return state


def describe_position(position: dict[str, int]) -> str:
    """'epoch 3, iteration 600' for a checkpoint saved at the end of epoch 3, 'part of epoch 4,
    iteration 620' for one saved 20 iterations into epoch 4.

    A position names where training continues: after epoch 3 it is epoch 4, iteration 0.
    """
    epoch, into, total = position.get("epoch", 1), position.get("epoch_iter", 0), position.get("total_iters", 0)
    if into == 0:
        return f"epoch {epoch - 1}, iteration {total}"
    return f"part of epoch {epoch}, iteration {total}"


def file_digest(path: str | os.PathLike, length: int = 12) -> str:
    """The first `length` hex digits of the file's SHA-256: which file made a result."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()[:length]


def training_state(model: str, test_nets: dict[str, str], nets: dict[str, dict[str, torch.Tensor]],
                   optimizers: dict[str, Any], schedulers: dict[str, Any], scaler: Any, extra: dict[str, Any],
                   position: dict[str, int], opt) -> dict[str, Any]:
    """A whole training state as plain data, the layout every checkpoint file has.

    `model` is the --model name, `test_nets` which network test.py loads per direction,
    `nets` plain state dicts; optimizers, schedulers and the gradient scaler are saved with
    their `state_dict()`; `extra` holds the model's pools, queues and EMA copies.
    """
    return {
        "version": CHECKPOINT_VERSION,
        "model": model,
        "test_nets": test_nets,
        "nets": nets,
        "optimizers": {name: o.state_dict() for name, o in optimizers.items()},
        "schedulers": {name: s.state_dict() for name, s in schedulers.items()},
        "scaler": scaler.state_dict(),
        "extra": extra,
        "position": dict(position),
        "rng": capture_rng_state(),
        "opt": plain_options(opt),
    }


def plain_options(opt) -> dict[str, Any]:
    """Options as plain data (weights_only checkpoints hold no Namespace objects)."""
    out = {}
    for key, value in vars(opt).items():
        if isinstance(value, (str, int, float, bool, type(None))):
            out[key] = value
        elif isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float, bool)) for v in value):
            out[key] = list(value)
    return out


def capture_rng_state() -> dict[str, Any]:
    """torch, numpy, Python (and CUDA) generator states as tensors and plain data."""
    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "python": {"version": py_version, "internal": list(py_internal), "gauss": py_gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    np_s = state["numpy"]
    np.random.set_state(("MT19937", np_s["keys"].numpy().astype(np.uint32), np_s["pos"],
                         np_s["has_gauss"], np_s["gauss"]))
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
