"""Score restored images against their ground truth (PSNR / SSIM, docs/METHODS.md, section 5).

    python evaluate.py --pred results/NAME/test_latest/images/fake_B --gt datasets/rain/testB
    python evaluate.py --pred OUT --gt GT --channel rgb --csv scores.csv   # dehazing convention
    python evaluate.py --pred MY_PHOTOS --no_reference                     # NIQE / PIQE, no ground truth

Files are matched by stem (pred ``foo.png`` is scored against gt ``foo.jpg``). Prints one
line per image and the mean; exits with status 2 and a one-line message when the folders
cannot be scored. With --no_reference every image of --pred gets NIQE and PIQE (lower is
better; NIQE is left empty for images smaller than two 96 x 96 blocks).
"""
from __future__ import annotations

import argparse
import csv
import logging
import sys
from pathlib import Path

from util.atomic_file import atomic_write
from util.flags import OneLineParser
from util.image_io import display_name
from util.metrics import CHANNELS, MetricsError, evaluate_folders
from util.no_reference import NO_REFERENCE_METRICS, score_folder

log = logging.getLogger("evaluate")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pred", required=True, help="folder of restored images")
    parser.add_argument("--gt", help="folder of ground-truth images (same stems); required without --no_reference")
    parser.add_argument("--no_reference", action="store_true",
                        help="score --pred alone with NIQE and PIQE (no ground truth needed)")
    parser.add_argument(
        "--channel",
        choices=CHANNELS,
        default="y",
        help="y: BT.601 luma (deraining papers); rgb: all channels (dehazing papers)",
    )
    parser.add_argument(
        "--crop_border", type=int, default=0, help="pixels ignored at each image border"
    )
    parser.add_argument(
        "--csv", help="also write name,psnr,ssim per image and a final 'mean' row to this file"
    )
    args = parser.parse_args(argv)
    if args.crop_border < 0:
        parser.error(f"--crop_border must be at least 0, got {args.crop_border}")
    if not args.no_reference and args.gt is None:
        parser.error("--gt is required (or pass --no_reference to score --pred without ground truth)")
    return args


def write_csv(path: Path, rows: list[dict], mean: dict) -> None:
    with atomic_write(path, "w") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["name", "psnr", "ssim"])
        for row in rows:
            writer.writerow([display_name(row["name"]), f"{row['psnr']:.4f}", f"{row['ssim']:.6f}"])
        writer.writerow(["mean", f"{mean['psnr']:.4f}", f"{mean['ssim']:.6f}"])


def format_score(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def write_no_reference_csv(path: Path, rows: list[dict], mean: dict) -> None:
    with atomic_write(path, "w") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["name", *NO_REFERENCE_METRICS])
        for row in rows:
            writer.writerow([display_name(row["name"])] + [format_score(row[m]) for m in NO_REFERENCE_METRICS])
        writer.writerow(["mean"] + [format_score(mean[m]) for m in NO_REFERENCE_METRICS])


def print_table(rows: list[dict], mean: dict, columns: dict[str, int], cell, note: str) -> None:
    """One line per image and a mean line: the name, then `cell(row, column)` right-aligned in
    each column of `columns` (title -> width), the mean line followed by `note`."""
    names = [display_name(r["name"]) for r in rows]
    width = max(len("name"), max(map(len, names)))
    print(f"{'name':<{width}}" + "".join(f"  {title:>{w}}" for title, w in columns.items()))
    for name, row in [*zip(names, rows), ("mean", mean)]:
        line = f"{name:<{width}}" + "".join(f"  {cell(row, title):>{w}}" for title, w in columns.items())
        print(line + (f"  ({note})" if row is mean else ""))


def save_csv(writer, path: str | None, rows: list[dict], mean: dict) -> int:
    """Write --csv with `writer` when asked; 0, or 2 with a logged error when it cannot."""
    if not path:
        return 0
    try:
        writer(Path(path), rows, mean)
    except OSError as err:
        log.error("cannot write the CSV '%s': %s", path, err)
        return 2
    log.info("wrote %s", path)
    return 0


def no_reference(args: argparse.Namespace) -> int:
    """NIQE / PIQE of every image in --pred, one line each and the mean."""
    try:
        rows, mean = score_folder(args.pred)
    except MetricsError as err:
        log.error("%s", err)
        return 2

    def cell(row: dict, column: str) -> str:
        return (format_score(row["niqe"]) or "-") if column == "NIQE" else format_score(row["piqe"], 2)

    print_table(rows, mean, {"NIQE": 8, "PIQE": 8}, cell, f"{mean['count']} images; lower is better")
    return save_csv(write_no_reference_csv, args.csv, rows, mean)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(format="%(levelname)s: %(message)s", level=logging.INFO)
    args = parse_args(argv)
    if args.no_reference:
        return no_reference(args)
    try:
        rows, mean = evaluate_folders(args.pred, args.gt, args.channel, args.crop_border)
    except MetricsError as err:
        log.error("%s", err)
        return 2
    print_table(rows, mean, {"PSNR": 8, "SSIM": 7}, lambda row, column: f"{row[column.lower()]:.4f}",
                f"{mean['count']} images, channel {args.channel}, crop_border {args.crop_border}")
    return save_csv(write_csv, args.csv, rows, mean)


if __name__ == "__main__":
    sys.exit(main())
