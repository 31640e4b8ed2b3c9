"""Learning-rate schedules (`--lr_policy`), stepped once per epoch, or once per iteration
under an iteration budget (`--n_iters`, `--n_iters_decay`)."""
from __future__ import annotations

from torch.optim import Optimizer, lr_scheduler


def iteration_budget(opt) -> int | None:
    """n_iters + n_iters_decay when training is budgeted in iterations, else None (epochs)."""
    total = opt.n_iters + opt.n_iters_decay
    return total if total > 0 else None


def get_scheduler(optimizer: Optimizer, opt):
    """`linear`: constant for n_epochs, then linear decay to zero over n_epochs_decay; under an
    iteration budget the same over n_iters and n_iters_decay iterations."""
    if iteration_budget(opt) is not None:
        if opt.lr_policy != "linear":
            raise ValueError(f"--n_iters / --n_iters_decay support --lr_policy linear only, not '{opt.lr_policy}'")

        def per_iteration(step: int) -> float:
            return 1.0 - max(0, step + 1 - opt.n_iters) / float(opt.n_iters_decay + 1)
        return lr_scheduler.LambdaLR(optimizer, lr_lambda=per_iteration)
    if opt.lr_policy == "linear":
        def rule(epoch: int) -> float:
            return 1.0 - max(0, epoch + opt.epoch_count - opt.n_epochs) / float(opt.n_epochs_decay + 1)
        return lr_scheduler.LambdaLR(optimizer, lr_lambda=rule)
    if opt.lr_policy == "step":
        return lr_scheduler.StepLR(optimizer, step_size=opt.lr_decay_iters, gamma=0.1)
    if opt.lr_policy == "plateau":
        return lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.2, threshold=0.01, patience=5)
    if opt.lr_policy == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=opt.n_epochs + opt.n_epochs_decay, eta_min=0)
    raise ValueError(f"unknown --lr_policy '{opt.lr_policy}'; choose linear, step, plateau or cosine")
