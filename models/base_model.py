"""Model lifecycle shared by every model: device, precision, the update step, schedulers, checkpoints.

A model file states the rest itself (docs/METHODS.md has the formulas):
- its networks as attributes `net<Name>` and their names in `model_names` (saved in checkpoints);
- `self.optimizers`: name -> optimizer (all are saved and scheduled);
- `self.image_pools`: name -> ImagePool (saved with the rest of the state);
- `compute_<X>_loss()` methods returning a dict of named terms, each weighted where it is
  computed; `minimise` records them in `self.losses` and minimises their sum, the one place
  an objective is totalled: what is logged is what is optimised;
- `self.visuals`: name -> image tensor, set by its forward pass.
"""
from __future__ import annotations

import contextlib
import logging
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from util.checkpoint import (CheckpointError, describe_position, load_checkpoint, restore_rng_state, save_checkpoint,
                              training_state)
from util.distributed import device_of, prepare_for_training, unwrap
from util.ema import EMA, warmed_up_decay
from util.image_pool import ImagePool
from runtime.precision import amp_dtype
from util.schedulers import get_scheduler
from runtime.winograd import use_winograd, winograd_available

from .diffaug import DiffAugment
from .loading import architecture_differences, architecture_refusal, first_line

logger = logging.getLogger(__name__)


