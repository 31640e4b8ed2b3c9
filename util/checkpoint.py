"""Checkpoint files that are never half-written and never run foreign code when loaded, and
the plain-data parts of a training state: options and random number generators."""
from __future__ import annotations

import hashlib
import importlib.util
import os
import pickle
import random
import re
import sys
import warnings
import zipfile
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


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu",
                    training: bool = False) -> dict[str, Any]:
    """Load with `weights_only=True`: tensors, numbers, strings and containers only.

    Any file that is not a checkpoint of this repository raises `CheckpointError` with one
    line saying what the file is (empty, not a checkpoint, corrupt or truncated, written by
    another program, holding Python objects); never another exception. With `training` the
    parts a resumed training reads (optimizers, schedulers, scaler, extra, rng, position) must be there.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' does not exist; check --name, --epoch and --checkpoints_dir")
    check_container(path)
    try:
        with warnings.catch_warnings():
            # torch warns about the pickle protocol of foreign files before it refuses them.
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        # torch's own message runs to many lines and suggests weights_only=False, which would
        # run whatever code the file holds: name only what was refused.
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        if found is not None and not names_something(found.group(1)):
            raise CheckpointError(f"checkpoint '{path}' is corrupt or truncated (it refers to '{found.group(1)}', "
                                  "which no module defines); use another epoch") from err
        if found is None:
            raise CheckpointError(f"'{path}' is not a checkpoint: a pickle that torch.save did not write (written "
                                  f"by another program, or damaged: {unpickler_reason(err)}){TRUST}") from err
        raise CheckpointError(f"refusing to load '{path}': it holds Python objects ({found.group(1)}) besides tensors "
                              "and plain data, which this repository never saves and which could run code; "
                              f"{TRUST.removeprefix('; ')}") from err
    except Exception as err:  # noqa: BLE001 - any parse error of a damaged file is the same refusal
        raise CheckpointError(f"checkpoint '{path}' is corrupt or truncated ({first_line(err)}); use another "
                              "epoch") from err
    check_layout(state, path, training)
    return state


# What the refusals of foreign files suggest.
TRUST = "; the checkpoints to trust are those written by train.py or scripts/export_pretrained.py"
ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format: a zip archive holding <folder>/data.pkl
PICKLE_MAGIC = b"\x80"  # torch's legacy format: pickles (protocol 2 or later start with this byte)
# The parts of a checkpoint a resumed training indexes into, each a dict.
TRAINING_PARTS = ("optimizers", "schedulers", "scaler", "extra", "rng", "position")


def check_container(path: Path) -> None:
    """Refuse a file whose first bytes are neither torch's zip nor a pickle, a zip without
    torch's data.pkl, and a zip whose directory is missing (a truncated file)."""
    with open(path, "rb") as fh:
        head = fh.read(64)
    if not head:
        raise CheckpointError(f"checkpoint '{path}' is empty (0 bytes): corrupt or truncated; use another epoch")
    if head.startswith(PICKLE_MAGIC):
        return
    if not head.startswith(ZIP_MAGIC):
        raise CheckpointError(f"'{path}' is not a checkpoint: it is {describe_bytes(head)}, where a checkpoint "
                              f"starts with a zip or pickle header{TRUST}")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except Exception as err:  # noqa: BLE001 - BadZipFile, NotImplementedError, OSError...: a damaged directory
        raise CheckpointError(f"checkpoint '{path}' is corrupt or truncated (a zip archive without its directory: "
                              f"{first_line(err)}); use another epoch") from err
    if not any(re.fullmatch(r"[^/]+/data\.pkl", name) for name in names):
        raise CheckpointError(f"'{path}' is not a checkpoint: a zip archive written by another program (it holds "
                              f"{', '.join(names[:3]) or 'nothing'}{', ...' if len(names) > 3 else ''}, no data.pkl)"
                              f"{TRUST}")


def describe_bytes(head: bytes) -> str:
    """'a text file ("hello ...")' or 'binary data (starts with 0x1f8b0800)'."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c in "\t\r\n" for c in text):
        return f"a text file ({text[:24].strip()!r}...)"
    return f"binary data (starts with 0x{head[:4].hex()})"


def check_layout(state: Any, path: Path, training: bool = False) -> None:
    """The loaded object has the layout every caller indexes into: `nets` a dict of state
    dicts of tensors; `test_nets` names to names; `opt` and `position` dicts (of ints)."""
    def refuse(what: str) -> None:
        raise CheckpointError(f"'{path}' is not a checkpoint of this repository: {what}; check --name, --epoch "
                              "and --checkpoints_dir")

    if not isinstance(state, dict):
        refuse(f"it holds a {type(state).__name__}")
    if not isinstance(state.get("nets"), dict):
        refuse(f"it holds a dict without networks (keys: {', '.join(sorted(map(str, state))[:8]) or 'none'})")
    for name, weights in state["nets"].items():
        if not isinstance(weights, dict) or not all(isinstance(t, torch.Tensor) for t in weights.values()):
            refuse(f"its network '{name}' is not a dict of tensors")
    names = state.get("test_nets", {})
    if not isinstance(names, dict) or not all(isinstance(v, str) for v in names.values()):
        refuse("its 'test_nets' is not a dict of network names")
    if not isinstance(state.get("opt", {}), dict):
        refuse("its 'opt' is not a dict of options")
    position = state.get("position", {})
    if not isinstance(position, dict) or not all(isinstance(v, int) for v in position.values()):
        refuse("its 'position' is not a dict of counts")
    missing = [part for part in TRAINING_PARTS if training and not isinstance(state.get(part), dict)]
    if missing:
        refuse(f"it has no training state to resume ({', '.join(missing)}): a shipped model or an edited file")
    rng = state.get("rng", {})
    if training and not (isinstance(rng.get("torch"), torch.Tensor) and isinstance(rng.get("numpy"), dict)
                         and isinstance(rng.get("python"), dict)):
        refuse("its random number generator states ('rng') are not laid out as train.py saves them")


def names_something(dotted: str) -> bool:
    """Whether 'module.attribute' names something that exists, found without importing
    anything new (an import runs code): a damaged file's garbled name does not."""
    module, _, attribute = dotted.rpartition(".")
    module = module or "builtins"  # torch names builtins without their module ('exec')
    if module in sys.modules:
        return hasattr(sys.modules[module], attribute)
    try:
        return importlib.util.find_spec(module.split(".")[0]) is not None
    except (ImportError, ValueError):
        return False


def unpickler_reason(err: BaseException) -> str:
    """What torch's weights-only unpickler objected to ('Unsupported operand 149'), without
    the paragraph around it that suggests loading with weights_only=False."""
    found = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", str(err))
    return found.group(1).strip()[:120] if found else type(err).__name__


def first_line(err: BaseException) -> str:
    """The first line of an error's message, at most 120 characters (torch's run to 20 lines)."""
    text = str(err).strip()
    return (text.splitlines()[0][:120] if text else "") or type(err).__name__


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
