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
    """`--nan_policy`: the training loop's check of each update's losses, before the weights change.

    The trainer hands `allows_step` to its model (`model.step_guard`), and `BaseModel.minimise`
    asks it with the update's logged losses (its terms and their total) before backwarding and
    stepping them: one device sync per update (two per iteration for a GAN's D and G updates).
    - stop: raise `NonFiniteLossError` naming the losses and the iteration; nothing is saved.
    - skip: answer False, and `minimise` leaves that update's optimizers, their parameters and
      moments untouched; stop anyway after `max_skips_in_a_row` iterations in a row were skipped.
    Under DDP the gradients are averaged, so one rank's NaN would reach every rank's weights: the
    verdict goes through `max_over_ranks`, asked by every rank at the same update, and all ranks
    skip (or stop) together.
    """

    max_skips_in_a_row = 20
    OTHER_RANK = "a loss on another rank"

    def __init__(self, policy: str, position: dict[str, int]):
        """`position`: the trainer's position, read for the iteration a message names."""
        if policy not in ("stop", "skip"):
            raise ValueError(f"--nan_policy must be stop or skip, got '{policy}'")
        self.policy, self.position = policy, position
        self.skipped_iterations: list[int] = []

    def allows_step(self, losses: dict[str, torch.Tensor], optimizer_names: list[str]) -> bool:
        """Whether the update of `optimizer_names` on `losses` may go ahead: True when every
        loss on every rank is finite; False (skip) or `NonFiniteLossError` (stop) otherwise."""
        bad = non_finite_names(losses)
        if max_over_ranks(int(bool(bad))) and not bad:
            bad = [self.OTHER_RANK]
        if not bad:
            return True
        iteration = self.position["total_iters"] + 1  # the trainer counts an iteration once it is done
        detail = ", ".join(name if name == self.OTHER_RANK else f"{name} = {float(losses[name].detach())}"
                           for name in bad)
        if self.policy == "stop":
            raise NonFiniteLossError(
                f"non-finite loss at iteration {iteration}: {detail}. Stopped before that update and "
                "saved nothing, so the last checkpoint holds the last good state. Lower --lr or check the "
                "data, then resume with --continue_train (or train with --nan_policy skip)")
        if self.skipped_iterations and self.skipped_iterations[-1] == iteration:
            return False
        self.skipped_iterations.append(iteration)
        logger.warning("non-finite loss at iteration %d: %s; update skipped (%s; --nan_policy skip)", iteration,
                       detail, ", ".join(optimizer_names))
        recent = self.skipped_iterations[-self.max_skips_in_a_row:]
        if len(recent) == self.max_skips_in_a_row and recent[-1] - recent[0] == self.max_skips_in_a_row - 1:
            raise NonFiniteLossError(
                f"losses were non-finite for {self.max_skips_in_a_row} iterations in a row (last: iteration "
                f"{iteration}: {detail}); training is not recovering. Lower --lr or check the data, then "
                "resume from the last checkpoint with --continue_train")
        return False
