"""Train a model: python train.py --dataroot DIR --name NAME --model dcdgan [...]

See README.md for the options that matter and scripts/ for the papers' settings.
"""
from __future__ import annotations

import sys

from options.train_options import TrainOptions
from util.log import setup_logging
from util.trainer import Trainer


def main(argv: list[str] | None = None) -> int:
    options = TrainOptions()
    opt = options.parse(argv)
    setup_logging(opt.verbose)
    options.save_options(opt, "train_opt.txt")
    Trainer(opt).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
