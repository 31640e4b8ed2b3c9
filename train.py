"""Train a model: python train.py --dataroot DIR --name NAME --model dcdgan [...]

See README.md for the options that matter and scripts/ for the papers' settings.
Several GPUs (or CPU processes): torchrun --nproc_per_node N train.py [...] (scripts/train_ddp.sh).

Exit status: 0 finished; 2 bad options, unusable dataset, checkpoint or run folder, nothing
left to train, or no space left; 4 a loss became NaN/Inf (--nan_policy); 5 the training data
vanished mid-run (after saving 'latest'); 6 finished, but the GAN was still collapsed at the
end (training/collapse.py; the checkpoints are saved, the last log line says what collapsed);
129 / 130 / 143 stopped by SIGHUP / SIGINT / SIGTERM after saving 'latest' (resume with
--continue_train).
"""
from __future__ import annotations

import logging
import sys
from contextlib import nullcontext
from pathlib import Path

from data.image_folder import DatasetError
from options.train_options import TrainOptions
from training.collapse import EXIT_COLLAPSED
from training.guards import NonFiniteLossError, TrainingDataLost, TrainingInterrupted
from training.run_folder import RunFolderError, claim_run_folder
from training.trainer import NothingToTrainError, Trainer
from util.atomic_file import DiskFullError, no_space_left
from util.checkpoint import CheckpointError, check_container
from util.distributed import distributed_run, quiet_other_ranks, write_rank_digests
from util.log import setup_logging

logger = logging.getLogger("train")

EXIT_USAGE = 2


def main(argv: list[str] | None = None) -> int:
    options = TrainOptions()
    opt = options.parse(argv)
    setup_logging(opt.verbose)
    run_dir = Path(opt.checkpoints_dir) / opt.name
    resume_file = run_dir / f"{opt.epoch}.pt"
    # Under torchrun (RANK/WORLD_SIZE set) every process trains one shard; rank 0 alone
    # holds the run folder's lock, logs, writes the HTML page and saves checkpoints.
    try:
        if opt.continue_train and resume_file.is_file():
            # A file that is no checkpoint at all is refused before anything is built or logged.
            check_container(resume_file)
        with distributed_run(opt.gpu_ids) as (ctx, device):
            quiet_other_ranks(ctx)
            claim = claim_run_folder(run_dir, opt.continue_train, opt.overwrite_run) if ctx.is_main else nullcontext()
            with claim:
                trainer = Trainer(opt, ctx.rank, ctx.world_size, device)
                if ctx.is_main:  # only now: a checkpoint that failed to load leaves the old options
                    options.save_options(opt, "train_opt.txt")
                result = trainer.run()
                write_rank_digests(trainer.model.plain_state_dicts(), ctx.rank)
    except (DatasetError, CheckpointError, RunFolderError, NothingToTrainError) as err:
        logger.error("%s", err)
        return EXIT_USAGE
    except TrainingInterrupted as err:
        logger.warning("%s", err)
        return err.exit_status
    except (TrainingDataLost, NonFiniteLossError) as err:
        logger.error("%s", err)
        return err.exit_status
    except OSError as err:
        if not no_space_left(err):
            raise
        logger.error("%s", err if isinstance(err, DiskFullError) else DiskFullError(err.filename or run_dir))
        return EXIT_USAGE
    if result["collapse"]:
        logger.error("%s", result["collapse"])
        return EXIT_COLLAPSED
    return 0


if __name__ == "__main__":
    sys.exit(main())
