"""The training loop behind train.py: epochs, logging, visuals, checkpoints, resuming."""
from __future__ import annotations

import logging
import math
import os
import random
import signal
import threading
import time

import numpy as np
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook
from torch.utils.data import DataLoader
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from data import create_dataset
from data.sampler import ResumableSampler
from models import create_model
from models.networks import iteration_budget
from util.distributed import max_over_ranks
from util.visualizer import Visualizer

logger = logging.getLogger(__name__)


class TrainingInterrupted(Exception):
    """SIGINT/SIGTERM stopped training after 'latest' was saved at the current position."""

    def __init__(self, signum: int, total_iters: int):
        self.exit_status = 128 + signum  # the shell convention: 130 for SIGINT, 143 for SIGTERM
        super().__init__(f"{signal.Signals(signum).name} received: saved 'latest' at iteration {total_iters}; "
                         "resume with --continue_train")


class NonFiniteLossError(Exception):
    """A loss became NaN or infinite; raised before the optimizer step it would have poisoned."""

    exit_status = 4


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_loader(dataset, opt, rank: int = 0, world_size: int = 1) -> tuple[DataLoader, ResumableSampler]:
    sampler = ResumableSampler(dataset, num_replicas=world_size, rank=rank,
                               shuffle=not opt.serial_batches, seed=opt.seed)
    workers = opt.num_threads
    loader = DataLoader(
        dataset, batch_size=opt.batch_size, sampler=sampler, num_workers=workers,
        pin_memory=bool(opt.gpu_ids), persistent_workers=workers > 0,
        # A private generator: creating an epoch's iterator must not consume the global RNG,
        # or a resumed run would draw different patches than an uninterrupted one.
        generator=torch.Generator().manual_seed(opt.seed),
        worker_init_fn=_ignore_sigint if workers > 0 else None)
    return loader, sampler


