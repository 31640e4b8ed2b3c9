"""test.py's flags: the shared ones and how to restore, tile and score."""
from __future__ import annotations

import argparse
import logging

from .base_options import BaseOptions

logger = logging.getLogger(__name__)


class TestOptions(BaseOptions):
    def initialize(self, parser):
        parser = super().initialize(parser)
        g = parser.add_argument_group("restoring")
        g.add_argument("--results_dir", default="./results", help="outputs go to <results_dir>/<name>/test_<epoch>/")
        g.add_argument("--num_test", type=int, default=None, help="process at most this many images (default: all)")
        g.add_argument("--gt_dir", default=None, help="ground-truth folder (default: <dataroot>/testB if present)")
        g.add_argument("--metric_channel", default="y", choices=("y", "rgb"),
                       help="PSNR/SSIM on the Y channel (deraining) or RGB (dehazing)")
        g.add_argument("--crop_border", type=int, default=0, help="pixels ignored at each border for metrics")
        g.add_argument("--tile", type=int, default=0, help="process images in tiles of this size (0: whole image)")
        g.add_argument("--tile_overlap", type=int, default=32, help="overlap between tiles, blended with feathering")
        return parser

    def gather_options(self, argv: list[str] | None) -> argparse.Namespace:
        """test.py's own flags. Training flags (--model, --ngf, ...) are accepted and ignored:
        the checkpoint records the network, so a training command line still works here."""
        parser = argparse.ArgumentParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        self.parser = self.initialize(parser)
        opt, ignored = self.parser.parse_known_args(argv)
        if ignored:
            logger.warning("test.py ignores %s: the checkpoint defines the network", " ".join(ignored))
        return opt
