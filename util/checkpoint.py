"""Checkpoint files that are never half-written and never run foreign code when loaded, and
the plain-data parts of a training state: options and random number generators."""
from __future__ import annotations

import os
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch


CHECKPOINT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated, or holds something other than plain tensors."""


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> None:
    """Write to `<path>.tmp`, flush and fsync, then rename over `path`.

    A kill at any moment leaves either the previous file or the new one, never a mix.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        torch.save(state, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load with `weights_only=True`: tensors, numbers, strings and containers only."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' does not exist; check --name, --epoch and --checkpoints_dir")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"refusing to load '{path}': it holds objects other than tensors and plain data "
            f"(possibly code). Only load checkpoints you trust. Detail: {err}"
        ) from err
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise CheckpointError(f"checkpoint '{path}' is corrupt or truncated ({err}); use another epoch") from err


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