def _ignore_sigint(worker_id: int) -> None:
    # Ctrl-C reaches the whole process group; a worker killed by it would crash the main process
    # ("DataLoader worker exited unexpectedly") before it could save. SIGTERM stays fatal: that is
    # how the main process ends its workers when it exits.
    del worker_id
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class StopRequest:
    """While active, SIGINT and SIGTERM only record the signal; the training loop acts on it.

    A second signal ends the process at once (the checkpoints on disk stay loadable: every save
    is atomic). Handlers can only be installed from the main thread; elsewhere this does nothing.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._record) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc_info) -> None:
        for sig, handler in self._previous.items():
            if handler is not None:  # None: installed outside Python, cannot be put back
                signal.signal(sig, handler)
        self._previous = {}

    def _record(self, signum: int, frame) -> None:
        del frame
        if self.signum is not None:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        self.signum = signum


def non_finite_names(losses: dict[str, torch.Tensor]) -> list[str]:
    """Names of the losses that are NaN or infinite; one host-device sync for all of them."""
    finite = torch.isfinite(torch.stack([loss.detach().float().reshape(()) for loss in losses.values()]))
    if bool(finite.all()):
        return []
    return [name for name, ok in zip(losses, finite.tolist()) if not ok]


class NonFiniteGuard:
    """`--nan_policy`: checks a model's losses before each of its optimizer steps.

    A global optimizer pre-step hook sees every step, also of optimizers a model creates lazily,
    before the weights change. Only losses stored in `model.losses` since the last check are
    checked, so a backward pass shared by several optimizers costs one device sync (two per
    iteration for a GAN's D and G steps), not one per loss or per optimizer.
    - stop: raise `NonFiniteLossError` naming the losses and the iteration; nothing is saved.
    - skip: drop that step's gradients, so the optimizer leaves its parameters and moments
      untouched; stop anyway after `max_skips_in_a_row` iterations in a row were skipped.
    With fp16 autocast the gradient scaler already skips steps with non-finite gradients, so
    those never reach the hook.
    """

    max_skips_in_a_row = 20
    OTHER_RANK = "a loss on another rank"

    def __init__(self, model, policy: str, position: dict[str, int]):
        if policy not in ("stop", "skip"):
            raise ValueError(f"--nan_policy must be stop or skip, got '{policy}'")
        self.model, self.policy, self.position = model, policy, position
        self.skipped_iterations: list[int] = []
        self._checked: dict[str, torch.Tensor] = {}
        self._bad: list[str] = []
        self._handle = None

    def __enter__(self) -> NonFiniteGuard:
        self._handle = register_optimizer_step_pre_hook(self._before_step)
        return self

    def __exit__(self, *exc_info) -> None:
        self._handle.remove()

    def _before_step(self, optimizer: torch.optim.Optimizer, args, kwargs) -> None:
        del args, kwargs
        if not any(optimizer is own for own in self.model.optimizers.values()):
            return
        fresh = {name: loss for name, loss in self.model.losses.items() if self._checked.get(name) is not loss}
        if fresh:
            self._checked.update(fresh)
            self._bad = non_finite_names(fresh)
            # Under DDP the gradients are averaged, so one rank's NaN reaches every rank's
            # weights: all ranks skip (or stop) together.
            if max_over_ranks(int(bool(self._bad))) and not self._bad:
                self._bad = [self.OTHER_RANK]
        if self._bad:
            self._reject(optimizer)

    def _reject(self, optimizer: torch.optim.Optimizer) -> None:
        iteration = self.position["total_iters"] + 1  # the trainer counts an iteration once it is done
        detail = ", ".join(name if name == self.OTHER_RANK else f"{name} = {float(self._checked[name].detach())}"
                           for name in self._bad)
        if self.policy == "stop":
            raise NonFiniteLossError(
                f"non-finite loss at iteration {iteration}: {detail}. Stopped before that update and "
                "saved nothing, so the last checkpoint holds the last good state. Lower --lr or check the "
                "data, then resume with --continue_train (or train with --nan_policy skip)")
        for group in optimizer.param_groups:
            for param in group["params"]:
                param.grad = None  # optimizers leave parameters without a gradient untouched
        if self.skipped_iterations and self.skipped_iterations[-1] == iteration:
            return
        self.skipped_iterations.append(iteration)
        logger.warning("non-finite loss at iteration %d: %s; update skipped (--nan_policy skip)", iteration, detail)
        recent = self.skipped_iterations[-self.max_skips_in_a_row:]
        if len(recent) == self.max_skips_in_a_row and recent[-1] - recent[0] == self.max_skips_in_a_row - 1:
            raise NonFiniteLossError(
                f"losses were non-finite for {self.max_skips_in_a_row} iterations in a row (last: iteration "
                f"{iteration}: {detail}); training is not recovering. Lower --lr or check the data, then "
                "resume from the last checkpoint with --continue_train")


class Trainer:
    """Runs `opt.n_epochs + opt.n_epochs_decay` epochs from wherever the checkpoint left off."""

    def __init__(self, opt, rank: int = 0, world_size: int = 1):
        self.opt = opt
        self.rank, self.world_size = rank, world_size
        self.is_main = rank == 0
        seed_everything(opt.seed)
        if opt.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        elif opt.gpu_ids:
            torch.backends.cudnn.benchmark = True  # fixed crop sizes: let cuDNN pick the fastest kernels
        self.dataset = create_dataset(opt)
        self.loader, self.sampler = build_loader(self.dataset, opt, rank, world_size)
        self.model = create_model(opt)
        self.position = self.model.setup()
        self.model.wrap_networks(distributed=world_size > 1)
        self.iters_per_epoch = math.ceil(len(self.dataset) / (opt.batch_size * world_size))
        self.iteration_budget = iteration_budget(opt)
        self.visualizer = Visualizer(opt) if self.is_main else None
        if self.visualizer and opt.continue_train:
            self.visualizer.resume(self.position, self.iters_per_epoch)
        self.last_losses: dict[str, float] = {}
        self.stop_request = StopRequest()
        self.nan_guard = NonFiniteGuard(self.model, opt.nan_policy, self.position)
        logger.info("dataset: %d A / %d B images, %d iterations per epoch",
                    len(getattr(self.dataset, "A_paths", [])), len(getattr(self.dataset, "B_paths", [])),
                    self.iters_per_epoch)

    @property
    def last_epoch(self) -> int:
        if self.iteration_budget is not None:
            return math.ceil(self.iteration_budget / self.iters_per_epoch)
        return self.opt.n_epochs + self.opt.n_epochs_decay

    def save(self, label: str) -> None:
        if self.is_main:
            path = self.model.save(label, self.position)
            logger.debug("saved %s", path)

    def done(self) -> bool:
        o, p = self.opt, self.position
        if self.iteration_budget is not None and p["total_iters"] >= self.iteration_budget:
            return True
        return p["epoch"] > self.last_epoch or (o.max_iters is not None and p["total_iters"] >= o.max_iters)

    def run(self) -> dict:
        """Train to the end; returns the final position and the last logged losses.

        Raises `TrainingInterrupted` after saving 'latest' on SIGINT/SIGTERM, and
        `NonFiniteLossError` on a NaN/Inf loss (see `NonFiniteGuard`).
        """
        try:
            with logging_redirect_tqdm(), self.stop_request, self.nan_guard:
                while not self.done():
                    self.stop_if_requested()
                    self.run_epoch()
        finally:
            if self.visualizer:
                self.visualizer.close()
        return {"position": dict(self.position), "losses": self.last_losses}

    def stop_if_requested(self) -> None:
        """After a stop signal: save 'latest' at the current position and raise `TrainingInterrupted`.

        Under torchrun a signal may reach one rank only (a scheduler killing one process, a
        Ctrl-C in one terminal); every rank asks here, at the same point of every iteration,
        and all stop together, so rank 0 saves and none is left waiting for the others.
        """
        signum = max_over_ranks(self.stop_request.signum or 0)
        if signum:
            self.save("latest")
            raise TrainingInterrupted(signum, self.position["total_iters"])

    def run_epoch(self) -> None:
        o, p = self.opt, self.position
        epoch = p["epoch"]
        self.sampler.set_epoch(epoch, start=p["epoch_iter"] * o.batch_size)
        self.model.train()
        bar = tqdm(total=self.iters_per_epoch, initial=p["epoch_iter"], desc=f"epoch {epoch}/{self.last_epoch}",
                   unit="it", disable=not self.is_main, dynamic_ncols=True, leave=False)
        with bar:
            t_data_start = time.perf_counter()
            for batch in self.loader:
                t_data = time.perf_counter() - t_data_start
                t_start = time.perf_counter()
                self.model.set_input(batch)
                self.model.optimize_parameters()
                self.model.update_ema()
                if self.iteration_budget is not None:
                    self.model.update_learning_rate()
                p["epoch_iter"] += 1
                p["total_iters"] += 1
                bar.update(1)
                self.after_iteration(epoch, bar, t_data, time.perf_counter() - t_start)
                if self.done() and p["epoch_iter"] < self.iters_per_epoch:
                    self.save("latest")
                    return
                self.stop_if_requested()
                t_data_start = time.perf_counter()
        self.end_epoch(epoch)

    def end_epoch(self, epoch: int) -> None:
        """Decay the learning rate, show the epoch's last visuals, save 'latest' and '<epoch>'."""
        o, p = self.opt, self.position
        if self.iteration_budget is None:
            lr = self.model.update_learning_rate()
        else:
            lr = next(iter(self.model.optimizers.values())).param_groups[0]["lr"]
        if self.visualizer and self.model.visuals:
            self.visualizer.display_current_results(self.model.get_current_visuals(), epoch, save_result=True)
        p["epoch"], p["epoch_iter"] = epoch + 1, 0
        self.save("latest")
        if epoch % o.save_epoch_freq == 0:
            self.save(str(epoch))
        logger.info("end of epoch %d / %d, learning rate now %.7f", epoch, self.last_epoch, lr)

    def after_iteration(self, epoch: int, bar: tqdm, t_data: float, t_comp: float) -> None:
        o, p = self.opt, self.position
        total = p["total_iters"]
        if self.visualizer and total % o.display_freq == 0:
            save = total % o.update_html_freq == 0
            self.visualizer.display_current_results(self.model.get_current_visuals(), epoch, save_result=save)
        if total % o.print_freq == 0:
            losses = self.model.get_current_losses()
            self.last_losses = losses
            bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()}, refresh=False)
            if self.visualizer:
                self.visualizer.log_losses(epoch, p["epoch_iter"], losses, t_comp, t_data)
                self.visualizer.plot_current_losses(epoch, p["epoch_iter"] / self.iters_per_epoch, losses)
        if total % o.save_latest_freq == 0:
            self.save("latest")
