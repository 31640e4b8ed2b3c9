"""One PNG that shows restorations next to their inputs and ground truth.

    python scripts/comparison_grid.py --dataroot datasets/rain_heavy \\
        --results results/rain_demo/test_latest/images [--results OTHER --label B ...] \\
        --out docs/demo_grid.png [--count 8] [--every 4]

Each row is one test image: input (testA) | each results folder's output | ground truth
(testB), images matched by file stem. Column titles are drawn above (the folder's run name,
or `--label`). Rows are every `--every`-th image in sorted order, `--count` of them, so the
same command picks the same images every time.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from util.image_io import IMG_EXTENSIONS, load_rgb, save_image
from util.log import setup_logging

logger = logging.getLogger("comparison_grid")
TITLE_HEIGHT = 18


def by_stem(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMG_EXTENSIONS}


def grid(columns: list[tuple[str, dict[str, Path]]], stems: list[str]) -> Image.Image:
    """Rows of images (one per stem), a title above each column."""
    rows = [np.concatenate([np.asarray(load_rgb(files[stem])) for _, files in columns], axis=1) for stem in stems]
    body = np.concatenate(rows, axis=0)
    canvas = Image.new("RGB", (body.shape[1], body.shape[0] + TITLE_HEIGHT), "white")
    canvas.paste(Image.fromarray(body), (0, TITLE_HEIGHT))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=12)
    width = body.shape[1] // len(columns)
    for i, (title, _) in enumerate(columns):
        draw.text((i * width + width // 2, TITLE_HEIGHT // 2), title, fill="black", font=font, anchor="mm")
    return canvas


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataroot", required=True, help="dataset root with testA/ and testB/")
    parser.add_argument("--results", action="append", required=True, help="folder of restored images (repeatable)")
    parser.add_argument("--label", action="append", default=[], help="column title of each --results, in order")
    parser.add_argument("--input_label", default="rainy input", help="column title of the degraded inputs (testA)")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--count", type=int, default=8, help="rows")
    parser.add_argument("--every", type=int, default=4, help="take every N-th test image")
    args = parser.parse_args(argv)
    setup_logging()
    root = Path(args.dataroot)
    folders = [Path(r) for r in args.results]
    missing = [str(f) for f in [root / "testA", root / "testB", *folders] if not f.is_dir()]
    if missing:
        logger.error("not a folder: %s", ", ".join(missing))
        return 2
    if args.count < 1 or args.every < 1:
        logger.error("--count and --every must be at least 1")
        return 2
    labels = args.label + [f.parent.parent.name if f.name == "images" else f.name for f in folders[len(args.label):]]
    columns = [(args.input_label, by_stem(root / "testA"))]
    columns += [(label, by_stem(folder)) for label, folder in zip(labels, folders)]
    columns.append(("ground truth", by_stem(root / "testB")))
    stems = sorted(set.intersection(*(set(files) for _, files in columns)))[::args.every][:args.count]
    if not stems:
        logger.error("no test image is in every folder (matched by file stem)")
        return 2
    save_image(grid(columns, stems), args.out)
    logger.info("wrote %s (%d rows)", args.out, len(stems))
    return 0


if __name__ == "__main__":
    sys.exit(main())
