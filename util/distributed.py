"""Multi-process training under torchrun: process group, DDP and compile wrapping, rank-aware logging.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK (and MASTER_ADDR/PORT) for every process it
starts; a plain `python train.py` has none of them and runs as rank 0 of 1 with no process
group. Each process drives one device: cuda:LOCAL_RANK with NCCL, or the CPU with gloo.

Normalisation: instance norm (the default everywhere) normalises each image by its own
statistics, so it needs no synchronisation across processes. Batch norm would see only
the per-process batch; on CUDA the networks' BatchNorm layers are converted to
SyncBatchNorm when world_size > 1. SyncBatchNorm has no CPU kernel, so CPU (gloo) runs keep
per-process batch statistics and rank 0's running statistics are the ones saved.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

logger = logging.getLogger(__name__)

# Test-only hook: when set, every rank writes the digests of its networks here at the end
# of training, so a test can check that all ranks hold identical weights.
DIGEST_DIR_ENV = "DCDGAN_RANK_DIGEST_DIR"


class DistributedError(RuntimeError):
    """The torchrun environment is malformed or asks for devices that do not exist."""


@dataclass(frozen=True)
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def context_from_env(environ: Mapping[str, str] = os.environ) -> DistributedContext:
    """Read RANK / WORLD_SIZE / LOCAL_RANK as torchrun sets them (absent: one process)."""
    values = {}
    for key, default in (("RANK", 0), ("WORLD_SIZE", 1), ("LOCAL_RANK", 0)):
        raw = environ.get(key, str(default))
        try:
            values[key] = int(raw)
        except ValueError as err:
            raise DistributedError(f"environment variable {key}='{raw}' is not an integer; "
                                   f"launch multi-process training with torchrun") from err
    ctx = DistributedContext(values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"])
    if ctx.world_size < 1 or not 0 <= ctx.rank < ctx.world_size:
        raise DistributedError(f"RANK={ctx.rank} is outside WORLD_SIZE={ctx.world_size}; "
                               f"launch multi-process training with torchrun")
    return ctx


def device_of(gpu_ids: list[int]) -> torch.device:
    """The device a process drives: the first of `gpu_ids`, the CPU when there is none."""
    return torch.device(f"cuda:{gpu_ids[0]}") if gpu_ids else torch.device("cpu")


def init_distributed(gpu_ids: list[int]) -> tuple[DistributedContext, torch.device]:
    """Join the process group torchrun prepared; returns the context and this process's device."""
    ctx = context_from_env()
    if not ctx.enabled:
        return ctx, device_of(gpu_ids)
    if gpu_ids:
        if ctx.local_rank >= torch.cuda.device_count():
            raise DistributedError(f"LOCAL_RANK {ctx.local_rank} needs a GPU but only {torch.cuda.device_count()} "
                                   f"are visible; use --nproc_per_node <= the GPU count")
        # One process per GPU: whatever --gpu_ids said, this process drives cuda:LOCAL_RANK.
        device = torch.device(f"cuda:{ctx.local_rank}")
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device = torch.device("cpu")
        backend = "gloo"
    dist.init_process_group(backend=backend)
    global _control_group
    # Verdicts (stop signal, NaN loss) are CPU scalars: agree on them over gloo, so that a
    # NCCL run does not copy a flag to the GPU and wait for it on every iteration.
    _control_group = dist.new_group(backend="gloo") if backend == "nccl" else None
    logger.info("rank %d of %d (%s, %s)", ctx.rank, ctx.world_size, backend, device)
    return ctx, device


# The process group for max_over_ranks: None is the default group (gloo on the CPU).
_control_group = None


def max_over_ranks(value: int) -> int:
    """The largest of every rank's `value` (each rank must call this at the same point).

    Decisions that end or skip a step must be taken by all ranks together: a rank that stops
    alone (it got the signal, or its loss was NaN) leaves the others waiting forever in the
    next gradient all-reduce. One process, or no process group: `value` itself.
    """
    if not dist.is_available() or not dist.is_initialized():
        return value
    flag = torch.tensor([value], dtype=torch.int64)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=_control_group)
    return int(flag)


