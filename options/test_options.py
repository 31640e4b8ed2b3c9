"""Test-time flags."""
from __future__ import annotations

from .base_options import BaseOptions


class TestOptions(BaseOptions):
    is_train = False

    def initialize(self, parser):
        parser = super().initialize(parser)
        parser.add_argument("--results_dir", default="./results", help="outputs go to <results_dir>/<name>/test_<epoch>/")
        parser.add_argument("--num_test", type=int, default=None, help="process at most this many images (default: all)")
        parser.add_argument("--gt_dir", default=None, help="ground-truth folder (default: <dataroot>/testB if present)")
        parser.add_argument("--metric_channel", default="y", choices=("y", "rgb"),
                            help="PSNR/SSIM on the Y channel (deraining) or RGB (dehazing)")
        parser.add_argument("--crop_border", type=int, default=0, help="pixels ignored at each border for metrics")
        parser.add_argument("--tile", type=int, default=0, help="process images in tiles of this size (0: whole image)")
        parser.add_argument("--tile_overlap", type=int, default=32, help="overlap between tiles, blended with feathering")
        parser.set_defaults(preprocess="none", num_threads=0)
        return parser
