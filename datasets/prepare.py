"""Lay out a downloaded deraining / dehazing benchmark as an unpaired dataset (docs/METHODS.md, section 1).

    python -m datasets.prepare rain100l --archive rain_data_train_Light.zip \\
        --archive rain_data_test_Light.gz --out datasets/rain100l
    python -m datasets.prepare rain800 --archive test.zip --out datasets/rain800_test100
    python -m datasets.prepare reside_sots --subset outdoor --archive SOTS.zip --out datasets/sots_out

``--archive`` takes a zip / tar / rar / 7z archive or an extracted folder and may be repeated
(a training and a test archive). ``datasets/README.md`` lists the layouts each release comes
in, their sizes and where to download them. How a release is read:

- archives inside archives are opened; rar and 7z need ``unrar`` or ``7z`` on PATH;
- in a tree holding several sets (PReNet's RainTrainL beside RainTrainH, the deraining
  test.zip with Rain100H, Rain100L, Test100, Test1200, Test2800) only the folders of the
  requested set are read, and archives of other sets are not even opened;
- folders decide whether an image is degraded (rain, rainy, input, hazy) or clean (norain,
  gt, target, clear, ...); names decide only inside a folder holding both kinds (PReNet's
  rain-12.png beside norain-12.png). The first number of a name is the scene; text after
  an underscore that follows it tells several degraded versions of a scene apart (SOTS's
  1400_3.png) or names a clean image stored once per degraded one (GT/1400_3.png);
- the innermost folder, or else the archive, whose name holds ``train`` or ``test`` (or is
  a test set such as Rain100L or Test100) decides whether an image is training or test data.

Output: ``trainA`` (degraded images of one half of the training scenes), ``trainB`` (clean
images of the other half), ``testA`` / ``testB`` (degraded / clean test pairs under the same
file stem), and ``prepare.json`` recording the split and the counts found against the counts
of each known release. Scenes are sorted by name and shuffled with
``numpy.random.default_rng(seed)``; the first half (rounded up) goes to trainA. Releases with
a training part keep their train/test split; releases that only hold a test set (SPA-Data,
SOTS) first hold out ``test_fraction`` of the shuffled scenes for testing. A scene's clean
image larger than its degraded image (some RESIDE packagings keep a border around the clear
frames) is centre-cropped to that size. The dataset is written to a staging folder and moved
into place at the end: a failed run leaves an earlier dataset in ``--out`` untouched.

The steps live beside this file: ``prepare_catalogue`` (the known releases and their counts),
``prepare_readers`` (archives and folders), ``prepare_pairing`` (roles, scenes, counts) and
``prepare_writer`` (the split and the files written).
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from datasets.prepare_catalogue import BENCHMARKS, SPLIT_DIRS, PrepareError
from datasets.prepare_pairing import classify, compare_counts, complete_scenes, resolve_parts
from datasets.prepare_readers import Reader, set_choice
from datasets.prepare_writer import Writer, publish, report_balance, size_of, split_scenes, stem_of, train_a_images
from util.atomic_file import DiskFullError

log = logging.getLogger(__name__)


def _check_arguments(name: str, archives: list[str | Path], out: Path, test_fraction: float, overwrite: bool) -> None:
    if name not in BENCHMARKS:
        raise PrepareError(f"unknown benchmark {name!r}: choose one of {', '.join(BENCHMARKS)}")
    if not 0.0 < test_fraction < 1.0:
        raise PrepareError(f"--test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    missing = [str(a) for a in archives if not Path(a).exists()]
    if missing:
        raise PrepareError(f"'{missing[0]}' does not exist: check the path given to --archive")
    if out.exists() and not out.is_dir():
        raise PrepareError(f"--out '{out}' is a file, not a folder: choose another --out")
    busy = [out / d for d in SPLIT_DIRS if (out / d).is_dir() and any((out / d).iterdir())]
    if busy and not overwrite:
        raise PrepareError(f"'{busy[0]}' already holds files: pass --overwrite or choose another --out")


def prepare(
    name: str,
    archives: list[str | Path],
    out_dir: str | Path,
    seed: int = 0,
    subset: str = "indoor",
    test_fraction: float = 0.2,
    rainy_side: str = "right",
    one_hazy_per_scene: bool = False,
    overwrite: bool = False,
) -> dict:
    """Convert benchmark ``name`` from ``archives`` into ``out_dir``; returns ``prepare.json``."""
    out = Path(out_dir)
    _check_arguments(name, archives, out, test_fraction, overwrite)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(prefix=".prepare_", dir=out) as tmp:
            record = _convert(
                name, [Path(a) for a in archives], Path(tmp), out, seed, subset, test_fraction,
                rainy_side, one_hazy_per_scene,
            )
    except BaseException:
        if created and not any(out.iterdir()):
            out.rmdir()
        raise
    return record


def _convert(
    name: str, archives: list[Path], tmp: Path, out: Path, seed: int, subset: str,
    test_fraction: float, rainy_side: str, one_hazy_per_scene: bool,
) -> dict:
    reader = Reader(tmp / "extract", set_choice(name, subset))
    files = [f for archive in archives for f in reader.read(archive)]
    if not files:
        raise PrepareError(
            f"no images in {', '.join(map(str, archives))}: see datasets/README.md for what each release holds"
        )
    entries = resolve_parts(classify(files, name, rainy_side))
    complete, incomplete = complete_scenes(entries, name, len(files))
    parts = compare_counts(f"{name}:{subset}" if name == "reside_sots" else name, complete)
    train_a, train_b, test, mode = split_scenes(complete, seed, test_fraction)
    if not test:
        log.warning("no test pairs found: testA/testB stay empty (pass the test archive too)")

    # A generator of its own, so that --one_hazy_per_scene leaves the split unchanged.
    rng = np.random.default_rng([seed, 1]) if one_hazy_per_scene else None
    train_a_entries = {k: train_a_images(complete[k], rng) for k in train_a}
    report_balance(sum(map(len, train_a_entries.values())), len(train_a), one_hazy_per_scene)

    writer = Writer(tmp / "staging")
    jobs = [(k, "trainA") for k in train_a] + [(k, "trainB") for k in train_b] + [(k, "test") for k in test]
    for key, role in tqdm(jobs, desc=f"writing {name}", unit="scene", disable=None):
        scene = complete[key]
        if role == "trainA":
            for entry in train_a_entries[key]:
                writer.write(entry, "trainA", stem_of(entry))
        elif role == "trainB":
            clean = scene.clean_for(None)
            writer.write(clean, "trainB", clean.scene, size_of(next(iter(scene.degraded.values()))))
        else:
            for entry in scene.degraded.values():
                writer.write(entry, "testA", stem_of(entry))
                writer.write(scene.clean_for(entry.variant), "testB", stem_of(entry), size_of(entry))
    record = {
        "release": name,
        "subset": subset if name == "reside_sots" else None,
        "archives": [str(a) for a in archives],
        "seed": seed,
        "mode": mode,
        "test_fraction": test_fraction if mode == "holdout" else None,
        "one_hazy_per_scene": one_hazy_per_scene,
        "parts": parts,
        "trainA_scenes": [k[1] for k in train_a],
        "trainB_scenes": [k[1] for k in train_b],
        "test_scenes": [k[1] for k in test],
        "incomplete_scenes": incomplete,
        "counts": writer.count,
    }
    publish(tmp / "staging", out, record)
    log.info("%s (%s split): %s", name, mode, ", ".join(f"{k} {v}" for k, v in writer.count.items()))
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Convert a downloaded benchmark to trainA/trainB/testA/testB.")
    parser.add_argument("name", choices=BENCHMARKS)
    parser.add_argument(
        "--archive", action="append", required=True,
        help="zip / tar / rar / 7z archive or extracted folder of the release; repeat for several parts",
    )
    parser.add_argument("--out", required=True, help="dataset root to create")
    parser.add_argument("--seed", type=int, default=0, help="seed of the scene split (default 0)")
    parser.add_argument("--subset", choices=("indoor", "outdoor"), default="indoor", help="reside_sots only")
    parser.add_argument(
        "--test_fraction", type=float, default=0.2,
        help="share of scenes held out for testing when the release has no training part",
    )
    parser.add_argument(
        "--rainy_side", choices=("left", "right"), default="right",
        help="rain800 only: the half of each side-by-side pair that is rainy",
    )
    parser.add_argument(
        "--one_hazy_per_scene", action="store_true",
        help="trainA keeps one (seeded) degraded image per scene, e.g. 1 of SOTS indoor's 10 hazy images",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset in --out")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(levelname)s: %(message)s", level=logging.INFO)
    try:
        prepare(
            args.name, args.archive, args.out, seed=args.seed, subset=args.subset,
            test_fraction=args.test_fraction, rainy_side=args.rainy_side,
            one_hazy_per_scene=args.one_hazy_per_scene, overwrite=args.overwrite,
        )
    except PrepareError as err:
        log.error("%s", " ".join(str(err).split()))
        return 2
    except DiskFullError as err:
        log.error("%s", err)
        return 2
    except OSError as err:
        # Disk full, permissions, a path that vanished: the message names the file.
        log.error("%s: check the paths, free disk space and permissions", " ".join(str(err).split()))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
