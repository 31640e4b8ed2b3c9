"""The training loop behind train.py: epochs, logging, visuals, checkpoints, resuming."""
from __future__ import annotations

import logging
import random
import signal
import time

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from data import create_dataset
from data.base_dataset import iteration_budget, iterations_per_epoch, last_epoch_of_budget, planned_iterations
from data.image_folder import DatasetError
from data.sampler import ResumableSampler
from models import create_model
from util.checkpoint import describe_position
from util.progress import PlainProgress, progress
from util.distributed import device_of, max_over_ranks
from util.visualizer import Visualizer

from .collapse import CollapseMonitor, restoration_spread
from .guards import NonFiniteGuard, StopRequest, TrainingDataLost, TrainingInterrupted

logger = logging.getLogger(__name__)

# The stop vote's value when a rank lost its training data (above every signal number).
DATA_LOST = 1000


class NothingToTrainError(RuntimeError):
    """The run is already at or past its budget: training would do nothing."""


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
        worker_init_fn=_ignore_terminal_signals if workers > 0 else None)
    return loader, sampler


def _ignore_terminal_signals(worker_id: int) -> None:
    # Ctrl-C and a closed terminal (SIGHUP) reach the whole process group; a worker killed by
    # them would crash the main process ("DataLoader worker exited unexpectedly") before it could
    # save. SIGTERM stays fatal: that is how the main process ends its workers when it exits.
    del worker_id
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


def make_visualizer(opt) -> Visualizer:
    """The loss log, dashboard and HTML page of a run, as its options ask."""
    return Visualizer(opt.name, opt.checkpoints_dir, display_id=opt.display_id, display_server=opt.display_server,
                      display_port=opt.display_port, display_env=opt.display_env, display_ncols=opt.display_ncols,
                      display_winsize=opt.display_winsize, no_html=opt.no_html,
                      update_html_freq=opt.update_html_freq, continue_train=opt.continue_train, options=vars(opt),
                      display_backend=opt.display_backend, wandb_project=opt.wandb_project)


