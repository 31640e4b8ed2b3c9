"""Lay out a downloaded deraining / dehazing benchmark as an unpaired dataset (docs/METHODS.md, section 1).

    python datasets/prepare.py rain100l --archive Rain100L.zip --out datasets/rain100l
    python datasets/prepare.py rain100h --archive rain_data_train_Heavy.zip \\
        --archive rain_data_test_Heavy.zip --out datasets/rain100h
    python datasets/prepare.py reside_sots --subset outdoor --archive SOTS.zip --out datasets/sots_out

``--archive`` takes a zip / tar archive or an extracted folder, and may be repeated. The
file names each release uses, and where to download it, are in ``datasets/README.md``.

Output: ``trainA`` (degraded images of one half of the training scenes), ``trainB`` (clean
images of the other half), ``testA`` / ``testB`` (degraded / clean test pairs under the same
file stem), and ``prepare.json`` recording the split. Scenes are sorted by name and shuffled
with ``numpy.random.default_rng(seed)``; the first half (rounded up) goes to trainA.
Releases with an official train/test split keep it; releases that only hold a test set
(SPA-Data, SOTS) or an archive without training files first hold out ``test_fraction`` of
the shuffled scenes for testing. A scene's clean image larger than its degraded image (some
RESIDE packagings keep a border around the clear frames) is centre-cropped to that size.
"""
from __future__ import annotations

import argparse
import filecmp
import json
import logging
import math
import re
import shutil
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image
from tqdm import tqdm

if __package__ in (None, ""):
    # Run as a script (python datasets/prepare.py): make the repository importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from util.image_io import ImageReadError, is_image_file, load_rgb, save_image

log = logging.getLogger(__name__)

SPLIT_DIRS = ("trainA", "trainB", "testA", "testB")
DEGRADED_DIRS = {"rain", "rainy", "input", "hazy", "haze"}
CLEAN_DIRS = {"norain", "gt", "target", "clean", "clear", "groundtruth", "ground_truth"}


class PrepareError(RuntimeError):
    """The release cannot be converted; the message says which file or folder and why."""


@dataclass(frozen=True)
class Entry:
    """One image of a release, as the converter understood its name."""

    path: Path
    role: str  # "degraded" or "clean"
    scene: str
    split: str  # "train" or "test", from the folder names of the release
    variant: str | None = None  # several degraded versions of one scene (SOTS indoor)
    half: str | None = None  # Rain800: which half of a side-by-side pair this image is


@dataclass(frozen=True)
class ReleaseFile:
    path: Path
    rel: PurePosixPath  # relative to the archive root; only its folders are interpreted

    @property
    def folders(self) -> list[str]:
        return [part.lower() for part in self.rel.parts[:-1]]

    @property
    def parent(self) -> str:
        return self.folders[-1] if self.folders else ""

    @property
    def split(self) -> str:
        return "train" if any("train" in folder for folder in self.folders) else "test"


def _scene_id(text: str) -> str:
    """Numbers are zero-padded so that scenes sort and name files consistently."""
    return f"{int(text):04d}" if text.isdigit() else text


# ---------------------------------------------------------------- per-release name rules
_JORDER_RAINY = re.compile(r"norain-(\d+)x\d+")  # rain_data_*/rain/[X2/]norain-12x2.png
_PRENET_RAINY = re.compile(r"rain-(\d+)")  # RainTrainL/rain-12.png, Rain100L/rain-012.png
_CLEAN = re.compile(r"norain-(\d+)")  # norain-12.png
_RAIN100_RULES = ((_JORDER_RAINY, "degraded"), (_PRENET_RAINY, "degraded"), (_CLEAN, "clean"))


def scan_rain100(files: list[ReleaseFile], **_: object) -> list[Entry]:
    """Rain100L / Rain100H in the JORDER, PReNet or input/target (Restormer) packaging."""
    entries = []
    for f in files:
        # JORDER also ships the streak layers and rain masks: they are not rainy images.
        if any(key in folder for folder in f.folders for key in ("streak", "region", "mask")):
            continue
        stem = f.rel.stem.lower()
        for pattern, role in _RAIN100_RULES:
            match = pattern.fullmatch(stem)
            if match:
                entries.append(Entry(f.path, role, _scene_id(match.group(1)), f.split))
                break
        else:
            if f.parent in DEGRADED_DIRS or f.parent in CLEAN_DIRS:
                role = "degraded" if f.parent in DEGRADED_DIRS else "clean"
                entries.append(Entry(f.path, role, _scene_id(f.rel.stem), f.split))
    return entries


