"""Write a shipped model (pretrained/NAME.pt and its model card) from a training checkpoint.

    python scripts/export_pretrained.py --name RUN [--epoch latest] [--checkpoints_dir ./checkpoints]
                                        --out pretrained/NAME.pt [--half] [--max_mb 5] [--overwrite]

Keeps only the restoring generator (the EMA copy when the run kept one) and the options
that rebuild it (restoration/export.py; the checkpoint is read as test.py reads it,
restoration/loading.py). `--half` stores the weights as float16, halving the
file; they are restored in float32. The model card `NAME.md` is written beside the file from
pretrained/MODEL_CARD.template.md. An existing model (or card) at --out is replaced only with
--overwrite, and then together: a card kept beside new weights would describe another model.
Exit status: 0 written; 2 bad option, no usable checkpoint, a file over --max_mb, an existing
--out without --overwrite, or --out not writable.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from models.loading import generator_from_saved_options
from options.base_options import EPOCH_FILE_EXTRA, OptionError, check_plain_name
from restoration.export import export_generator
from restoration.shipped import MAX_SHIPPED_MB, PRETRAINED_DIR, SUFFIX
from util.atomic_file import atomic_write
from util.checkpoint import CheckpointError, describe_position, file_digest
from util.flags import OneLineParser
from util.log import setup_logging

logger = logging.getLogger("export_pretrained")
TEMPLATE = PRETRAINED_DIR / "MODEL_CARD.template.md"


def parse_args(argv: list[str] | None = None):
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True, help="training run: checkpoints/<name>/")
    parser.add_argument("--epoch", default="latest", help="which checkpoint: latest or an epoch number")
    parser.add_argument("--checkpoints_dir", default="./checkpoints")
    parser.add_argument("--out", required=True, help=f"the shipped model's file, e.g. pretrained/NAME{SUFFIX}")
    parser.add_argument("--half", action="store_true", help="store the weights as float16 (half the size)")
    parser.add_argument("--max_mb", type=float, default=MAX_SHIPPED_MB, help="refuse a larger file")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing model at --out and its model card (a fresh card from the template)")
    args = parser.parse_args(argv)
    try:
        check_plain_name("--name", args.name)
        check_plain_name("--epoch", args.epoch, EPOCH_FILE_EXTRA)
    except OptionError as err:
        parser.error(str(err))
    if not args.out.endswith(SUFFIX):
        parser.error(f"--out must end in {SUFFIX} (test.py --pretrained finds pretrained/NAME{SUFFIX}), got {args.out}")
    return args


def model_card(state: dict, out: Path, export_args: str) -> str:
    """The model card template with what the export knows filled in."""
    net_name = next(iter(state["nets"]))
    weights = state["nets"][net_name]
    architecture = ", ".join(f"{key} {value}" for key, value in state["opt"].items())
    parameters = sum(t.numel() for t in generator_from_saved_options(state["opt"], net_name).parameters())
    facts = {
        "name": out.stem, "file": str(out), "size_mb": f"{out.stat().st_size / 1e6:.2f}",
        "sha256": file_digest(out, 64),
        "dtype": str(next(iter(weights.values())).dtype).removeprefix("torch."), "export_args": export_args,
        "source": state["source"]["checkpoint"], "source_sha256": state["source"]["sha256"],
        "position": describe_position(state["position"]), "net_name": net_name,
        "architecture": f"{architecture} ({parameters:,} parameters)",
        "dataroot": state["source"]["dataroot"], "model": state["model"],
    }
    return TEMPLATE.read_text(encoding="utf-8").format_map(facts)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging()
    checkpoint = Path(args.checkpoints_dir) / args.name / f"{args.epoch}.pt"
    out = Path(args.out)
    card = out.with_suffix(".md")
    existing = [str(p) for p in (out, card) if p.exists()]
    if existing and not args.overwrite:
        logger.error("%s already exists: pass --overwrite to replace the model and its card together, or choose "
                     "another --out", " and ".join(existing))
        return 2
    # Written beside --out first: a file over --max_mb (or a failed export) leaves the old model in place.
    staging = out.with_name(f".{out.stem}.export{SUFFIX}")
    try:
        state = export_generator(checkpoint, staging, half=args.half)
        size_mb = staging.stat().st_size / 1e6
        if size_mb > args.max_mb:
            staging.unlink()
            logger.error("'%s' would be %.2f MB, over the %.1f MB a shipped model may have: export with --half or "
                         "train a smaller --ngf (nothing written)", out, size_mb, args.max_mb)
            return 2
        os.replace(staging, out)
        export_args = f"--name {args.name} --epoch {args.epoch} --out {args.out}" + (" --half" if args.half else "")
        with atomic_write(card, "w") as fh:
            fh.write(model_card(state, out, export_args))
    except CheckpointError as err:
        logger.error("%s", err)
        return 2
    except OSError as err:
        staging.unlink(missing_ok=True)
        logger.error("cannot write '%s': %s", out, err)
        return 2
    if existing:
        logger.warning("--overwrite: replaced %s", " and ".join(existing))
    logger.info("wrote %s and its model card %s: fill in the card's TODO sections", out, card)
    return 0


if __name__ == "__main__":
    sys.exit(main())
