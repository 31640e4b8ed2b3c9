"""Train a model: python train.py --dataroot DIR --name NAME --model dcdgan [...]

See README.md for the options that matter and scripts/ for the papers' settings.

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
from util.log import setup_logging
from util.trainer import NonFiniteLossError, Trainer, TrainingInterrupted

logger = logging.getLogger("train")

EXIT_USAGE = 2


def main(argv: list[str] | None = None) -> int:
    options = TrainOptions()
    opt = options.parse(argv)
    setup_logging(opt.verbose)
    options.save_options(opt, "train_opt.txt")
    try:
        Trainer(opt).run()
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