def scan_rain800(files: list[ReleaseFile], rainy_side: str = "right", **_: object) -> list[Entry]:
    """Rain800 (ID-CGAN): training/ and test_syn/ hold clean|rainy pairs side by side."""
    clean_side = "left" if rainy_side == "right" else "right"
    entries = []
    for f in files:
        # test_nature holds real rainy photos without ground truth.
        if any("nature" in folder for folder in f.folders):
            continue
        if not any("train" in folder or "test" in folder for folder in f.folders):
            continue
        scene = _scene_id(f.rel.stem)
        entries.append(Entry(f.path, "degraded", scene, f.split, half=rainy_side))
        entries.append(Entry(f.path, "clean", scene, f.split, half=clean_side))
    return entries


_SPA_GT = re.compile(r"(.+?)[_-]?gt", re.IGNORECASE)


def scan_spa(files: list[ReleaseFile], **_: object) -> list[Entry]:
    """SPA-Data test set: rain/NNN.png with gt/NNNgt.png, or NNN.png beside NNN_gt.png."""
    files = [f for f in files if not any("real_world" in folder for folder in f.folders)]
    clean: dict[str, ReleaseFile] = {}
    entries = []
    for f in files:
        match = _SPA_GT.fullmatch(f.rel.stem)
        if match or f.parent in CLEAN_DIRS:
            key = match.group(1) if match else f.rel.stem
            clean.setdefault(key, f)
            entries.append(Entry(f.path, "clean", _scene_id(key), "test"))
    for f in files:
        gt = clean.get(f.rel.stem)
        if gt is None or gt is f:
            continue
        if f.parent in DEGRADED_DIRS or f.rel.parent == gt.rel.parent:
            entries.append(Entry(f.path, "degraded", _scene_id(f.rel.stem), "test"))
    return entries


def scan_reside_sots(files: list[ReleaseFile], subset: str = "indoor", **_: object) -> list[Entry]:
    """RESIDE SOTS: {indoor/nyuhaze500, outdoor}/hazy/<id>_<params> with gt/<id>."""
    subset_folders = {"indoor": ("indoor", "nyuhaze500"), "outdoor": ("outdoor",)}
    has_subsets = any(set(f.folders) & {"indoor", "outdoor", "nyuhaze500"} for f in files)
    if not has_subsets:
        log.info("no indoor/outdoor folders in the archive: taking every image as subset %s", subset)
    entries = []
    for f in files:
        if has_subsets and not set(f.folders) & set(subset_folders[subset]):
            continue
        if f.parent in ("hazy", "haze"):
            scene, _, variant = f.rel.stem.partition("_")
            entries.append(Entry(f.path, "degraded", scene, f.split, variant=variant or None))
        elif f.parent in CLEAN_DIRS:
            entries.append(Entry(f.path, "clean", f.rel.stem, f.split))
    return entries


RELEASES: dict[str, Callable[..., list[Entry]]] = {
    "rain100l": scan_rain100,
    "rain100h": scan_rain100,
    "rain800": scan_rain800,
    "spa": scan_spa,
    "reside_sots": scan_reside_sots,
}


# ---------------------------------------------------------------- reading the release
def _extract(archive: Path, into: Path) -> Path:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(into)  # zipfile drops absolute paths and '..' components
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            tf.extractall(into, filter="data")
    else:
        raise PrepareError(f"'{archive}' is neither a folder nor a zip / tar archive")
    return into


def _list_images(root: Path) -> list[ReleaseFile]:
    files = []
    for path in sorted(root.rglob("*")):
        rel = PurePosixPath(path.relative_to(root).as_posix())
        # macOS archives carry __MACOSX/ folders and '._name' resource forks.
        if any(part.startswith((".", "__MACOSX")) for part in rel.parts):
            continue
        if path.is_file() and is_image_file(path):
            files.append(ReleaseFile(path, rel))
    return files


def _image_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as img:
            return img.size
    except OSError as err:
        raise PrepareError(f"cannot read image '{path}': {err}") from err


# ---------------------------------------------------------------- building the layout
@dataclass
class Scene:
    clean: Entry | None = None
    degraded: dict[str | None, Entry] = field(default_factory=dict)


