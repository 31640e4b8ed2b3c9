"""Flags shared by training and testing, in the CycleGAN/CUT vocabulary."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from util.flags import str2bool

logger = logging.getLogger(__name__)


def default_gpu_ids() -> str:
    return "0" if torch.cuda.is_available() else "-1"


class BaseOptions:
    is_train = False

    def initialize(self, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        g = parser.add_argument_group("experiment")
        g.add_argument("--dataroot", required=True,
                       help="dataset root (trainA/trainB/testA[/testB]); for test.py also a plain folder of images")
        g.add_argument("--name", default="experiment_name", help="run name: checkpoints/<name>/, results/<name>/")
        g.add_argument("--gpu_ids", default=default_gpu_ids(),
                       help="e.g. 0 or 0,1; -1 for CPU. Default: the first GPU if there is one, else the CPU")
        g.add_argument("--checkpoints_dir", default="./checkpoints", help="models and logs are saved here")
        g.add_argument("--epoch", default="latest", help="which checkpoint to load: latest or an epoch number")
        g.add_argument("--direction", default="AtoB", help="AtoB restores (rainy -> clean); BtoA degrades")
        g.add_argument("--amp", type=str2bool, nargs="?", const=True, default=False,
                       help="mixed precision: bf16 autocast on CPU and CUDA (fp16 + grad scaler where bf16 is missing)")
        g.add_argument("--verbose", action="store_true", help="debug logging and network summaries")
        return parser

    def parse(self, argv: list[str] | None = None) -> argparse.Namespace:
        """The options of `argv`; subclasses build their parser in `gather_options`."""
        opt = self.gather_options(argv)
        opt.is_train = self.is_train
        opt.gpu_ids = [int(x) for x in str(opt.gpu_ids).split(",") if x.strip() and int(x) >= 0]
        if opt.gpu_ids and not torch.cuda.is_available():
            raise SystemExit(f"--gpu_ids {opt.gpu_ids} asks for CUDA, but no GPU is available; use --gpu_ids -1")
        if opt.direction not in ("AtoB", "BtoA"):
            raise SystemExit(f"--direction must be AtoB or BtoA, got '{opt.direction}'")
        self.opt = opt
        return opt

    def format_options(self, opt: argparse.Namespace) -> str:
        lines = ["----------------- Options ---------------"]
        for key, value in sorted(vars(opt).items()):
            default = self.parser.get_default(key)
            note = f"\t[default: {default}]" if value != default else ""
            lines.append(f"{key:>28}: {value!s:<30}{note}")
        lines.append("----------------- End -------------------")
        return "\n".join(lines)

    def save_options(self, opt: argparse.Namespace, filename: str) -> Path:
        """Write the options to checkpoints/<name>/<filename> (train_opt.txt / test_opt.txt)."""
        run_dir = Path(opt.checkpoints_dir) / opt.name
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / filename
        path.write_text(self.format_options(opt) + "\n")
        logger.debug("options written to %s", path)
        return path
