"""What ends or skips a training step: stop signals, lost training data and non-finite losses.

Every decision goes through `util.distributed.max_over_ranks`, called by every rank at the
same point, so under torchrun all ranks stop or skip together and none is left waiting in
an all-reduce.
"""
from __future__ import annotations

import logging
import os
import signal
import threading

import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from util.distributed import max_over_ranks

logger = logging.getLogger(__name__)


class TrainingInterrupted(Exception):
    """SIGINT/SIGTERM/SIGHUP stopped training after 'latest' was saved at the current position."""

    def __init__(self, signum: int, total_iters: int):
        self.exit_status = 128 + signum  # the shell convention: 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP
        super().__init__(f"{signal.Signals(signum).name} received: saved 'latest' at iteration {total_iters}; "
                         "resume with --continue_train")


class TrainingDataLost(Exception):
    """A training folder vanished or became unreadable; 'latest' was saved at the current position."""

    exit_status = 5

    def __init__(self, reason: str, total_iters: int):
        super().__init__(f"{reason}; saved 'latest' at iteration {total_iters}: make the data readable again, "
                         "then resume with --continue_train")


class NonFiniteLossError(Exception):
    """A loss became NaN or infinite; raised before the optimizer step it would have poisoned."""

    exit_status = 4


class StopRequest:
    """While active, SIGINT, SIGTERM and SIGHUP (a closed terminal or SSH session) only record
    the signal; the training loop acts on it.

    A second signal ends the process at once (the checkpoints on disk stay loadable: every save
    is atomic). Handlers can only be installed from the main thread; elsewhere this does nothing.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

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