class Trainer:
    """Runs `opt.n_epochs + opt.n_epochs_decay` epochs (or `n_iters + n_iters_decay`
    iterations) from wherever the checkpoint left off."""

    def __init__(self, opt, rank: int = 0, world_size: int = 1, device: torch.device | None = None):
        """`device`: this process's device (from `util.distributed.init_distributed` under
        torchrun); by default the first of --gpu_ids (the CPU without)."""
        self.opt = opt
        self.rank, self.world_size = rank, world_size
        self.is_main = rank == 0
        device = device_of(opt.gpu_ids) if device is None else device
        seed_everything(opt.seed)
        if opt.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        elif device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed crop sizes: let cuDNN pick the fastest kernels
        self.dataset = create_dataset(opt)
        self.loader, self.sampler = build_loader(self.dataset, opt, rank, world_size)
        self.model = create_model(opt, device)
        self.position = self.model.setup()
        self.model.wrap_networks(distributed=world_size > 1)
        self.iters_per_epoch = iterations_per_epoch(len(self.dataset), opt.batch_size, world_size)
        self.iteration_budget = iteration_budget(opt)
        self.visualizer = make_visualizer(opt) if self.is_main else None
        if self.visualizer and opt.continue_train:
            self.visualizer.resume(self.position, self.iters_per_epoch)
        self.last_losses: dict[str, float] = {}
        planned = planned_iterations(opt, self.iters_per_epoch)
        self.collapse = CollapseMonitor(opt.print_freq, min(planned, opt.max_iters or planned),
                                        adversarial="D" in self.model.optimizers)
        self.collapse.load_state_dict(self.model.trainer_state.get("collapse"))  # a resumed run's streaks
        self.data_lost: str | None = None
        self.stop_request = StopRequest()
        # --nan_policy: the model asks this check before every update (BaseModel.minimise).
        self.nan_guard = NonFiniteGuard(opt.nan_policy, self.position)
        self.model.step_guard = self.nan_guard.allows_step
        logger.info("dataset: %d A / %d B images, %d iterations per epoch",
                    len(getattr(self.dataset, "A_paths", [])), len(getattr(self.dataset, "B_paths", [])),
                    self.iters_per_epoch)

    @property
    def last_epoch(self) -> int:
        return last_epoch_of_budget(self.opt, self.iters_per_epoch)

    def save(self, label: str) -> None:
        if self.is_main:
            self.model.trainer_state["collapse"] = self.collapse.state_dict()
            path = self.model.save(label, self.position)
            logger.debug("saved %s", path)

    def done(self) -> bool:
        o, p = self.opt, self.position
        if self.iteration_budget is not None and p["total_iters"] >= self.iteration_budget:
            return True
        return p["epoch"] > self.last_epoch or (o.max_iters is not None and p["total_iters"] >= o.max_iters)

    def run(self) -> dict:
        """Train to the end; returns the final position, the last logged losses and, under
        "collapse", the collapse monitor's verdict (None unless a collapse lasted to the end).

        Raises `NothingToTrainError` when the run is already done, `TrainingInterrupted` after
        saving 'latest' on SIGINT/SIGTERM/SIGHUP, `TrainingDataLost` after saving 'latest' when a
        training folder vanished, and `NonFiniteLossError` on a NaN/Inf loss (`NonFiniteGuard`).
        """
        if self.done():
            raise NothingToTrainError(
                f"nothing to train: run '{self.opt.name}' is at {describe_position(self.position)}, which is "
                f"the end of its budget ({self.budget_text()}); raise the budget (and resume with "
                "--continue_train) or start a new run")
        try:
            with logging_redirect_tqdm(), self.stop_request:
                while not self.done():
                    self.stop_if_requested()
                    self.run_epoch()
        finally:
            if self.visualizer:
                self.visualizer.close()
        return {"position": dict(self.position), "losses": self.last_losses, "collapse": self.collapse.verdict()}

    def budget_text(self) -> str:
        o = self.opt
        if o.max_iters is not None:
            return f"--max_iters {o.max_iters}"
        if self.iteration_budget is not None:
            return f"--n_iters {o.n_iters} + --n_iters_decay {o.n_iters_decay}"
        return f"--n_epochs {o.n_epochs} + --n_epochs_decay {o.n_epochs_decay}"

    def stop_if_requested(self) -> None:
        """After a stop signal or lost training data: save 'latest' at the current position and
        raise `TrainingInterrupted` or `TrainingDataLost`.

        Under torchrun a signal may reach one rank only (a scheduler killing one process, a
        Ctrl-C in one terminal), and so may a data folder's loss; every rank asks here, at the
        same point of every iteration, and all stop together, so rank 0 saves and none is left
        waiting for the others.
        """
        verdict = max_over_ranks(DATA_LOST if self.data_lost else self.stop_request.signum or 0)
        if not verdict:
            return
        self.save("latest")
        if verdict == DATA_LOST:
            raise TrainingDataLost(self.data_lost or "another rank lost its training data",
                                   self.position["total_iters"])
        raise TrainingInterrupted(verdict, self.position["total_iters"])

    def next_batch(self, batches) -> dict | None:
        """The next batch, None at the end of the epoch; a lost training folder is recorded for
        `stop_if_requested` (the batch is then an empty dict)."""
        try:
            return next(batches)
        except StopIteration:
            return None
        except DatasetError as err:
            # From a DataLoader worker the error arrives wrapped, its message last in the traceback.
            self.data_lost = str(err).strip().splitlines()[-1].partition("DatasetError: ")[2] or str(err)
            return {}

    def run_epoch(self) -> None:
        o, p = self.opt, self.position
        epoch = p["epoch"]
        self.sampler.set_epoch(epoch, start=p["epoch_iter"] * o.batch_size)
        self.model.train()
        # A bar on a terminal; a plain line every 30 s and at the epoch's end in a log file.
        bar = progress(total=self.iters_per_epoch, initial=p["epoch_iter"], desc=f"epoch {epoch}/{self.last_epoch}",
                       unit="it", disable=not self.is_main, first_step=p["total_iters"], dynamic_ncols=True,
                       leave=False)
        with bar:
            t_data_start = time.perf_counter()
            batches = iter(self.loader)
            while (batch := self.next_batch(batches)) is not None:
                t_data = time.perf_counter() - t_data_start
                # Stop (signal, lost data) before the step, at the same point on every rank.
                self.stop_if_requested()
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
                t_data_start = time.perf_counter()
        self.end_epoch(epoch)

    def end_epoch(self, epoch: int) -> None:
        """Decay the learning rate, show the epoch's last visuals, save 'latest' and '<epoch>'."""
        o, p = self.opt, self.position
        if self.iteration_budget is None:
            lr = self.model.update_learning_rate()
        else:  # stepped every iteration
            lr = next(iter(self.model.optimizers.values())).param_groups[0]["lr"]
        if self.visualizer and self.model.visuals:
            self.visualizer.display_current_results(self.model.get_current_visuals(), epoch, save_result=True,
                                                    step=p["total_iters"])
        p["epoch"], p["epoch_iter"] = epoch + 1, 0
        self.save("latest")
        if epoch % o.save_epoch_freq == 0:
            self.save(str(epoch))
        logger.info("end of epoch %d / %d, learning rate now %.7f", epoch, self.last_epoch, lr)

    def watch_for_collapse(self, total: int, losses: dict[str, float]) -> None:
        """Feed the collapse monitor (training/collapse.py); its first warning goes to the log
        and the dashboards."""
        warning = self.collapse.observe(total, losses, restoration_spread(self.model.visuals))
        if warning:
            logger.warning("iteration %d: %s", total, warning)
            self.visualizer.show_warning(warning, step=total)

    def after_iteration(self, epoch: int, bar: tqdm | PlainProgress, t_data: float, t_comp: float) -> None:
        o, p = self.opt, self.position
        total = p["total_iters"]
        if self.visualizer and total % o.display_freq == 0:
            save = total % o.update_html_freq == 0
            self.visualizer.display_current_results(self.model.get_current_visuals(), epoch, save_result=save,
                                                    step=total)
        if total % o.print_freq == 0:
            losses = self.model.get_current_losses()
            self.last_losses = losses
            bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()}, refresh=False)
            if self.visualizer:
                self.visualizer.log_losses(epoch, p["epoch_iter"], losses, t_comp, t_data)
                self.visualizer.plot_current_losses(epoch, p["epoch_iter"] / self.iters_per_epoch, losses, step=total)
                self.watch_for_collapse(total, losses)
        if total % o.save_latest_freq == 0:
            self.save("latest")
