"""Understanding the files of a release for datasets/prepare.py: which images are degraded or
clean, their scene and part (train / test), the scenes that have both, and their counts
against the catalogue's."""
from __future__ import annotations

import filecmp
import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath

from datasets.prepare_catalogue import (ANCHOR_SETS, KNOWN_RELEASES, SKIPPED_FOLDERS, TEST_SETS, Count, KnownRelease,
                                       PrepareError)
from datasets.prepare_readers import ReleaseFile

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- names that tell roles and parts
DEGRADED_FOLDERS = {"rain", "rainy", "input", "hazy", "haze", "rainy_image"}
CLEAN_FOLDERS = {"norain", "gt", "target", "clean", "clear", "groundtruth", "ground_truth"}
# JORDER and PReNet also ship rain-streak layers, rain regions and masks: not rainy images.
_LAYERS = re.compile(r"streak|region|mask")
_CLEAN_NAME = re.compile(r"no[-_]?rain.*|.*?[-_]?(gt|clean|target)")
_DEGRADED_NAME = re.compile(r"rainy?([-_\d].*)?")
_ROLE_MARKS = re.compile(r"^(no[-_]?rain|rainy?)[-_]?|[-_]?(gt|clean|target)$")
# 'test' starting a word (Test100, real_test_1000, SPA-test, not 'latest'); 'train' anywhere (RainTrainL).
_TEST_WORD = re.compile(r"(?:^|[^a-z])test")


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
    skipped = SKIPPED_FOLDERS.get(name)
    return skipped is not None and any(skipped.fullmatch(folder) for folder in f.folders)


def _is_anchor(folder: str) -> bool:
    """A folder naming a set or a part; role folders above it (Rain800's 'rain/') say nothing."""
    return _part_of([folder]) is not None or any(p.fullmatch(folder) for p in ANCHOR_SETS)


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
        if _TEST_WORD.search(folder) or TEST_SETS.fullmatch(folder):
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


def resolve_parts(entries: list[Entry]) -> list[Entry]:
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


def complete_scenes(entries: list[Entry], name: str, n_files: int) -> tuple[dict[tuple[str, str], Scene], list[str]]:
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

