"""Learning-rate schedules (`--lr_policy`), stepped once per epoch, or once per iteration
under an iteration budget (`--n_iters`, `--n_iters_decay`)."""
from __future__ import annotations

from torch.optim import Optimizer, lr_scheduler


LR_POLICIES = ("linear", "step", "plateau", "cosine")  # --lr_policy


def get_scheduler(optimizer: Optimizer, policy: str, n_epochs: int, n_epochs_decay: int, epoch_count: int = 1,
                  lr_decay_iters: int = 50, n_iters: int = 0, n_iters_decay: int = 0):
    """`linear`: constant for `n_epochs`, then linear decay to zero over `n_epochs_decay`;
    `step`: x0.1 every `lr_decay_iters` epochs; `plateau`; `cosine` over all epochs.

    `epoch_count` is the number of the first epoch this schedule starts at. With an iteration
    budget (`n_iters` or `n_iters_decay` > 0) only `linear` exists: constant for `n_iters`
    iterations, then linear decay to zero over `n_iters_decay`, stepped every iteration.
    """
    if n_iters + n_iters_decay > 0:
        if policy != "linear":
            raise ValueError(f"--n_iters / --n_iters_decay support --lr_policy linear only, not '{policy}'")

        def per_iteration(step: int) -> float:
            return 1.0 - max(0, step + 1 - n_iters) / float(n_iters_decay + 1)
        return lr_scheduler.LambdaLR(optimizer, lr_lambda=per_iteration)
    if policy == "linear":
        def rule(epoch: int) -> float:
            return 1.0 - max(0, epoch + epoch_count - n_epochs) / float(n_epochs_decay + 1)
        return lr_scheduler.LambdaLR(optimizer, lr_lambda=rule)
    if policy == "step":
        return lr_scheduler.StepLR(optimizer, step_size=lr_decay_iters, gamma=0.1)
    if policy == "plateau":
        return lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.2, threshold=0.01, patience=5)
    if policy == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=n_epochs + n_epochs_decay, eta_min=0)
    raise ValueError(f"unknown --lr_policy '{policy}'; choose linear, step, plateau or cosine")
