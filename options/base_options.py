"""Flags shared by training and testing, in the CycleGAN/CUT vocabulary."""
from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import torch

logger = logging.getLogger(__name__)


def str2bool(value) -> bool:
    """Parse `--flag True/False/1/0/yes/no` so boolean defaults can be switched off by models."""
    if isinstance(value, bool):
        return value
    lowered = value.lower()
    if lowered in ("yes", "true", "t", "y", "1"):
        return True
    if lowered in ("no", "false", "f", "n", "0"):
        return False
    raise argparse.ArgumentTypeError(f"boolean value expected, got '{value}'")


def default_gpu_ids() -> str:
    return "0" if torch.cuda.is_available() else "-1"


class BaseOptions:
    is_train = False

    def initialize(self, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        g = parser.add_argument_group("experiment")
        g.add_argument("--dataroot", required=True,
                       help="dataset root (trainA/trainB/testA[/testB]); for test.py also a plain folder of images")
        g.add_argument("--name", default="experiment_name", help="run name: checkpoints/<name>/, results/<name>/")
        g.add_argument("--model", default="dcdgan", help="model to use: models/<model>_model.py")
        g.add_argument("--gpu_ids", default=default_gpu_ids(),
                       help="e.g. 0 or 0,1; -1 for CPU. Default: the first GPU if there is one, else the CPU")
        g.add_argument("--checkpoints_dir", default="./checkpoints", help="models and logs are saved here")
        g.add_argument("--seed", type=int, default=0, help="random seed for weights, data order and patch sampling")
        g.add_argument("--verbose", action="store_true", help="debug logging and network summaries")

        g = parser.add_argument_group("networks")
        g.add_argument("--input_nc", type=int, default=3)
        g.add_argument("--output_nc", type=int, default=3)
        g.add_argument("--ngf", type=int, default=64, help="generator width (filters in the first conv)")
        g.add_argument("--ndf", type=int, default=64, help="discriminator width")
        g.add_argument("--netG", default="resnet_9blocks", help="resnet_9blocks | resnet_6blocks | resnet_4blocks")
        g.add_argument("--netD", default="basic", help="basic (70x70 PatchGAN) | n_layers | pixel")
        g.add_argument("--n_layers_D", type=int, default=3, help="only used if netD == n_layers")
        g.add_argument("--normG", default="instance", help="instance | batch | none")
        g.add_argument("--normD", default="instance", help="instance | batch | none")
        g.add_argument("--init_type", default="xavier", help="normal | xavier | kaiming | orthogonal")
        g.add_argument("--init_gain", type=float, default=0.02)
        g.add_argument("--no_antialias", action="store_true", help="strided convs instead of blur-pool downsampling")
        g.add_argument("--no_antialias_up", action="store_true", help="transposed convs instead of blur upsampling")
        g.add_argument("--rain_layer", default="none", choices=("none", "leaky"),
                       help="leaky: generators output their input minus (G_A, restoring) or plus (G_B) a rain "
                            "layer that is non-negative up to a small leak (rain only brightens; domain A is the "
                            "rainy one). none: as --global_residual says")
        g.add_argument("--upsample_taps", type=int, default=4, choices=(4, 3),
                       help="binomial filter of the anti-aliased upsampling: 4 taps [1,3,3,1] as in the CUT "
                            "family; 3 taps [1,2,1] only to resume checkpoints made before this flag existed")
        g.add_argument("--global_residual", action="store_true",
                       help="generators add their output to their input (off in every paper here; "
                            "the short CPU demo uses it, see README 'Demo')")

        g = parser.add_argument_group("data")
        g.add_argument("--dataset_mode", default="unaligned", help="unaligned | single: data/<mode>_dataset.py")
        g.add_argument("--direction", default="AtoB", help="AtoB restores (rainy -> clean); BtoA degrades")
        g.add_argument("--num_threads", type=int, default=2, help="DataLoader workers")
        g.add_argument("--batch_size", type=int, default=1)
        g.add_argument("--load_size", type=int, default=286, help="resize images to this size")
        g.add_argument("--crop_size", type=int, default=256, help="then crop to this size")
        g.add_argument("--max_dataset_size", type=int, default=None,
                       help="use at most this many images per domain (default: all)")
        g.add_argument("--preprocess", default="resize_and_crop",
                       help="resize_and_crop | crop | scale_width | scale_width_and_crop | none")
        g.add_argument("--no_flip", action="store_true", help="no random horizontal flips")
        g.add_argument("--serial_batches", action="store_true", help="take B images in order instead of at random")
        g.add_argument("--display_winsize", type=int, default=256, help="display size in visdom and HTML")

        g.add_argument("--epoch", default="latest", help="which checkpoint to load: latest or an epoch number")
        g.add_argument("--amp", type=str2bool, nargs="?", const=True, default=False,
                       help="mixed precision: bf16 autocast on CPU and CUDA (fp16 + grad scaler where bf16 is missing)")
        g.add_argument("--channels_last", type=str2bool, nargs="?", const=True, default=False,
                       help="channels-last memory format for convolutions")
        g.add_argument("--compile", type=str2bool, nargs="?", const=True, default=False,
                       help="torch.compile the networks (needs a C++ compiler on the CPU, Triton on CUDA)")
        return parser

    def gather_options(self, argv: list[str] | None) -> argparse.Namespace:
        """Two-pass parse: the chosen model and dataset add their own flags and defaults."""
        import data
        import models

        parser = argparse.ArgumentParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        parser = self.initialize(parser)
        known, _ = parser.parse_known_args(argv)
        parser = models.get_option_setter(known.model)(parser, self.is_train)
        known, _ = parser.parse_known_args(argv)
        parser = data.get_option_setter(known.dataset_mode)(parser, self.is_train)
        self.parser = parser
        return parser.parse_args(argv)

    def parse(self, argv: list[str] | None = None) -> argparse.Namespace:
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