def _is_duplicate(kept: Entry, new: Entry) -> bool:
    """Some repackagings hold the same file twice (a copy in a sub-folder); that is harmless."""
    if filecmp.cmp(kept.path, new.path, shallow=False):
        log.debug("'%s' duplicates '%s'; using the first", new.path, kept.path)
        return True
    raise PrepareError(
        f"two different {new.role} images for scene '{new.scene}': '{kept.path}' and '{new.path}'; "
        "remove the one that does not belong to this release"
    )


def _group(entries: list[Entry]) -> dict[tuple[str, str], Scene]:
    scenes: dict[tuple[str, str], Scene] = {}
    for e in entries:
        scene = scenes.setdefault((e.split, e.scene), Scene())
        if e.role == "clean":
            if scene.clean is None or not _is_duplicate(scene.clean, e):
                scene.clean = e
        elif e.variant not in scene.degraded or not _is_duplicate(scene.degraded[e.variant], e):
            scene.degraded[e.variant] = e
    return scenes


def _split_scenes(
    complete: dict[tuple[str, str], Scene], seed: int, test_fraction: float
) -> tuple[list, list, list, str]:
    """(trainA keys, trainB keys, test keys, mode) as described in the module docstring."""
    rng = np.random.default_rng(seed)
    train = sorted(k for k in complete if k[0] == "train")
    if train:
        mode = "official"
        test = sorted(k for k in complete if k[0] == "test")
    else:
        mode = "holdout"
        keys = [sorted(complete)[i] for i in rng.permutation(len(complete))]
        n_test = min(len(keys) - 2, max(1, round(test_fraction * len(keys))))
        if n_test < 1:
            raise PrepareError(f"only {len(keys)} complete scenes: too few for train and test")
        test, train = sorted(keys[:n_test]), sorted(keys[n_test:])
    shuffled = [train[i] for i in rng.permutation(len(train))]
    half = math.ceil(len(shuffled) / 2)
    return sorted(shuffled[:half]), sorted(shuffled[half:]), test, mode


def _stem(entry: Entry) -> str:
    return entry.scene if entry.variant is None else f"{entry.scene}_{entry.variant}"


