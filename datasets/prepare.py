"""Lay out a downloaded deraining / dehazing benchmark as an unpaired dataset (docs/METHODS.md, section 1).

    python datasets/prepare.py rain100l --archive rain_data_train_Light.zip \\
        --archive rain_data_test_Light.gz --out datasets/rain100l
    python datasets/prepare.py rain800 --archive test.zip --out datasets/rain800_test100
    python datasets/prepare.py reside_sots --subset outdoor --archive SOTS.zip --out datasets/sots_out

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
"""
from __future__ import annotations

import argparse
import filecmp
import json
import logging
import lzma
import math
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
import zlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import NamedTuple

import numpy as np
from PIL import Image
from tqdm import tqdm

if __package__ in (None, ""):
    # Run as a script (python datasets/prepare.py): make the repository importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from util.atomic_file import DiskFullError
from util.image_io import ImageReadError, is_image_file, load_rgb, save_image

log = logging.getLogger(__name__)

BENCHMARKS = ("rain100l", "rain100h", "rain800", "spa", "reside_sots")
SPLIT_DIRS = ("trainA", "trainB", "testA", "testB")
MAX_NESTING = 3  # archives inside archives inside archives; deeper ones are left closed


class PrepareError(RuntimeError):
    """The release cannot be converted; the one-line message names the file and the fix."""


