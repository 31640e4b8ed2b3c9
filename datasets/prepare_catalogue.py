"""What datasets/prepare.py knows about the published releases: the benchmarks, the folder
names of the sets a tree may hold, and the counts of each known packaging (datasets/README.md)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

BENCHMARKS = ("rain100l", "rain100h", "rain800", "spa", "reside_sots")
SPLIT_DIRS = ("trainA", "trainB", "testA", "testB")


class PrepareError(RuntimeError):
    """The release cannot be converted; the one-line message names the file and the fix."""


# Folders of a release that hold no pairs to convert.
SKIPPED_FOLDERS = {
    "rain800": re.compile(r".*nature.*"),  # test_nature: real rain without ground truth
    "spa": re.compile(r"real_world.*"),  # the 44 GB training set of patches, not converted
}


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
# Test sets named by their folder: 'Rain100L' holds test images although no word of it says 'test'.
TEST_SETS = _names(r"rain100l|rain100h|test100|test1200|test2800|rain12|rain1400")
# Every folder name that names a set.
ANCHOR_SETS = (*RAIN_SETS.values(), *SOTS_SETS.values())


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
