"""Plot test-set PSNR against training time from benchmark_quality.py --eval_every results.

    python scripts/plot_learning_curve.py RESULTS_JSON [RESULTS_JSON ...] --out docs/learning_curve

Writes OUT.png (PSNR against iterations, one curve per run label, averaged over seeds when a
label has several, the degraded input as a flat line) and OUT.md (the same points as a table
with SSIM and training minutes). Exit status 2 when a file holds no curve.
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from util.html import draw_curves
from util.log import setup_logging

logger = logging.getLogger("plot_learning_curve")


def mean_curves(results: list[dict]) -> dict[str, list[dict]]:
    """label -> [{iterations, psnr, ssim, minutes, seeds}], averaged over the runs of each label."""
    points: dict[str, dict[int, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for result in results:
        for run in result["runs"]:
            for point in run.get("curve", []):
                points[run.get("label", run["spec"])][point["iterations"]].append(point)
    curves = {}
    for label, by_iteration in points.items():
        curves[label] = [{"iterations": it, "psnr": statistics.mean(p["psnr"] for p in group),
                          "ssim": statistics.mean(p["ssim"] for p in group),
                          "minutes": statistics.mean(p["seconds"] for p in group) / 60, "seeds": len(group)}
                         for it, group in sorted(by_iteration.items())]
    return curves


def markdown(curves: dict[str, list[dict]], floor: dict) -> str:
    lines = ["| model | iterations | training minutes | PSNR (dB) | SSIM | seeds |", "|---|---:|---:|---:|---:|---:|"]
    for label, points in curves.items():
        lines += [f"| {label} | {p['iterations']} | {p['minutes']:.1f} | {p['psnr']:.2f} | {p['ssim']:.4f} | "
                  f"{p['seeds']} |" for p in points]
    lines.append(f"| input (degraded testA) | - | - | {floor['psnr']:.2f} | {floor['ssim']:.4f} | - |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", help="results.json files of benchmark_quality.py --eval_every")
    parser.add_argument("--out", required=True, help="output path without extension (.png and .md are written)")
    args = parser.parse_args(argv)
    setup_logging()
    results = [json.loads(Path(path).read_text()) for path in args.results]
    curves = mean_curves(results)
    if not curves:
        logger.error("no learning curve in %s: run benchmark_quality.py with --eval_every N", ", ".join(args.results))
        return 2
    floor = results[0]["input"]
    last = max(p["iterations"] for points in curves.values() for p in points)
    history = {label: [(p["iterations"], p["psnr"]) for p in points] for label, points in curves.items()}
    history["input"] = [(0, floor["psnr"]), (last, floor["psnr"])]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    draw_curves(history, out.with_suffix(".png"), size=(900, 420), title="test-set Y-PSNR (dB) while training",
                xlabel="iterations")
    out.with_suffix(".md").write_text(markdown(curves, floor))
    logger.info("wrote %s and %s", out.with_suffix(".png"), out.with_suffix(".md"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
