"""Learning-rate schedules (`--lr_policy`), stepped once per epoch."""
from __future__ import annotations

from torch.optim import Optimizer, lr_scheduler


def get_scheduler(optimizer: Optimizer, opt):
    """`linear`: constant for n_epochs, then linear decay to zero over n_epochs_decay."""
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