def _half_box(width: int, height: int, half: str | None) -> tuple[int, int, int, int]:
    if half is None:
        return 0, 0, width, height
    if width % 2:
        raise PrepareError(f"side-by-side pair of odd width {width} px: cannot split it in two halves")
    return (0, 0, width // 2, height) if half == "left" else (width // 2, 0, width, height)


class _Writer:
    """Copies files unchanged when possible, else decodes, crops and writes a PNG."""

    def __init__(self, out: Path):
        self.out = out
        self.count = dict.fromkeys(SPLIT_DIRS, 0)

    def write(self, entry: Entry, folder: str, stem: str, size: tuple[int, int] | None = None) -> None:
        """``size``: centre-crop to this (width, height) after taking the entry's half."""
        width, height = _image_size(entry.path)
        box = _half_box(width, height, entry.half)
        if size is not None and size != (box[2] - box[0], box[3] - box[1]):
            crop_w, crop_h = box[2] - box[0], box[3] - box[1]
            if size[0] > crop_w or size[1] > crop_h:
                raise PrepareError(
                    f"'{entry.path}' ({crop_w}x{crop_h}) is smaller than its pair "
                    f"({size[0]}x{size[1]}): the release seems damaged or mixed with another one"
                )
            left, top = box[0] + (crop_w - size[0]) // 2, box[1] + (crop_h - size[1]) // 2
            box = (left, top, left + size[0], top + size[1])
        if box == (0, 0, width, height):
            suffix = entry.path.suffix.lower()
            shutil.copyfile(entry.path, self.out / folder / f"{stem}{suffix}")
        else:
            try:
                image = load_rgb(entry.path).crop(box)
            except ImageReadError as err:
                raise PrepareError(str(err)) from err
            save_image(np.asarray(image), self.out / folder / f"{stem}.png")
        self.count[folder] += 1


def _size_of(entry: Entry) -> tuple[int, int]:
    """(width, height) of the entry's image, or of its half for side-by-side pairs."""
    width, height = _image_size(entry.path)
    box = _half_box(width, height, entry.half)
    return box[2] - box[0], box[3] - box[1]


def _no_images_message(archives: list[str | Path], roots: list[Path]) -> str:
    message = f"no images in {', '.join(map(str, archives))}"
    inner = [
        p for root in roots for p in root.rglob("*")
        if p.is_file() and (zipfile.is_zipfile(p) or tarfile.is_tarfile(p))
    ]
    if inner:
        message += f"; it holds archives ({inner[0].name}, ...): extract them or pass each with --archive"
    return message


def prepare(
    name: str,
    archives: list[str | Path],
    out_dir: str | Path,
    seed: int = 0,
    subset: str = "indoor",
    test_fraction: float = 0.2,
    rainy_side: str = "right",
    overwrite: bool = False,
) -> dict:
    """Convert release ``name`` from ``archives`` into ``out_dir``; returns ``prepare.json``."""
    if name not in RELEASES:
        raise PrepareError(f"unknown release {name!r}; choose one of {sorted(RELEASES)}")
    if not 0.0 < test_fraction < 1.0:
        raise PrepareError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    missing = [str(a) for a in archives if not Path(a).exists()]
    if missing:
        raise PrepareError(f"archive '{missing[0]}' does not exist")
    out = Path(out_dir)
    busy = [out / d for d in SPLIT_DIRS if (out / d).is_dir() and any((out / d).iterdir())]
    if busy and not overwrite:
        raise PrepareError(f"'{busy[0]}' already holds files; pass --overwrite or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    # Extract next to the output: benchmark archives can be larger than /tmp.
    with tempfile.TemporaryDirectory(prefix=".extract_", dir=out) as tmp:
        roots = []
        for i, archive in enumerate(Path(a) for a in archives):
            roots.append(archive if archive.is_dir() else _extract(archive, Path(tmp) / str(i)))
        files = [f for root in roots for f in _list_images(root)]
        if not files:
            raise PrepareError(_no_images_message(archives, roots))
        entries = RELEASES[name](files, subset=subset, rainy_side=rainy_side)
        scenes = _group(entries)
        complete = {k: s for k, s in scenes.items() if s.clean is not None and s.degraded}
        if not complete:
            raise PrepareError(
                f"found {len(files)} images but no degraded/clean pair named as {name} names them; "
                "see datasets/README.md for the expected names"
            )
        incomplete = sorted(k[1] for k in scenes if k not in complete)
        if incomplete:
            log.warning(
                "%d scenes lack their clean or degraded image and are left out (e.g. %s)",
                len(incomplete), ", ".join(incomplete[:3]),
            )
        train_a, train_b, test, mode = _split_scenes(complete, seed, test_fraction)
        if not test:
            log.warning("no test pairs found: testA/testB stay empty (pass the test archive too)")

        for d in SPLIT_DIRS:
            shutil.rmtree(out / d, ignore_errors=True)
            (out / d).mkdir()
        writer = _Writer(out)
        jobs = [(k, "trainA") for k in train_a] + [(k, "trainB") for k in train_b]
        jobs += [(k, "test") for k in test]
        for key, role in tqdm(jobs, desc=f"writing {name}", unit="scene", disable=None):
            scene = complete[key]
            if role == "trainB":
                first = next(iter(scene.degraded.values()))
                writer.write(scene.clean, "trainB", scene.clean.scene, _size_of(first))
                continue
            for entry in scene.degraded.values():
                writer.write(entry, "trainA" if role == "trainA" else "testA", _stem(entry))
                if role == "test":
                    writer.write(scene.clean, "testB", _stem(entry), _size_of(entry))
    record = {
        "release": name,
        "subset": subset if name == "reside_sots" else None,
        "archives": [str(a) for a in archives],
        "seed": seed,
        "mode": mode,
        "test_fraction": test_fraction if mode == "holdout" else None,
        "trainA_scenes": [k[1] for k in train_a],
        "trainB_scenes": [k[1] for k in train_b],
        "test_scenes": [k[1] for k in test],
        "incomplete_scenes": incomplete,
        "counts": writer.count,
    }
    with open(out / "prepare.json", "w") as fh:
        json.dump(record, fh, indent=1)
    log.info("%s (%s split): %s", name, mode, ", ".join(f"{k} {v}" for k, v in writer.count.items()))
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Convert a downloaded benchmark to trainA/trainB/testA/testB.")
    parser.add_argument("name", choices=sorted(RELEASES))
    parser.add_argument(
        "--archive", action="append", required=True,
        help="zip / tar archive or extracted folder of the release; repeat for several parts",
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
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset in --out")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(levelname)s: %(message)s", level=logging.INFO)
    try:
        prepare(
            args.name, args.archive, args.out, seed=args.seed, subset=args.subset,
            test_fraction=args.test_fraction, rainy_side=args.rainy_side, overwrite=args.overwrite,
        )
    except PrepareError as err:
        log.error("%s", err)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
