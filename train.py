"""Train a model: python train.py --dataroot DIR --name NAME --model dcdgan [...]

See README.md for the options that matter and scripts/ for the papers' settings.
Several GPUs (or CPU processes): torchrun --nproc_per_node N train.py [...] (scripts/train_ddp.sh).

Exit status: 0 finished; 2 unusable dataset or checkpoint; 4 a loss became NaN/Inf
(--nan_policy); 130 / 143 stopped by SIGINT / SIGTERM after saving 'latest' (resume with
--continue_train).
"""
from __future__ import annotations

import logging
import sys

from data.image_folder import DatasetError
from options.train_options import TrainOptions
from util.checkpoint import CheckpointError
from training.guards import NonFiniteLossError, TrainingInterrupted
from training.trainer import Trainer
from util.distributed import distributed_run, quiet_other_ranks, write_rank_digests
from util.log import setup_logging

logger = logging.getLogger("train")

EXIT_USAGE = 2


def main(argv: list[str] | None = None) -> int:
    options = TrainOptions()
    opt = options.parse(argv)
    setup_logging(opt.verbose)
    # Under torchrun (RANK/WORLD_SIZE set) every process trains one shard; rank 0 alone
    # logs, writes the HTML page and saves checkpoints.
    try:
        with distributed_run(opt.gpu_ids) as (ctx, device):
            quiet_other_ranks(ctx)
            if ctx.is_main:
                options.save_options(opt, "train_opt.txt")
            trainer = Trainer(opt, ctx.rank, ctx.world_size, device)
            trainer.run()
            write_rank_digests(trainer.model.plain_state_dicts(), ctx.rank)
    except (DatasetError, CheckpointError) as err:
        logger.error("%s", err)
        return EXIT_USAGE
    except TrainingInterrupted as err:
        logger.warning("%s", err)
        return err.exit_status
    except NonFiniteLossError as err:
        logger.error("%s", err)
        return err.exit_status
    return 0


if __name__ == "__main__":
    sys.exit(main())
