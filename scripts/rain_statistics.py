"""Print the rain statistics of a folder of rainy images (util/rain_stats.py).

    python -m scripts.rain_statistics --rainy datasets/rain_heavy_paired/trainA \\
        [--clean datasets/rain_heavy_paired/trainB] [--max_images 300]

With --clean (the same stems: a --paired synthetic set, or G_B's inputs) the layer is exact,
rainy - clean; the high-pass estimate, the one the pseudo-pair check compares, is always
printed too. One line per layer kind: coverage, brightness, run_length, orientation, coherence.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np

from util.flags import OneLineParser
from util.image_io import ImageReadError, is_image_file, load_rgb
from util.log import setup_logging
from util.rain_stats import LayerStatistics, rain_layer_y

logger = logging.getLogger("rain_statistics")


def folder_statistics(rainy_dir: Path, clean_dir: Path | None = None,
                      max_images: int | None = None) -> dict[str, dict]:
    """{'estimated': stats, 'exact': stats (with clean_dir)} over the folder's images."""
    paths = sorted(p for p in rainy_dir.iterdir() if p.is_file() and is_image_file(str(p)))[:max_images]
    if not paths:
        raise ValueError(f"no images in '{rainy_dir}'")
    clean_by_stem = ({p.stem: p for p in clean_dir.iterdir() if is_image_file(str(p))} if clean_dir else {})
    estimated, exact = LayerStatistics(), LayerStatistics()
    for path in paths:
        try:
            rainy = np.asarray(load_rgb(path))
            estimated.add(rain_layer_y(rainy))
            if clean_dir is not None:
                if path.stem not in clean_by_stem:
                    raise ValueError(f"'{path.name}' has no clean counterpart in '{clean_dir}'")
                exact.add(rain_layer_y(rainy, np.asarray(load_rgb(clean_by_stem[path.stem]))))
        except ImageReadError as err:
            logger.warning("skipping unreadable image: %s", err)
    result = {"estimated": estimated.summary()}
    if clean_dir is not None:
        result["exact"] = exact.summary()
    return result


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rainy", required=True, help="folder of rainy images")
    parser.add_argument("--clean", default=None, help="their clean counterparts (same stems), for the exact layer")
    parser.add_argument("--max_images", type=int, default=None, help="use at most this many images")
    args = parser.parse_args(argv)
    try:
        result = folder_statistics(Path(args.rainy), Path(args.clean) if args.clean else None, args.max_images)
    except (ValueError, OSError) as err:
        logger.error("%s", err)
        return 2
    for kind, stats in result.items():
        values = " ".join(f"{key}={value:.4g}" if value is not None else f"{key}=-" for key, value in stats.items())
        sys.stdout.write(f"{kind}: {values}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