class BaseModel(ABC):
    model_names: list[str] = []

    def __init__(self, opt, device: torch.device | None = None):
        """`device`: where the networks live; by default the first of --gpu_ids (the CPU without)."""
        self.opt = opt
        self.is_train = opt.is_train
        self.device = device_of(opt.gpu_ids) if device is None else device
        self.save_dir = Path(opt.checkpoints_dir) / opt.name
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, Any] = {}
        self.losses: dict[str, torch.Tensor] = {}
        self.visuals: dict[str, torch.Tensor] = {}
        self.image_paths: list[str] = []
        self.image_pools: dict[str, ImagePool] = {}
        # Resolved once: the update step and set_input read these attributes, not the options.
        self.channels_last = opt.channels_last
        self.compile = opt.compile
        self.ema_decay = opt.ema_decay if self.is_train else 0.0
        # --ema_decay: averaged copies (net<name>_ema) of the restoring generators, used at test time.
        self.emas: dict[str, EMA] = {}
        self.ema_steps = 0
        # The training loop's own state (training/trainer.py: the collapse monitor's), kept in the
        # checkpoint with the model's so that a resumed run goes on where it stopped.
        self.trainer_state: dict[str, Any] = {}
        # Asked before every update with its losses and optimizer names; False skips the update.
        # The trainer sets it to its NaN/Inf check (training.guards.NonFiniteGuard.allows_step).
        self.step_guard: Callable[[dict[str, torch.Tensor], list[str]], bool] | None = None
        self.amp_dtype = self._pick_amp_dtype()
        # --diffaug: what every discriminator sees, real or fake, goes through it (models/diffaug.py).
        self.diffaug = DiffAugment(opt.diffaug) if self.is_train and opt.diffaug else None
        # A gradient scaler only matters for fp16; bf16 has fp32's range.
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)

    @staticmethod
    def modify_commandline_options(parser, is_train: bool):
        return parser

    # ----- precision and the update step ----------------------------------------------
    def _pick_amp_dtype(self) -> torch.dtype | None:
        """--amp on | off | auto (runtime/precision.py): auto probes bf16 at the generator's width."""
        dtype, reason = amp_dtype(self.opt.amp, self.device, getattr(self.opt, "ngf", 64), self.is_train)
        logger.info("precision: %s (%s)", str(dtype).replace("torch.", "") if dtype else "float32", reason)
        return dtype

    def autocast(self):
        """Mixed-precision context for forward passes (a no-op in fp32)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def backward_and_step(self, loss: torch.Tensor, optimizer_names: list[str]) -> None:
        """Backward `loss` and step the named optimizers (through the scaler under fp16)."""
        try:
            self.scaler.scale(loss).backward()
        except Exception as err:
            # torch.compile builds the backward graph lazily, so its failures surface here.
            if self.compile:
                err.add_note("--compile is on: torch.compile may not support these networks in this PyTorch "
                             "(torch 2.14.1's inductor fails on the replication-pad backward); run without --compile")
            raise
        for name in optimizer_names:
            self.scaler.step(self.optimizers[name])
        self.scaler.update()

    def minimise(self, compute_terms: Callable[[], dict[str, torch.Tensor]], optimizer_names: list[str],
                 log_total: str | None = None) -> dict[str, torch.Tensor]:
        """One update of the named optimizers on the sum of the step's terms.

        Clears their gradients, computes the step's named, weighted terms under autocast,
        records them in `self.losses` (the log; with `log_total`, their sum too, under that
        name), asks `self.step_guard` (when set) whether the update may go ahead, then backwards
        the sum and steps. Every objective is totalled here and only here, so a logged term is
        always an optimised one. Returns the terms.
        """
        for name in optimizer_names:
            self.optimizers[name].zero_grad(set_to_none=True)
        with self.autocast():
            terms = compute_terms()
        if log_total in terms:
            raise ValueError(f"the step returned a term named '{log_total}', the name its total is logged under")
        loss = sum(terms.values())
        logged = dict(terms) if log_total is None else {**terms, log_total: loss}
        self.losses.update(logged)
        if self.step_guard is not None and not self.step_guard(logged, optimizer_names):
            return terms  # skipped: no backward, so these optimizers, parameters and moments stay as they were
        self.backward_and_step(loss, optimizer_names)
        return terms

    def generator_gan_term(self, net_D: nn.Module, fake: torch.Tensor, weight: float) -> torch.Tensor:
        """`weight` times a generator's GAN loss: `net_D` should take its output `fake` for real
        (`self.gan_loss`, the model's --gan_mode); with --diffaug, D sees `fake` augmented."""
        if self.diffaug is not None:
            fake = self.diffaug(fake)
        return weight * self.gan_loss(net_D(fake), True, for_discriminator=False)

    def adam(self, *nets: nn.Module, lr: float | None = None,
             betas: tuple[float, float] | None = None) -> torch.optim.Adam:
        """Adam over the nets' parameters, at --lr and (--beta1, --beta2) unless given."""
        params = [p for net in nets for p in net.parameters()]
        return torch.optim.Adam(params, lr=self.opt.lr if lr is None else lr,
                                betas=(self.opt.beta1, self.opt.beta2) if betas is None else betas)

    @staticmethod
    def set_requires_grad(nets: list[nn.Module], requires_grad: bool) -> None:
        for net in nets:
            for p in net.parameters():
                p.requires_grad_(requires_grad)

    def to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    # ----- networks ------------------------------------------------------------------
    def net(self, name: str) -> nn.Module:
        return getattr(self, "net" + name)

    def networks(self) -> dict[str, nn.Module]:
        return {name: self.net(name) for name in self.model_names}

    def place_networks(self) -> None:
        for net in self.networks().values():
            net.to(self.device)
            if self.channels_last:
                net.to(memory_format=torch.channels_last)
        if self.opt.winograd and self.device.type == "cpu":
            if not winograd_available():
                logger.warning("--winograd: this PyTorch has no NNPACK; the convolutions stay direct")
            else:
                count = sum(use_winograd(net) for net in self.networks().values())
                logger.info("--winograd: %d convolutions run as Winograd convolutions (NNPACK)", count)

    def wrap_networks(self, distributed: bool = False) -> None:
        """Compile (--compile) and, under torchrun, wrap in DDP every network that trains.

        Call once, after setup(): the wrappers share the plain modules' parameters, so the
        optimizers keep working and checkpoints still hold plain state dicts.
        """
        for name in self.model_names:
            net = self.net(name)
            if any(p.requires_grad for p in net.parameters()):
                setattr(self, "net" + name, prepare_for_training(net, self.device, name, distributed,
                                                                 self.compile))

    def add_generator_ema(self) -> None:
        """With --ema_decay > 0, keep an exponential moving average of each restoring generator
        (BasicSR's `ema_decay`), saved in checkpoints as net<name>_ema and used by test.py.
        Call after the generators exist and before `place_networks`."""
        if self.ema_decay <= 0:
            return
        for name in dict.fromkeys(self.restoring_nets().values()):
            self.emas[name] = EMA(self.net(name))
            setattr(self, f"net{name}_ema", self.emas[name].module)
            self.model_names.append(f"{name}_ema")

    def update_ema(self) -> None:
        """One EMA step after an iteration's updates (the decay warmed up over the first steps)."""
        if not self.emas:
            return
        self.ema_steps += 1
        for ema in self.emas.values():
            ema.update(warmed_up_decay(self.ema_decay, self.ema_steps))

    def parameter_count(self) -> dict[str, int]:
        return {name: sum(p.numel() for p in net.parameters()) for name, net in self.networks().items()}

    # ----- lifecycle -----------------------------------------------------------------
    def setup(self) -> dict[str, int]:
        """Create schedulers; load a checkpoint when resuming.

        Returns the position to start training from: {'epoch', 'epoch_iter', 'total_iters'}.
        """
        o = self.opt
        position = {"epoch": o.epoch_count if self.is_train else 1, "epoch_iter": 0, "total_iters": 0}
        if self.is_train:
            self.schedulers = {name: get_scheduler(optim, o.lr_policy, o.n_epochs, o.n_epochs_decay, o.epoch_count,
                                                   o.lr_decay_iters, o.n_iters, o.n_iters_decay)
                               for name, optim in self.optimizers.items()}
            if o.continue_train:
                position = self.load(o.epoch)
        for name, count in self.parameter_count().items():
            logger.info("net%s: %.3f M parameters", name, count / 1e6)
        return position

    def set_input(self, batch: dict) -> None:
        """Take an unaligned batch: `real_A`, `real_B` and the A paths."""
        self.real_A = self.to_device(batch["A"])
        self.real_B = self.to_device(batch["B"])
        self.image_paths = batch["A_paths"]

    @abstractmethod
    def optimize_parameters(self) -> None:
        """One training iteration on the batch of `set_input`."""

    def train(self) -> None:
        for net in self.networks().values():
            net.train()

    def eval(self) -> None:
        for net in self.networks().values():
            net.eval()

    def get_current_losses(self) -> dict[str, float]:
        """Float values of the terms the last steps returned (this synchronises with the device)."""
        return {name: float(value.detach()) for name, value in self.losses.items()}

    def get_current_visuals(self) -> dict[str, torch.Tensor]:
        return {name: image.detach() for name, image in self.visuals.items()}

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

    @staticmethod
    def restoring_nets() -> dict[str, str]:
        """The generator that translates in each --direction."""
        return {"AtoB": "G_A", "BtoA": "G_B"}

    def test_net_names(self) -> dict[str, str]:
        """Which network test.py loads for each --direction: the EMA copy when there is one."""
        return {d: f"{n}_ema" if n in self.emas else n for d, n in self.restoring_nets().items()}

    # ----- checkpoints ---------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        """State beyond networks and optimizers: the image pools and the training loop's own
        (`trainer_state`); models add EMA copies, queues."""
        return {"image_pools": {name: pool.state_dict() for name, pool in self.image_pools.items()},
                "ema_steps": self.ema_steps, "trainer": dict(self.trainer_state)}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        for name, pool in self.image_pools.items():
            pool.load_state_dict(state["image_pools"][name], self.device)
        self.ema_steps = state.get("ema_steps", 0)
        self.trainer_state = dict(state.get("trainer", {}))

    def plain_state_dicts(self) -> dict[str, dict[str, torch.Tensor]]:
        """Each network's weights without DDP / torch.compile prefixes."""
        return {name: unwrap(net).state_dict() for name, net in self.networks().items()}

    def state_dict(self, position: dict[str, int]) -> dict[str, Any]:
        return training_state(self.opt.model, self.test_net_names(), self.plain_state_dicts(), self.optimizers,
                              self.schedulers, self.scaler, self.extra_state(), position, self.opt)

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
        state = load_checkpoint(path, training=self.is_train)
        saved_options = dict(state.get("opt", {}), model=state.get("model"))
        differences = architecture_differences(saved_options, vars(self.opt))
        if differences:
            raise CheckpointError(architecture_refusal(path, differences))
        for name, net in self.networks().items():
            weights = state["nets"].get(name)
            if weights is None and name.endswith("_ema") and name[:-4] in state["nets"]:
                # --ema_decay switched on when resuming: the average starts from the current weights.
                logger.info("'%s' has no net%s: starting the average from net%s", path, name, name[:-4])
                weights = state["nets"][name[:-4]]
            if weights is None:
                raise CheckpointError(f"'{path}' has no network '{name}'")
            try:
                unwrap(net).load_state_dict(weights)
            except RuntimeError as err:
                raise CheckpointError(f"the weights of net{name} in '{path}' do not fit the network these "
                                      f"options build ({first_line(err)}); resume with the options in the "
                                      "run's train_opt.txt") from err
        if self.is_train:
            for name, optim in self.optimizers.items():
                optim.load_state_dict(state["optimizers"][name])
            for name, sched in self.schedulers.items():
                sched.load_state_dict(state["schedulers"][name])
            self.scaler.load_state_dict(state["scaler"])
            self.load_extra_state(state["extra"])
            restore_rng_state(state["rng"])
        logger.info("loaded %s (%s)", path, describe_position(state["position"]))
        return dict(state["position"])
