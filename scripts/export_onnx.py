"""Export the restoring generator of a checkpoint to ONNX, for any image size.

    python scripts/export_onnx.py --name NAME [--epoch latest] [--checkpoints_dir ./checkpoints]
                                  [--direction AtoB] [--out FILE] [--opset 17]

The exported graph takes a float32 N x 3 x H x W image in [-1, 1] and returns the restored
image of the same size; H and W are dynamic (at least 16 px). Like test.py it reflect-pads
H and W to a multiple of 4 inside the graph and crops back, so its output equals
runtime.inference.restore() without tiling. When onnxruntime is installed the export is
checked against PyTorch on an image whose sides are not multiples of 4. The checkpoint is
loaded as test.py loads it (restoration/loading.py): a shipped model whose bytes differ from
its model card is refused.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch
import torch.nn as nn

from models.loading import first_line
from options.base_options import EPOCH_FILE_EXTRA, OptionError, check_plain_name
from restoration.loading import load_generator
from runtime.inference import run_padded
from runtime.onnx_export import MIN_OPSET, MIN_SIDE, export_onnx
from util.checkpoint import CheckpointError
from util.flags import OneLineParser
from util.log import setup_logging

logger = logging.getLogger("export_onnx")

def check_with_onnxruntime(net: nn.Module, path: Path, size: tuple[int, int] = (61, 83)) -> float | None:
    """Largest absolute difference to PyTorch on a random image; None without onnxruntime."""
    try:
        import onnxruntime
    except ImportError:
        logger.warning("onnxruntime is not installed: the export was not checked (pip install onnxruntime)")
        return None
    x = torch.rand(1, 3, *size) * 2 - 1
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_out = torch.from_numpy(session.run(None, {"image": x.numpy()})[0])
    return float((onnx_out - run_padded(net, x)).abs().max())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True, help="run name: checkpoints/<name>/")
    parser.add_argument("--epoch", default="latest", help="checkpoint label: latest or an epoch number")
    parser.add_argument("--checkpoints_dir", default="./checkpoints")
    parser.add_argument("--direction", default="AtoB", choices=("AtoB", "BtoA"), help="AtoB restores")
    parser.add_argument("--out", default=None,
                        help="output file (default: checkpoints/<name>/<epoch>_<direction>.onnx)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset version")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    try:
        check_plain_name("--name", args.name)
        check_plain_name("--epoch", args.epoch, EPOCH_FILE_EXTRA)
    except OptionError as err:
        parser.error(str(err))
    if args.opset < MIN_OPSET:
        parser.error(f"--opset {args.opset}: the padding needs opset {MIN_OPSET} or later (17 is the default)")
    if args.out and Path(args.out).is_dir():
        parser.error(f"--out '{args.out}' is a folder: give the file to write, e.g. {Path(args.out) / 'g.onnx'}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    run_dir = Path(args.checkpoints_dir) / args.name
    try:
        net, _ = load_generator(run_dir / f"{args.epoch}.pt", args.direction)
    except CheckpointError as err:
        logger.error("%s", err)
        return 2
    out = Path(args.out) if args.out else run_dir / f"{args.epoch}_{args.direction}.onnx"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        export_onnx(net, out, args.opset)
    except RuntimeError as err:  # torch.onnx's errors, e.g. an opset newer than it knows
        logger.error("cannot export with --opset %d: %s (opset 17, the default, works)", args.opset, first_line(err))
        return 2
    except OSError as err:
        logger.error("cannot write '%s': %s; check --out", out, err.strerror or err)
        return 2
    logger.info("wrote %s (input 'image': N x 3 x H x W in [-1, 1], H and W >= %d)", out, MIN_SIDE)
    difference = check_with_onnxruntime(net, out)
    if difference is not None:
        logger.info("onnxruntime vs PyTorch: max abs difference %.2e", difference)
        if difference > 1e-3:
            logger.error("the ONNX model disagrees with PyTorch (max abs difference %.2e); do not use %s",
                         difference, out)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