@contextmanager
def distributed_run(gpu_ids: list[int]) -> Iterator[tuple[DistributedContext, torch.device]]:
    """init_distributed for the duration of a block; the process group is torn down after."""
    ctx, device = init_distributed(gpu_ids)
    try:
        yield ctx, device
        leave_together()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def leave_together() -> None:
    """Wait for every rank before the process group is torn down.

    A gloo rank that closes its connections while a peer is still finishing its last
    collective can make that peer abort in teardown (SIGABRT, "terminate called without an
    active exception"). Called on the normal way out only: after an error a peer may be gone,
    and waiting for it would hang.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier(group=_control_group)


def quiet_other_ranks(ctx: DistributedContext) -> None:
    """Only rank 0 logs progress; the others report warnings and errors only."""
    if not ctx.is_main:
        logging.getLogger().setLevel(logging.WARNING)


def wrap_ddp(net: nn.Module, device: torch.device) -> DistributedDataParallel:
    """Wrap one network for data-parallel training (rank 0's weights are broadcast here).

    Gradients are averaged in the backward that follows the wrapper's forward passes, so
    every parameter that requires grad must get one there; the models keep that true by
    design: encode-only passes (no decoder) always share a loss with a full pass of the
    same generator, and a discriminator frozen for the generator step has no parameter
    that requires grad, so no reduction starts. Unused-parameter search stays off.
    Buffers (constant blur kernels; with batch norm, running statistics) are synced once
    here, not on every forward.
    """
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(net, device_ids=device_ids, forward_sync_buffers=False)


def prepare_for_training(net: nn.Module, device: torch.device, name: str, distributed: bool,
                         compile_net: bool) -> nn.Module:
    """One network as it trains: batch norm synchronised and DDP-wrapped under torchrun, and
    torch.compile'd with --compile. The wrappers share the plain module's parameters."""
    if distributed:
        net = _sync_batchnorm(net, device, name)
    if compile_net:
        net = compile_network(net, device)
    if distributed:
        net = wrap_ddp(net, device)
    return net


def compile_network(net: nn.Module, device: torch.device) -> nn.Module:
    """torch.compile one network, failing early and clearly where its toolchain is missing."""
    if device.type == "cuda":
        from torch.utils._triton import has_triton
        if not has_triton():
            raise RuntimeError("--compile on CUDA needs Triton (pip install triton); run without --compile")
    elif not any(shutil.which(cxx) for cxx in (os.environ.get("CXX", "g++"), "c++", "clang++")):
        raise RuntimeError("--compile on the CPU needs a C++ compiler (g++ or clang++) on PATH; "
                           "install one or run without --compile")
    try:
        return torch.compile(net)
    except Exception as err:  # torch.compile raises many types; all mean the same to the user
        raise RuntimeError(f"torch.compile failed for {type(net).__name__} ({err}); run without --compile") from err


def _sync_batchnorm(net: nn.Module, device: torch.device, name: str) -> nn.Module:
    """Batch norm across processes needs SyncBatchNorm, which only runs on CUDA."""
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules()):
        return net
    if device.type != "cuda":
        logger.warning("net%s uses batch norm: on the CPU each process keeps its own batch statistics "
                       "(SyncBatchNorm needs CUDA); rank 0's running statistics are saved", name)
        return net
    return nn.SyncBatchNorm.convert_sync_batchnorm(net)


def unwrap(net: nn.Module) -> nn.Module:
    """The plain module inside a DDP or torch.compile wrapper."""
    net = getattr(net, "module", net)
    return getattr(net, "_orig_mod", net)


def parameter_digest(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of a state dict's tensors in key order (equal digests: equal weights)."""
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        # Raw bytes, whatever the dtype (bf16 has no numpy type).
        digest.update(state[key].detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def write_rank_digests(state_dicts: Mapping[str, Mapping[str, torch.Tensor]], rank: int) -> Path | None:
    """With DCDGAN_RANK_DIGEST_DIR set, write {net name: digest} to <dir>/rank<rank>.json."""
    folder = os.environ.get(DIGEST_DIR_ENV)
    if not folder:
        return None
    path = Path(folder) / f"rank{rank}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({name: parameter_digest(state) for name, state in state_dicts.items()}))
    return path