# ---------------------------------------------------------------- names used by the releases
DEGRADED_FOLDERS = {"rain", "rainy", "input", "hazy", "haze", "rainy_image"}
CLEAN_FOLDERS = {"norain", "gt", "target", "clean", "clear", "groundtruth", "ground_truth"}
# JORDER and PReNet also ship rain-streak layers, rain regions and masks: not rainy images.
_LAYERS = re.compile(r"streak|region|mask")
_SKIPPED_FOLDERS = {
    "rain800": re.compile(r".*nature.*"),  # test_nature: real rain without ground truth
    "spa": re.compile(r"real_world.*"),  # the 44 GB training set of patches, not converted
}
_CLEAN_NAME = re.compile(r"no[-_]?rain.*|.*?[-_]?(gt|clean|target)")
_DEGRADED_NAME = re.compile(r"rainy?([-_\d].*)?")
_ROLE_MARKS = re.compile(r"^(no[-_]?rain|rainy?)[-_]?|[-_]?(gt|clean|target)$")
# Formats Python cannot open: (name, tools that extract them, what to run by hand).
_TOOL_ARCHIVES = {
    ".rar": ("RAR", ("unrar", "7z", "7zz", "bsdtar"), "`unrar x {name}` or `7z x {name}`"),
    ".7z": ("7z", ("7z", "7za", "7zz", "bsdtar"), "`7z x {name}`"),
}
# JORDER's test archives are tarballs named rain_data_test_*.gz.
_ARCHIVE_SUFFIXES = (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tbz2", ".txz", ".gz", ".tar", ".zip", ".rar", ".7z")


def _names(pattern: str) -> re.Pattern[str]:
    """Folder names matching ``pattern``, optionally followed by a suffix ('-train', '_v2')."""
    return re.compile(rf"(?:{pattern})(?:[-_ ].*)?")


# Trees holding several sets: the folder names of each set ("" holds sets never requested).
RAIN_SETS = {
    "rain100l": _names(r"rain100l|rain200l|raintrainl|rain_data_(?:train|test)_light|rain_light_(?:train|test)"),
    "rain100h": _names(r"rain100h|rain200h|raintrainh|rain_data_(?:train|test)_heavy|rain_heavy_(?:train|test)"),
    "rain800": _names(r"rain800|test100"),
    "": _names(r"test1200|test2800|test12|rain12|rain1200|rain1400|rain12600|rain13k"),
}
SOTS_SETS = {"indoor": _names(r"indoor|nyuhaze500|reside-in"), "outdoor": _names(r"outdoor|reside-out")}
_TEST_SETS = _names(r"rain100l|rain100h|test100|test1200|test2800|rain12|rain1400")
_ANCHOR_SETS = (*RAIN_SETS.values(), *SOTS_SETS.values())
# 'test' starting a word (Test100, real_test_1000, SPA-test, not 'latest'); 'train' anywhere (RainTrainL).
_TEST_WORD = re.compile(r"(?:^|[^a-z])test")


class Count(NamedTuple):
    scenes: int
    pairs: int  # degraded images that have their clean image


def _one_per_scene(n: int) -> Count:
    return Count(n, n)


@dataclass(frozen=True)
class KnownRelease:
    """A published packaging of a benchmark, recognised by its folder or archive names."""

    label: str
    folders: re.Pattern[str]
    counts: dict[str, Count]  # per part ("train", "test")


KNOWN_RELEASES: dict[str, tuple[KnownRelease, ...]] = {
    "rain100l": (
        KnownRelease(
            "the JORDER page's updated Rain100L (often called Rain200L)",
            _names(r"rain_data_(?:train|test)_light|rain_light_(?:train|test)|rain200l"),
            {"train": _one_per_scene(1800), "test": _one_per_scene(200)},
        ),
        KnownRelease(
            "the original Rain100L (PReNet's RainTrainL / Rain100L, Rain100L of the deraining test.zip)",
            _names(r"raintrainl|rain100l"),
            {"train": _one_per_scene(200), "test": _one_per_scene(100)},
        ),
    ),
    "rain100h": (
        KnownRelease(
            "the JORDER page's updated Rain100H (often called Rain200H)",
            _names(r"rain_data_(?:train|test)_heavy|rain_heavy_(?:train|test)|rain200h"),
            {"train": _one_per_scene(1800), "test": _one_per_scene(200)},
        ),
        KnownRelease(
            "the original Rain100H (PReNet's RainTrainH without 546 scenes shared with the test set "
            "/ Rain100H, Rain100H of the deraining test.zip)",
            _names(r"raintrainh|rain100h"),
            {"train": _one_per_scene(1254), "test": _one_per_scene(100)},
        ),
    ),
    "rain800": (
        KnownRelease(
            "ID-CGAN's Rain800 (training / test_syn)",
            _names(r"rain800|training|test_syn"),
            {"train": _one_per_scene(700), "test": _one_per_scene(100)},
        ),
        KnownRelease(
            "Test100 of the deraining test.zip (Rain800's test set)", _names("test100"), {"test": _one_per_scene(100)}
        ),
    ),
    "spa": (KnownRelease("SPA-Data's real_test_1000", _names("real_test_1000"), {"test": _one_per_scene(1000)}),),
    "reside_sots:indoor": (
        KnownRelease(
            "DehazeFormer's RESIDE-IN (ITS for training, SOTS indoor for testing)",
            _names("reside-in"),
            {"train": Count(1399, 13990), "test": Count(50, 500)},
        ),
        KnownRelease("SOTS indoor (nyuhaze500)", _names("indoor|nyuhaze500"), {"test": Count(50, 500)}),
    ),
    "reside_sots:outdoor": (
        KnownRelease("SOTS outdoor", _names("outdoor|reside-out"), {"test": Count(500, 500)}),
    ),
}


# ---------------------------------------------------------------- reading the archives
@dataclass(frozen=True)
class ReleaseFile:
    path: Path  # where the file can be read now (extracted into a temporary folder)
    rel: PurePosixPath  # archive name / path inside it; nested archives count as folders
    shown: str  # how messages name it: the user's path, or archive.zip:inner/path

    @property
    def folders(self) -> list[str]:
        return [part.lower() for part in self.rel.parts[:-1]]


@dataclass(frozen=True)
class SetChoice:
    """The requested set among the sets a tree may hold (SOTS: the subset)."""

    sets: dict[str, re.Pattern[str]]
    wanted: str

    def set_of(self, parts: Iterable[str]) -> tuple[str, str] | None:
        """(set, folder name) of the innermost folder naming a set, or None."""
        for part in reversed(list(parts)):
            for key, pattern in self.sets.items():
                if pattern.fullmatch(part.lower()):
                    return key, part
        return None

    def excludes(self, parts: Iterable[str]) -> bool:
        found = self.set_of(parts)
        return found is not None and found[0] != self.wanted

    def select(self, files: list[ReleaseFile], shown: str) -> list[ReleaseFile]:
        """The files of the wanted set; all files when the tree names no set."""
        by_set: dict[str | None, list[ReleaseFile]] = defaultdict(list)
        folders: dict[str | None, set[str]] = defaultdict(set)
        for f in files:
            found = self.set_of(f.rel.parts[:-1])
            key = found[0] if found else None
            by_set[key].append(f)
            folders[key].add(found[1] if found else "")
        if set(by_set) <= {None}:
            return files
        others = sorted({name for key, names in folders.items() if key != self.wanted for name in names} - {""})
        if self.wanted not in by_set:
            raise PrepareError(
                f"'{shown}' holds {', '.join(others)} but no {self.wanted} folder: pass the archive "
                "that holds it (datasets/README.md lists the folder names of each set)"
            )
        log.info(
            "'%s': reading %s%s", shown, ", ".join(sorted(folders[self.wanted])),
            f"; leaving out {', '.join(others)}" if others else "",
        )
        return by_set[self.wanted]


def _set_choice(name: str, subset: str) -> SetChoice | None:
    if name in RAIN_SETS:
        return SetChoice(RAIN_SETS, name)
    if name == "reside_sots":
        return SetChoice(SOTS_SETS, subset)
    return None


def _archive_stem(name: str) -> str:
    lower = name.lower()
    for suffix in _ARCHIVE_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _is_archive_name(name: str) -> bool:
    return name.lower().endswith(_ARCHIVE_SUFFIXES)


def _t7_message(shown: str) -> str:
    return (
        f"'{shown}' is a Torch7 file (the current download of ID-CGAN's Rain800), not images: "
        "download Rain800 as images instead (Test100/ of the deraining test.zip linked by "
        "MPRNet / Restormer, or a copy with training/ and test_syn/), or convert the .t7 to PNG "
        "files (e.g. with the torchfile package) and pass that folder"
    )


def _tool_command(tool: str, archive: Path, dest: Path) -> list[str]:
    if tool == "unrar":
        return [tool, "x", "-o+", "-inul", str(archive), f"{dest}{os.sep}"]
    if tool == "bsdtar":
        return [tool, "-xf", str(archive), "-C", str(dest)]
    return [tool, "x", "-y", f"-o{dest}", str(archive)]  # 7z, 7za, 7zz


def _unpack_with_tool(archive: Path, dest: Path, shown: str) -> None:
    kind, tools, by_hand = _TOOL_ARCHIVES[archive.suffix.lower()]
    tool = next((t for t in tools if shutil.which(t)), None)
    if tool is None:
        raise PrepareError(
            f"'{shown}' is a {kind} archive and none of {', '.join(tools)} is installed to extract it: "
            f"install one, or run {by_hand.format(name=archive.name)} and pass the extracted folder with --archive"
        )
    result = subprocess.run(_tool_command(tool, archive, dest), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no message"]
        raise PrepareError(
            f"`{tool}` could not extract '{shown}' (exit status {result.returncode}: {detail[0]}): "
            "the download may be incomplete; download it again"
        )


def _archive_format(archive: Path) -> str | None:
    """By name first, so that a truncated download is reported as such; else by content."""
    name = archive.name.lower()
    if name.endswith((".t7", *_TOOL_ARCHIVES)):
        return archive.suffix.lower()
    if name.endswith(".zip") or zipfile.is_zipfile(archive):
        return ".zip"
    if name.endswith(_ARCHIVE_SUFFIXES) or tarfile.is_tarfile(archive):
        return ".tar"
    return None


def _unpack(archive: Path, dest: Path, shown: str) -> None:
    dest.mkdir(parents=True)
    kind = _archive_format(archive)
    try:
        if kind == ".t7":
            raise PrepareError(_t7_message(shown))
        if kind in _TOOL_ARCHIVES:
            _unpack_with_tool(archive, dest, shown)
        elif kind == ".zip":
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(dest)  # zipfile drops absolute paths and '..' components
        elif kind == ".tar":
            with tarfile.open(archive) as tf:
                tf.extractall(dest, filter="data")
        else:
            raise PrepareError(
                f"'{shown}' is neither a folder nor a zip / tar / rar / 7z archive: "
                "pass the downloaded archive or the folder it unpacks to"
            )
    except PrepareError:
        raise
    # zipfile raises NotImplementedError for an unknown compression method and RuntimeError
    # for an encrypted member: a damaged (or foreign) archive as far as this converter goes.
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, NotImplementedError,
            RuntimeError) as err:
        raise PrepareError(
            f"cannot unpack '{shown}' ({err}): the download may be incomplete; download it again"
        ) from err


class _Reader:
    """Lists the images of the --archive arguments, opening the archives nested in them."""

    def __init__(self, work: Path, sets: SetChoice | None):
        self.work = work
        self.sets = sets
        self.unpacked = 0

    def read(self, archive: Path) -> list[ReleaseFile]:
        shown = str(archive)
        if archive.is_dir():
            files = self._walk(archive, PurePosixPath(archive.resolve().name), f"{archive}{os.sep}", 0)
        else:
            root = self._unpack(archive, shown)
            files = self._walk(root, PurePosixPath(_archive_stem(archive.name)), f"{shown}:", 0)
        return self.sets.select(files, shown) if self.sets else files

    def _unpack(self, archive: Path, shown: str) -> Path:
        # Extract next to the output (self.work): benchmark archives can be larger than /tmp.
        self.unpacked += 1
        dest = self.work / str(self.unpacked)
        _unpack(archive, dest, shown)
        return dest

    def _walk(self, root: Path, prefix: PurePosixPath, shown_prefix: str, depth: int) -> list[ReleaseFile]:
        files = []
        for path in sorted(root.rglob("*")):
            inside = PurePosixPath(path.relative_to(root).as_posix())
            # macOS archives carry __MACOSX/ folders and '._name' resource forks.
            if any(part.startswith((".", "__MACOSX")) for part in inside.parts) or not path.is_file():
                continue
            shown = f"{shown_prefix}{inside}"
            if is_image_file(path):
                files.append(ReleaseFile(path, prefix / inside, shown))
            elif _is_archive_name(path.name):
                files += self._nested(path, prefix / inside.parent / _archive_stem(path.name), shown, depth + 1)
            elif path.suffix.lower() == ".t7":
                log.warning("ignoring '%s': a Torch7 file, not images (see datasets/README.md, rain800)", shown)
        return files

    def _nested(self, archive: Path, rel: PurePosixPath, shown: str, depth: int) -> list[ReleaseFile]:
        if self.sets and self.sets.excludes(rel.parts):
            log.info("'%s' belongs to another set than %s: left closed", shown, self.sets.wanted)
            return []
        if depth > MAX_NESTING:
            log.warning("'%s' is nested %d archives deep: left closed; extract it yourself", shown, depth)
            return []
        return self._walk(self._unpack(archive, shown), rel, f"{shown}:", depth)


# ---------------------------------------------------------------- understanding the files
@dataclass(frozen=True)
class Entry:
    """One image of a release, as the converter understood it."""

    file: ReleaseFile
    role: str  # "degraded" or "clean"
    scene: str
    part: str | None  # "train" or "test"; None until resolved for releases without parts
    variant: str | None = None  # several degraded versions of one scene (SOTS indoor)
    half: str | None = None  # Rain800: which half of a side-by-side pair this image is


def _skipped(f: ReleaseFile, name: str) -> bool:
    if any(_LAYERS.search(part) for part in [*f.folders, f.rel.stem.lower()]):
        return True
    skipped = _SKIPPED_FOLDERS.get(name)
    return skipped is not None and any(skipped.fullmatch(folder) for folder in f.folders)


def _is_anchor(folder: str) -> bool:
    """A folder naming a set or a part; role folders above it (Rain800's 'rain/') say nothing."""
    return _part_of([folder]) is not None or any(p.fullmatch(folder) for p in _ANCHOR_SETS)


def _folder_role(f: ReleaseFile) -> str | None:
    folders = f.folders
    start = max((i + 1 for i, folder in enumerate(folders) if _is_anchor(folder)), default=0)
    for folder in reversed(folders[start:]):
        if folder in DEGRADED_FOLDERS:
            return "degraded"
        if folder in CLEAN_FOLDERS:
            return "clean"
    return None


def _name_role(stem: str) -> str | None:
    stem = stem.lower()
    if _CLEAN_NAME.fullmatch(stem):
        return "clean"
    return "degraded" if _DEGRADED_NAME.fullmatch(stem) else None


def _role(f: ReleaseFile, names_beside: set[str | None]) -> str | None:
    """``names_beside``: the name roles of the images in the file's folder."""
    own = _name_role(f.rel.stem)
    if {"clean", "degraded"} <= names_beside:
        return own  # rain-12.png beside norain-12.png (PReNet): the names tell them apart
    folder = _folder_role(f)
    if folder is not None or own is not None:
        return folder or own
    # SPA-Data: 000.png beside 000_gt.png in one folder.
    return "degraded" if "clean" in names_beside else None


def _scene_and_variant(stem: str) -> tuple[str, str | None]:
    """'norain-12x2' -> ('0012', None); '1400_3' -> ('1400', '3'); '0001_0.8_0.2' -> ('0001', '0.8_0.2')."""
    core = _ROLE_MARKS.sub("", stem.lower()) or stem.lower()
    number = re.search(r"\d+", core)
    if number is None:
        return core, None
    rest = core[number.end():]
    variant = rest[1:] if rest.startswith("_") and len(rest) > 1 else None
    # Zero-padded so that scenes sort and name files consistently.
    return f"{int(number.group()):04d}", variant


def _part_of(folders: list[str]) -> str | None:
    for folder in reversed(folders):
        if "train" in folder:
            return "train"
        if _TEST_WORD.search(folder) or _TEST_SETS.fullmatch(folder):
            return "test"
    return None


def classify(files: list[ReleaseFile], name: str, rainy_side: str = "right") -> list[Entry]:
    """The degraded and clean images among ``files``, with their scene and part."""
    kept = [f for f in files if not _skipped(f, name)]
    names_in: dict[PurePosixPath, set[str | None]] = defaultdict(set)
    for f in kept:
        names_in[f.rel.parent].add(_name_role(f.rel.stem))
    entries = []
    for f in kept:
        role = _role(f, names_in[f.rel.parent])
        scene, variant = _scene_and_variant(f.rel.stem)
        part = _part_of(f.folders)
        if role is not None:
            entries.append(Entry(f, role, scene, part, variant))
        elif name == "rain800" and part is not None:
            # ID-CGAN's training/ and test_syn/ hold clean|rainy pairs side by side.
            clean_side = "left" if rainy_side == "right" else "right"
            entries.append(Entry(f, "degraded", scene, part, half=rainy_side))
            entries.append(Entry(f, "clean", scene, part, half=clean_side))
    return entries


def _resolve_parts(entries: list[Entry]) -> list[Entry]:
    """A release without train / test folders is one test set; a mixture is ambiguous."""
    unknown = [e for e in entries if e.part is None]
    if not unknown:
        return entries
    if len(unknown) == len(entries):
        return [replace(e, part="test") for e in entries]
    raise PrepareError(
        f"'{unknown[0].file.shown}' lies in no folder or archive named 'train' or 'test' while other "
        "images do, so it cannot be told apart from them: keep the archive's name (e.g. "
        "rain_data_train_Light.zip) or rename it or its folder to say 'train' or 'test'"
    )


# ---------------------------------------------------------------- scenes and counts
@dataclass
class Scene:
    clean: dict[str | None, Entry] = field(default_factory=dict)  # keyed by variant when stored per degraded image
    degraded: dict[str | None, Entry] = field(default_factory=dict)

    def clean_for(self, variant: str | None) -> Entry:
        """The clean image of a degraded version: its own copy, else the scene's one."""
        if variant in self.clean:
            return self.clean[variant]
        return self.clean[None] if None in self.clean else self.clean[min(self.clean)]


def _is_duplicate(kept: Entry, new: Entry) -> bool:
    """Some repackagings hold the same file twice (a copy in a sub-folder); that is harmless."""
    if filecmp.cmp(kept.file.path, new.file.path, shallow=False):
        log.debug("'%s' duplicates '%s'; using the first", new.file.shown, kept.file.shown)
        return True
    raise PrepareError(
        f"two different {new.role} images for {new.part} scene '{new.scene}': '{kept.file.shown}' and "
        f"'{new.file.shown}': remove the one that does not belong to this release"
    )


def _group(entries: list[Entry]) -> dict[tuple[str, str], Scene]:
    scenes: dict[tuple[str, str], Scene] = {}
    for e in entries:
        scene = scenes.setdefault((e.part, e.scene), Scene())
        images = scene.clean if e.role == "clean" else scene.degraded
        if e.variant not in images or not _is_duplicate(images[e.variant], e):
            images[e.variant] = e
    return scenes


def _count_parts(complete: dict[tuple[str, str], Scene]) -> dict[str, Count]:
    counts = {}
    for part in [p for p in ("train", "test") if any(k[0] == p for k in complete)]:
        scenes = [s for k, s in complete.items() if k[0] == part]
        counts[part] = Count(len(scenes), sum(len(s.degraded) for s in scenes))
    return counts


def _folder_names(complete: dict[tuple[str, str], Scene], part: str) -> set[str]:
    return {
        folder for key, scene in complete.items() if key[0] == part
        for e in [*scene.clean.values(), *scene.degraded.values()] for folder in e.file.folders
    }


def _identify(releases: tuple[KnownRelease, ...], part: str, names: set[str], found: Count) -> KnownRelease | None:
    """The release named by the folders, else the only one of the same size."""
    candidates = [r for r in releases if part in r.counts]
    named = [r for r in candidates if any(r.folders.fullmatch(n) for n in names)]
    if named:
        return named[0]
    same_size = [r for r in candidates if r.counts[part] == found]
    return same_size[0] if len(same_size) == 1 else None


def _describe(count: Count) -> str:
    if count.scenes == count.pairs:
        return f"{count.pairs} pairs"
    return f"{count.pairs} pairs of {count.scenes} scenes"


def compare_counts(key: str, complete: dict[tuple[str, str], Scene]) -> dict[str, dict]:
    """Per part: counts found against the known release's counts; warns when they differ."""
    releases = KNOWN_RELEASES[key]
    report = {}
    for part, found in _count_parts(complete).items():
        release = _identify(releases, part, _folder_names(complete, part), found)
        expected = release.counts[part] if release else None
        report[part] = {
            "found": found._asdict(),
            "expected": expected._asdict() if expected else None,
            "release": release.label if release else None,
        }
        known = "; ".join(f"{_describe(r.counts[part])} in {r.label}" for r in releases if part in r.counts)
        if release is None and not known:
            log.info("%s %s: %s found; no published count to compare with", key, part, _describe(found))
        elif release is None:
            log.warning("%s %s: %s found; no known release has that many (%s)", key, part, _describe(found), known)
        elif found != expected:
            log.warning(
                "%s %s: %s found where %s has %s: check that the download is complete and is the "
                "release you meant (datasets/README.md lists them)",
                key, part, _describe(found), release.label, _describe(expected),
            )
        else:
            log.info("%s %s: %s, as in %s", key, part, _describe(found), release.label)
    return report


# ---------------------------------------------------------------- splitting and writing
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


def _train_a_images(scene: Scene, rng: np.random.Generator | None) -> list[Entry]:
    """All degraded versions of a scene, or one drawn with ``rng`` (--one_hazy_per_scene)."""
    versions = [scene.degraded[v] for v in sorted(scene.degraded, key=str)]
    return [versions[rng.integers(len(versions))]] if rng is not None else versions


def _report_balance(n_images: int, n_scenes: int, one_per_scene: bool) -> None:
    if one_per_scene:
        log.info("trainA: one degraded image per scene (%d), drawn with the seed", n_scenes)
    elif n_images > n_scenes:
        log.warning(
            "trainA gets %d degraded images of %d scenes (%.0f per scene) while trainB gets one clean "
            "image per scene: pass --one_hazy_per_scene to keep one per scene",
            n_images, n_scenes, n_images / n_scenes,
        )


def _stem(entry: Entry) -> str:
    return entry.scene if entry.variant is None else f"{entry.scene}_{entry.variant}"


def _image_size(entry: Entry) -> tuple[int, int]:
    try:
        with Image.open(entry.file.path) as img:
            return img.size
    except OSError as err:
        raise PrepareError(
            f"cannot read image '{entry.file.shown}' ({err}): the download may be damaged; download it again"
        ) from err


def _half_box(entry: Entry, width: int, height: int) -> tuple[int, int, int, int]:
    if entry.half is None:
        return 0, 0, width, height
    if width % 2:
        raise PrepareError(
            f"'{entry.file.shown}' is {width} px wide, odd for a side-by-side pair: it is not a Rain800 "
            "training/test_syn image; remove it"
        )
    return (0, 0, width // 2, height) if entry.half == "left" else (width // 2, 0, width, height)


def _size_of(entry: Entry) -> tuple[int, int]:
    """(width, height) of the entry's image, or of its half for side-by-side pairs."""
    box = _half_box(entry, *_image_size(entry))
    return box[2] - box[0], box[3] - box[1]


class _Writer:
    """Copies files unchanged when possible, else decodes, crops and writes a PNG."""

    def __init__(self, root: Path):
        self.root = root
        self.count = dict.fromkeys(SPLIT_DIRS, 0)
        for folder in SPLIT_DIRS:
            (root / folder).mkdir(parents=True)

    def write(self, entry: Entry, folder: str, stem: str, size: tuple[int, int] | None = None) -> None:
        """``size``: centre-crop to this (width, height) after taking the entry's half."""
        width, height = _image_size(entry)
        box = _half_box(entry, width, height)
        crop_w, crop_h = box[2] - box[0], box[3] - box[1]
        if size is not None and size != (crop_w, crop_h):
            if size[0] > crop_w or size[1] > crop_h:
                raise PrepareError(
                    f"'{entry.file.shown}' ({crop_w}x{crop_h}) is smaller than its pair "
                    f"({size[0]}x{size[1]}): the release seems damaged or mixed with another one"
                )
            left, top = box[0] + (crop_w - size[0]) // 2, box[1] + (crop_h - size[1]) // 2
            box = (left, top, left + size[0], top + size[1])
        if box == (0, 0, width, height):
            shutil.copyfile(entry.file.path, self.root / folder / f"{stem}{entry.file.path.suffix.lower()}")
        else:
            try:
                image = load_rgb(entry.file.path).crop(box)
            except ImageReadError as err:
                raise PrepareError(f"cannot read image '{entry.file.shown}' ({err.reason}): download it again") from err
            save_image(np.asarray(image), self.root / folder / f"{stem}.png")
        self.count[folder] += 1


def _publish(staging: Path, out: Path, record: dict) -> None:
    """Move the finished dataset into ``out``; prepare.json, written last, marks it complete."""
    (out / "prepare.json").unlink(missing_ok=True)
    for folder in SPLIT_DIRS:
        shutil.rmtree(out / folder, ignore_errors=True)
        (staging / folder).rename(out / folder)
    with open(staging / "prepare.json", "w") as fh:
        json.dump(record, fh, indent=1)
    os.replace(staging / "prepare.json", out / "prepare.json")


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


def _complete_scenes(entries: list[Entry], name: str, n_files: int) -> tuple[dict[tuple[str, str], Scene], list[str]]:
    scenes = _group(entries)
    complete = {k: s for k, s in scenes.items() if s.clean and s.degraded}
    if not complete:
        raise PrepareError(
            f"found {n_files} images but no degraded/clean pair laid out as {name} is: "
            "see datasets/README.md for the layouts the converter reads"
        )
    incomplete = sorted(f"{k[0]}/{k[1]}" for k in scenes if k not in complete)
    if incomplete:
        log.warning(
            "%d scenes lack their clean or degraded image and are left out (e.g. %s)",
            len(incomplete), ", ".join(incomplete[:3]),
        )
    return complete, incomplete


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
    reader = _Reader(tmp / "extract", _set_choice(name, subset))
    files = [f for archive in archives for f in reader.read(archive)]
    if not files:
        raise PrepareError(
            f"no images in {', '.join(map(str, archives))}: see datasets/README.md for what each release holds"
        )
    entries = _resolve_parts(classify(files, name, rainy_side))
    complete, incomplete = _complete_scenes(entries, name, len(files))
    parts = compare_counts(f"{name}:{subset}" if name == "reside_sots" else name, complete)
    train_a, train_b, test, mode = _split_scenes(complete, seed, test_fraction)
    if not test:
        log.warning("no test pairs found: testA/testB stay empty (pass the test archive too)")

    # A generator of its own, so that --one_hazy_per_scene leaves the split unchanged.
    rng = np.random.default_rng([seed, 1]) if one_hazy_per_scene else None
    train_a_images = {k: _train_a_images(complete[k], rng) for k in train_a}
    _report_balance(sum(map(len, train_a_images.values())), len(train_a), one_hazy_per_scene)

    writer = _Writer(tmp / "staging")
    jobs = [(k, "trainA") for k in train_a] + [(k, "trainB") for k in train_b] + [(k, "test") for k in test]
    for key, role in tqdm(jobs, desc=f"writing {name}", unit="scene", disable=None):
        scene = complete[key]
        if role == "trainA":
            for entry in train_a_images[key]:
                writer.write(entry, "trainA", _stem(entry))
        elif role == "trainB":
            clean = scene.clean_for(None)
            writer.write(clean, "trainB", clean.scene, _size_of(next(iter(scene.degraded.values()))))
        else:
            for entry in scene.degraded.values():
                writer.write(entry, "testA", _stem(entry))
                writer.write(scene.clean_for(entry.variant), "testB", _stem(entry), _size_of(entry))
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
    _publish(tmp / "staging", out, record)
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
