"""test.py's flags: the shared ones and how to restore, tile and score."""
from __future__ import annotations

import argparse
import logging
import re

from runtime.backends import BACKEND_CHOICES, DEFAULT_BACKEND, check_backend_amp
from util.flags import OneLineParser, str2bool
from runtime.inference import MIN_TILE

from .base_options import BaseOptions, OptionError, at_least, check_thread_count
from .train_options import training_flags

logger = logging.getLogger(__name__)
NUMBER = re.compile(r"-?\d+(\.\d*)?([eE][-+]?\d+)?")


class TestOptions(BaseOptions):
    def initialize(self, parser):
        parser = super().initialize(parser)
        g = parser.add_argument_group("restoring")
        g.add_argument("--pretrained", default=None, metavar="NAME",
                       help="restore with the shipped model pretrained/NAME.pt (or a path to such a file) "
                            "instead of --name/--epoch; results go to <results_dir>/NAME/test_pretrained/")
        g.add_argument("--nr_metrics", type=str2bool, nargs="?", const=True, default=True,
                       help="score every input and output with NIQE and PIQE (no ground truth needed)")
        g.add_argument("--results_dir", default="./results", help="outputs go to <results_dir>/<name>/test_<epoch>/")
        g.add_argument("--num_test", type=int, default=None, help="process at most this many images (default: all)")
        g.add_argument("--gt_dir", default=None, help="ground-truth folder (default: <dataroot>/testB if present)")
        g.add_argument("--metric_channel", default="y", choices=("y", "rgb"),
                       help="PSNR/SSIM on the Y channel (deraining) or RGB (dehazing)")
        g.add_argument("--crop_border", type=int, default=0, help="pixels ignored at each border for metrics")
        g.add_argument("--tile", type=int, default=0, help="process images in tiles of this size (0: whole image)")
        g.add_argument("--tile_overlap", type=int, default=32, help="overlap between tiles, blended with feathering")
        g.add_argument("--backend", default=DEFAULT_BACKEND, choices=BACKEND_CHOICES,
                       help="how the generator runs (runtime/backends.py): auto, the fastest here by the CPU's "
                            "features and a short probe (bf16 only with --amp auto or on); torch, the plain "
                            "network; channels_last; winograd (NNPACK); bf16 (channels_last under bf16 autocast); "
                            "compile; onnxruntime")
        g.add_argument("--threads", type=int, default=None, help="CPU threads (default: one per core)")
        return parser

    def gather_options(self, argv: list[str] | None) -> argparse.Namespace:
        """test.py's own flags. Training flags (--model, --ngf, ...) are accepted and ignored:
        the checkpoint records the network, so a training command line still works here. Any
        other flag (a typo such as --tiel) is an error: ignored, it would silently change the run."""
        parser = OneLineParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        self.parser = self.initialize(parser)
        opt, ignored = self.parser.parse_known_args(argv)
        ignored = self.ignored_arguments(opt, ignored)
        unknown = foreign_arguments(ignored)
        if unknown:
            self.parser.error(f"unrecognized argument {unknown[0]}: not a flag of test.py (nor a training flag, "
                              "which test.py ignores)")
        if ignored:
            logger.warning("test.py ignores %s: the checkpoint defines the network", " ".join(ignored))
        return opt

    def ignored_arguments(self, opt: argparse.Namespace, ignored: list[str]) -> list[str]:
        """The arguments test.py ignores, of those argparse did not take (a subclass may add some)."""
        return ignored

    def validate(self, opt: argparse.Namespace) -> None:
        """Counts, borders and tiles in range: a bad --tile_overlap would leave gaps in the images."""
        super().validate(opt)
        at_least(opt, 1, "num_test")
        at_least(opt, 0, "crop_border", "tile_overlap")
        at_least(opt, 1, "threads")
        check_thread_count("--threads", opt.threads)
        if opt.tile and opt.tile < MIN_TILE:
            raise OptionError(f"--tile {opt.tile}: give 0 (whole images) or a tile of at least {MIN_TILE} pixels")
        try:
            check_backend_amp(opt.backend, opt.amp)  # --amp is parsed by amp_mode: 'auto', 'on' or 'off'
        except ValueError as err:
            raise OptionError(str(err)) from None
        if opt.pretrained and opt.direction != "AtoB":
            raise OptionError(f"--pretrained {opt.pretrained} restores (AtoB) only; for --direction {opt.direction} "
                              "test a training run with --name")
        if opt.tile and opt.tile_overlap >= opt.tile:
            raise OptionError(f"--tile_overlap {opt.tile_overlap} must be smaller than --tile {opt.tile} "
                              f"(e.g. --tile_overlap {opt.tile // 8})")
        if opt.tile and opt.tile_overlap > opt.tile // 2:
            # Tiles advance by tile - overlap pixels: an overlap near the tile runs the network
            # on thousands of tiles where a few would do.
            raise OptionError(f"--tile_overlap {opt.tile_overlap} is more than half of --tile {opt.tile}: each tile "
                              f"would advance only {opt.tile - opt.tile_overlap} pixels; give at most "
                              f"{opt.tile // 2} (e.g. --tile_overlap {opt.tile // 8})")


def foreign_arguments(ignored: list[str]) -> list[str]:
    """The arguments argparse left over that are neither a training flag (or the unique prefix
    of one, which train.py accepts too) nor a training flag's value."""
    known, foreign, after_flag = training_flags(), [], False
    for arg in ignored:
        flag = arg.split("=", 1)[0]
        if flag.startswith("-") and not NUMBER.fullmatch(arg):
            matches = [flag] if flag in known else [k for k in known if k.startswith(flag)]
            after_flag = len(matches) == 1 and known[matches[0]] and "=" not in arg
            if len(matches) != 1:
                foreign.append(arg)
        elif not after_flag:
            foreign.append(arg)  # a word no flag takes
        else:
            after_flag = False  # flags here take one value at most
    return foreign
