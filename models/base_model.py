"""Model lifecycle shared by every model: devices, precision, schedulers, checkpoints.

A model declares its parts explicitly and fails loudly on a bad name:
- `loss_names`: keys the model must put in `self.losses` during `optimize_parameters`;
- `visual_names`: keys of `self.visuals`;
- `model_names`: networks saved in checkpoints, stored as attributes `net<Name>`;
- `self.optimizers`: name -> optimizer (all of them are saved and scheduled);
- `self.image_pools`: name -> ImagePool (saved in checkpoints with the rest of the state).
"""
from __future__ import annotations

import contextlib
import logging
import os
import random
import shutil
import warnings
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

from util.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from util.distributed import wrap_ddp
from util.ema import ema_update, frozen_copy, warmed_up_decay
from util.image_pool import ImagePool

from .networks import define_discriminator, generator_from_options, get_scheduler, init_weights
from .networks.generators import upsample_taps_of

logger = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1


class BaseModel(ABC):
    loss_names: list[str] = []
    visual_names: list[str] = []
    model_names: list[str] = []

    def __init__(self, opt):
        self.opt = opt
        self.is_train = opt.is_train
        self.device = torch.device(f"cuda:{opt.gpu_ids[0]}") if opt.gpu_ids else torch.device("cpu")
        self.save_dir = Path(opt.checkpoints_dir) / opt.name
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, Any] = {}
        self.losses: dict[str, torch.Tensor] = {}
        self.visuals: dict[str, torch.Tensor] = {}
        self.image_paths: list[str] = []
        self.image_pools: dict[str, ImagePool] = {}
        # --ema_decay: averaged copies net<name>_ema of the restoring generators, used at test time.
        self.ema_names: list[str] = []
        self.ema_steps = 0
        self.amp_dtype = self._pick_amp_dtype()
        # A gradient scaler only matters for fp16; bf16 has fp32's range.
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)

    # ----- options -------------------------------------------------------------------
    @staticmethod
    def modify_commandline_options(parser, is_train: bool):
        return parser

    # ----- precision -----------------------------------------------------------------
    def _pick_amp_dtype(self) -> torch.dtype | None:
        if not getattr(self.opt, "amp", False):
            return None
        if self.device.type == "cuda" and not torch.cuda.is_bf16_supported():
            return torch.float16
        return torch.bfloat16

    def autocast(self):
        """Mixed-precision context for forward passes (a no-op without --amp)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def backward_and_step(self, loss: torch.Tensor, optimizer_names: list[str]) -> None:
        """Backward `loss` and step the named optimizers (through the scaler under fp16)."""
        try:
            self.scaler.scale(loss).backward()
        except Exception as err:
            # torch.compile builds the backward graph lazily, so its failures surface here.
            if getattr(self.opt, "compile", False):
                err.add_note("--compile is on: torch.compile may not support these networks in this PyTorch "
                             "(torch 2.14.1's inductor fails on the replication-pad backward); run without --compile")
            raise
        for name in optimizer_names:
            self.scaler.step(self.optimizers[name])
        self.scaler.update()

    def adam(self, *nets: nn.Module, lr: float | None = None,
             betas: tuple[float, float] | None = None) -> torch.optim.Adam:
        """Adam over the nets' parameters, at --lr and (--beta1, --beta2) unless given."""
        params = [p for net in nets for p in net.parameters()]
        return torch.optim.Adam(params, lr=self.opt.lr if lr is None else lr,
                                betas=(self.opt.beta1, self.opt.beta2) if betas is None else betas)

    def minimise(self, compute_loss: Callable[[], torch.Tensor], optimizer_names: list[str]) -> torch.Tensor:
        """One update: clear the named optimizers' gradients, compute the loss under
        autocast, backward it and step them. Returns the loss."""
        for name in optimizer_names:
            self.optimizers[name].zero_grad(set_to_none=True)
        with self.autocast():
            loss = compute_loss()
        self.backward_and_step(loss, optimizer_names)
        return loss

    def pooled_D_loss(self, loss_name: str, net_D: nn.Module, real: torch.Tensor, fake_name: str) -> torch.Tensor:
        """D loss of `real` against the fake `self.<fake_name>` drawn through its image pool."""
        fake = self.image_pools[fake_name].query(getattr(self, fake_name))
        self.losses[loss_name] = self.gan_loss.discriminator_loss(net_D, real, fake)
        return self.losses[loss_name]

    def two_domain_D_loss(self) -> torch.Tensor:
        """Both discriminators of a two-generator model: D_A judges B images, D_B judges A images."""
        return (self.pooled_D_loss("D_A", self.netD_A, self.real_B, "fake_B")
                + self.pooled_D_loss("D_B", self.netD_B, self.real_A, "fake_A"))

    def to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if getattr(self.opt, "channels_last", False):
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    # ----- networks ------------------------------------------------------------------
    def net(self, name: str) -> nn.Module:
        return getattr(self, "net" + name)

    def build_generator(self, net_name: str = "G_A") -> nn.Module:
        """Generator `net_name` from --netG/--ngf/--normG/anti-aliasing/--rain_layer, initialised per
        --init_type."""
        return init_weights(generator_from_options(self.opt, net_name), self.opt.init_type, self.opt.init_gain)

    def build_discriminator(self) -> nn.Module:
        """A discriminator from --netD/--ndf/--normD/anti-aliasing, initialised per --init_type."""
        o = self.opt
        net = define_discriminator(o.netD, o.output_nc, o.ndf, o.n_layers_D, o.normD, o.no_antialias)
        return init_weights(net, o.init_type, o.init_gain)

    def add_generator_ema(self) -> None:
        """With --ema_decay > 0, keep an exponential moving average of each restoring generator
        (BasicSR's `ema_decay`): saved in checkpoints as net<name>_ema and used by test.py.
        Call after the generators exist and before `place_networks`."""
        if not (self.is_train and self.opt.ema_decay > 0):
            return
        for name in dict.fromkeys(self.restoring_nets().values()):
            setattr(self, f"net{name}_ema", frozen_copy(self.net(name)))
            self.model_names.append(f"{name}_ema")
            self.ema_names.append(name)

    def update_ema(self) -> None:
        """One EMA step after an optimisation step (decay warmed up over the first steps)."""
        if not self.ema_names:
            return
        self.ema_steps += 1
        decay = warmed_up_decay(self.opt.ema_decay, self.ema_steps)
        for name in self.ema_names:
            ema_update(self.net(f"{name}_ema"), _unwrap(self.net(name)), decay)

    def networks(self) -> dict[str, nn.Module]:
        return {name: self.net(name) for name in self.model_names}

    def place_networks(self) -> None:
        for net in self.networks().values():
            net.to(self.device)
            if getattr(self.opt, "channels_last", False):
                net.to(memory_format=torch.channels_last)

    def wrap_networks(self, distributed: bool = False) -> None:
        """Compile (--compile) and, under torchrun, wrap in DDP every network that trains.

        Call once, after setup(): the wrappers share the plain modules' parameters, so the
        optimizers keep working and checkpoints still hold plain state dicts (`_unwrap`).
        """
        for name in self.model_names:
            net = self.net(name)
            if not any(p.requires_grad for p in net.parameters()):
                continue
            if distributed:
                net = _sync_batchnorm(net, self.device, name)
            if getattr(self.opt, "compile", False):
                net = compile_network(net, self.device)
            if distributed:
                net = wrap_ddp(net, self.device)
            setattr(self, "net" + name, net)

    @staticmethod
    def set_requires_grad(nets: list[nn.Module], requires_grad: bool) -> None:
        for net in nets:
            for p in net.parameters():
                p.requires_grad_(requires_grad)

    def parameter_count(self) -> dict[str, int]:
        return {name: sum(p.numel() for p in net.parameters()) for name, net in self.networks().items()}

    # ----- lifecycle -----------------------------------------------------------------
    def setup(self) -> dict[str, int]:
        """Create schedulers; load a checkpoint when resuming or testing.

        Returns the position to start training from: {'epoch', 'epoch_iter', 'total_iters'}.
        """
        position = {"epoch": self.opt.epoch_count if self.is_train else 1, "epoch_iter": 0, "total_iters": 0}
        if self.is_train:
            self.schedulers = {name: get_scheduler(optim, self.opt) for name, optim in self.optimizers.items()}
            if self.opt.continue_train:
                position = self.load(self.opt.epoch)
        for name, count in self.parameter_count().items():
            logger.info("net%s: %.3f M parameters", name, count / 1e6)
        return position

    def set_input(self, batch: dict) -> None:
        """Take an unaligned batch: `real_A`, `real_B` and the A paths."""
        self.real_A = self.to_device(batch["A"])
        self.real_B = self.to_device(batch["B"])
        self.image_paths = batch["A_paths"]

    @abstractmethod
    def optimize_parameters(self) -> None: ...

    def train(self) -> None:
        for net in self.networks().values():
            net.train()

    def eval(self) -> None:
        for net in self.networks().values():
            net.eval()

    def get_current_losses(self) -> dict[str, float]:
        """Float values of the declared losses (this synchronises with the device)."""
        missing = [n for n in self.loss_names if n not in self.losses]
        if missing:
            raise KeyError(f"{type(self).__name__} declares losses {missing} but did not compute them")
        return {name: float(self.losses[name].detach()) for name in self.loss_names}

    def collect_visuals(self) -> None:
        """Point `self.visuals` at the attributes named by `visual_names`."""
        self.visuals = {name: getattr(self, name) for name in self.visual_names}

    def get_current_visuals(self) -> dict[str, torch.Tensor]:
        missing = [n for n in self.visual_names if n not in self.visuals]
        if missing:
            raise KeyError(f"{type(self).__name__} declares visuals {missing} but did not produce them")
        return {name: self.visuals[name].detach() for name in self.visual_names}

    def update_learning_rate(self, metric: float | None = None) -> float:
        with warnings.catch_warnings():
            # A run resumed from a checkpoint saved on an epoch's last iteration ends that epoch
            # before its first optimizer step; torch then warns that the schedule is stepped
            # "before optimizer.step()". The epoch's steps were taken (by the run that saved it),
            # so the schedule is right: silence that one warning.
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)` before")
            for scheduler in self.schedulers.values():
                if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    scheduler.step(metric if metric is not None else 0.0)
                else:
                    scheduler.step()
        first = next(iter(self.optimizers.values()), None)
        return first.param_groups[0]["lr"] if first else 0.0

    # ----- test time -----------------------------------------------------------------
    @staticmethod
    def restoring_nets() -> dict[str, str]:
        """The generator that translates in each --direction."""
        return {"AtoB": "G_A", "BtoA": "G_B"}

    def test_net_names(self) -> dict[str, str]:
        """Which network test.py loads for each --direction: the EMA copy when there is one."""
        return {d: f"{n}_ema" if n in self.ema_names else n for d, n in self.restoring_nets().items()}

    # ----- checkpoints ---------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        """State beyond networks and optimizers: the image pools; models add EMA copies, queues."""
        return {"image_pools": {name: pool.state_dict() for name, pool in self.image_pools.items()},
                "ema_steps": self.ema_steps}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        for name, pool in self.image_pools.items():
            pool.load_state_dict(state["image_pools"][name], self.device)
        self.ema_steps = state.get("ema_steps", 0)

    def plain_state_dicts(self) -> dict[str, dict[str, torch.Tensor]]:
        """Each network's weights without DDP / torch.compile prefixes."""
        return {name: _unwrap(net).state_dict() for name, net in self.networks().items()}

    def state_dict(self, position: dict[str, int]) -> dict[str, Any]:
        return {
            "version": CHECKPOINT_VERSION,
            "model": self.opt.model,
            "test_nets": self.test_net_names(),
            "nets": self.plain_state_dicts(),
            "optimizers": {name: o.state_dict() for name, o in self.optimizers.items()},
            "schedulers": {name: s.state_dict() for name, s in self.schedulers.items()},
            "scaler": self.scaler.state_dict(),
            "extra": self.extra_state(),
            "position": dict(position),
            "rng": capture_rng_state(),
            "opt": plain_options(self.opt),
        }

    def save(self, label: str, position: dict[str, int]) -> Path:
        """Write the whole training state to checkpoints/<name>/<label>.pt atomically."""
        path = self.save_dir / f"{label}.pt"
        save_checkpoint(self.state_dict(position), path)
        return path

    def load(self, label: str) -> dict[str, int]:
        """Restore the whole training state from checkpoints/<name>/<label>.pt."""
        path = self.save_dir / f"{label}.pt"
        # Loaded on the CPU whatever the device: each part below copies itself over. Mapped
        # to a GPU, Adam's step counters would land there (torch keeps their device) and
        # every later step would read them back to the host, and the RNG state would not
        # convert to numpy.
        state = load_checkpoint(path)
        if state.get("model") != self.opt.model:
            raise CheckpointError(f"'{path}' was trained with --model {state.get('model')}, not {self.opt.model}")
        taps = upsample_taps_of(state.get("opt", {}))
        if not self.opt.no_antialias_up and taps != self.opt.upsample_taps:
            raise CheckpointError(f"'{path}' was trained with the {taps}-tap upsampling filter; "
                                  f"resume it with --upsample_taps {taps}")
        for name, net in self.networks().items():
            if name not in state["nets"] and name.endswith("_ema") and name[:-4] in state["nets"]:
                # --ema_decay switched on when resuming: the average starts from the current weights.
                logger.info("'%s' has no net%s: starting the average from net%s", path, name, name[:-4])
                _unwrap(net).load_state_dict(state["nets"][name[:-4]])
                continue
            if name not in state["nets"]:
                raise CheckpointError(f"'{path}' has no network '{name}'")
            _unwrap(net).load_state_dict(state["nets"][name])
        if self.is_train:
            for name, optim in self.optimizers.items():
                optim.load_state_dict(state["optimizers"][name])
            for name, sched in self.schedulers.items():
                sched.load_state_dict(state["schedulers"][name])
            self.scaler.load_state_dict(state["scaler"])
            self.load_extra_state(state["extra"])
            restore_rng_state(state["rng"])
        logger.info("loaded %s", path)
        return dict(state["position"])


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


def _unwrap(net: nn.Module) -> nn.Module:
    """The plain module inside a DDP or torch.compile wrapper."""
    net = getattr(net, "module", net)
    return getattr(net, "_orig_mod", net)


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
