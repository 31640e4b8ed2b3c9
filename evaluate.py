"""Score restored images against their ground truth (PSNR / SSIM, docs/METHODS.md, section 5).

    python evaluate.py --pred results/NAME/test_latest/images/fake_B --gt datasets/rain/testB
    python evaluate.py --pred OUT --gt GT --channel rgb --csv scores.csv   # dehazing convention
    python evaluate.py --pred OUT --gt GT --input datasets/rain/testA      # + rain residue, dark artifacts
    python evaluate.py --pred OUT --gt GT --channel rgb --input datasets/haze/testA   # + CIEDE2000, residual haze
    python evaluate.py --pred MY_PHOTOS --no_reference                     # NIQE / PIQE, no ground truth

Files are matched by stem (pred ``foo.png`` is scored against gt ``foo.jpg``). Prints one
line per image and the mean; exits with status 2 and a one-line message when the folders
cannot be scored. With --no_reference every image of --pred gets NIQE and PIQE (lower is
better; NIQE is left empty for images smaller than two 96 x 96 blocks). With --input (the
rainy images that were restored) every image also gets its rain residue (the share of the
rain's added brightness left: 1 untouched, 0 gone; '-' without rain pixels) and its dark
artifacts (the share of pixels made darker than input and ground truth on flat ground truth;
per cent in the table, a fraction in the CSV): docs/METHODS.md, section 5. For dehazing
(--task haze, the default with --channel rgb) --input brings the haze diagnostics instead: the
mean CIEDE2000 colour difference to the ground truth, and the residual haze of the output and
of the input (mean dark channel minus the ground truth's, in 8-bit levels: 0 as clear as the
ground truth).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from util.flags import OneLineParser
from util.image_io import display_name
from util.metrics import CHANNELS, HAZE_COLUMNS, TASKS, MetricsError, evaluate_folders
from util.no_reference import NO_REFERENCE_METRICS, score_folder
from util.reporting import fmt, text_table, write_csv

log = logging.getLogger("evaluate")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pred", required=True, help="folder of restored images")
    parser.add_argument("--gt", help="folder of ground-truth images (same stems); required without --no_reference")
    parser.add_argument("--input", help="folder of the degraded inputs that were restored (same stems): adds the "
                                        "rain residue and dark artifact columns (--task rain) or CIEDE2000 and "
                                        "residual haze (--task haze)")
    parser.add_argument("--task", choices=TASKS,
                        help="which diagnostics --input adds: rain or haze (default: rain with --channel y, haze "
                             "with --channel rgb)")
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
        "--csv", help="also write name,psnr,ssim (+ rain_residue,dark_artifacts or ciede2000,residual_haze,"
                      "input_residual_haze with --input) per image and a final 'mean' row to this file"
    )
    args = parser.parse_args(argv)
    if args.task is None:
        args.task = "haze" if args.channel == "rgb" else "rain"
    if args.crop_border < 0:
        parser.error(f"--crop_border must be at least 0, got {args.crop_border}")
    if not args.no_reference and args.gt is None:
        parser.error("--gt is required (or pass --no_reference to score --pred without ground truth)")
    if args.no_reference and args.input is not None:
        parser.error("--input needs ground truth: drop it with --no_reference, or pass --gt instead")
    return args


def write_scores_csv(path: Path, rows: list[dict], mean: dict) -> None:
    """name, psnr, ssim (and rain_residue, dark_artifacts as fractions, or the haze diagnostics,
    when scored) per image, then the mean."""
    diagnostics = [key for key in ("rain_residue", "dark_artifacts", *HAZE_COLUMNS) if key in mean]
    header = ["name", "psnr", "ssim", *diagnostics]

    def cells(name: str, row: dict) -> list[str]:
        return [name, fmt(row["psnr"], 4), fmt(row["ssim"], 6), *(fmt(row[key], 6, missing="") for key in diagnostics)]

    write_csv(path, header, [*(cells(display_name(r["name"]), r) for r in rows), cells("mean", mean)])


def write_no_reference_csv(path: Path, rows: list[dict], mean: dict) -> None:
    write_csv(path, ["name", *NO_REFERENCE_METRICS],
              [[display_name(r["name"])] + [fmt(r[m], 4, missing="") for m in NO_REFERENCE_METRICS] for r in rows]
              + [["mean"] + [fmt(mean[m], 4, missing="") for m in NO_REFERENCE_METRICS]])


def print_table(rows: list[dict], mean: dict, columns: dict[str, int], cell, note: str) -> None:
    """One line per image and a mean line: the name, then `cell(row, column)` right-aligned in
    each column of `columns` (title -> width), the mean line followed by `note`."""
    named = [*((display_name(r["name"]), r) for r in rows), ("mean", mean)]
    table = [["name", *columns]] + [[name, *(cell(row, title) for title in columns)] for name, row in named]
    lines = text_table(table, list(columns.values()))
    print("\n".join(lines[:-1] + [f"{lines[-1]}  ({note})"]))


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
        return fmt(row["niqe"], 4) if column == "NIQE" else fmt(row["piqe"], 2)

    print_table(rows, mean, {"NIQE": 8, "PIQE": 8}, cell, f"{mean['count']} images; lower is better")
    return save_csv(write_no_reference_csv, args.csv, rows, mean)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(format="%(levelname)s: %(message)s", level=logging.INFO)
    args = parse_args(argv)
    if args.no_reference:
        return no_reference(args)
    try:
        rows, mean = evaluate_folders(args.pred, args.gt, args.channel, args.crop_border, args.input, args.task)
    except MetricsError as err:
        log.error("%s", err)
        return 2
    columns = {"PSNR": 8, "SSIM": 7}
    note = f"{mean['count']} images, channel {args.channel}, crop_border {args.crop_border}"
    if args.input is not None and args.task == "haze":
        columns.update({"CIEDE2000": 9, "haze": 6, "input haze": 10})
        note += "; haze: mean dark channel minus the ground truth's, in 8-bit levels"
    elif args.input is not None:
        columns.update({"residue": 7, "dark %": 6})
        note += f"; residue over the {mean['rain_residue_count']} images with rain pixels"
    print_table(rows, mean, columns, score_cell, note)
    return save_csv(write_scores_csv, args.csv, rows, mean)


def score_cell(row: dict, column: str) -> str:
    if column == "residue":
        return fmt(row["rain_residue"], 3)
    if column == "dark %":
        return fmt(100 * row["dark_artifacts"], 2)
    if column == "CIEDE2000":
        return fmt(row["ciede2000"], 3)
    if column in ("haze", "input haze"):
        return fmt(row["residual_haze" if column == "haze" else "input_residual_haze"], 2)
    return fmt(row[column.lower()], 4)


if __name__ == "__main__":
    sys.exit(main())
