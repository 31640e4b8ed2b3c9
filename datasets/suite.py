"""A suite of synthetic datasets per task: every condition a recipe is measured on, in one folder.

    python -m datasets.suite --task rain --out datasets/suite_rain [--only NAME] [--seed 0]
    python -m datasets.suite --task haze --out datasets/suite_haze

Each condition is a dataset root of its own (``OUT/<condition>/``: trainA, trainB, testA,
testB, meta.json), built by ``datasets.make_synthetic.build_dataset``; ``OUT/suite.json`` lists
the conditions, how each was built (the arguments), the seed, the photo catalogues and which
conditions are held out from tuning (recipes are chosen on the others and only reported on
these). ``scripts/benchmark_suite.py`` runs a recipe over a suite.

Rain: ``heavy`` and ``light`` are the embedded varied_heavy / varied_light sets; ``renderer2``
the second rain renderer on the embedded photographs; ``small`` the second renderer on the
suite's own photographs (datasets/photos.py ``SUITE_PHOTOS``), at most 51 crops per domain of
256 px, 10 test pairs from 5 photographs no training crop comes from. Haze: ``haze`` (the
embedded haze set), ``haze_small`` (the default haze renderer on the suite's photographs, at most
60 crops per domain of 256 px) and ``haze_renderer2`` (the second haze renderer on the embedded
photographs). Held out: ``renderer2`` and ``haze_renderer2`` (``small`` was too, until the
recipe of 2026-12-06 was tuned on it).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datasets.make_synthetic import EMBEDDED, SUITE, build_dataset
from datasets.photos import PhotoFetchError
from util.atomic_file import atomic_write

log = logging.getLogger(__name__)

SUITE_FILE = "suite.json"
TASKS = ("rain", "haze")
# How the test images are scored per task (util.metrics channels).
CHANNELS = {"rain": "y", "haze": "rgb"}
PHOTO_SOURCES = {
    EMBEDDED: "datasets/photos.py PHOTOS: 35 photographs (scikit-image and four Debian packages), 8 held out "
              "for testing; authors and licences in datasets/README.md",
    SUITE: "datasets/photos.py SUITE_PHOTOS: 23 other photographs (tuxpaint-data, puzzle-jigsaw, python3-sklearn, "
           "python-matplotlib-data), 5 held out for testing; authors and licences in datasets/README.md",
}


@dataclass(frozen=True)
class Condition:
    """One dataset of a suite: build_dataset's arguments, and whether recipes may be tuned on it."""

    name: str
    task: str
    held_out: bool
    description: str
    build: dict = field(default_factory=dict)


_SMALL = {"source": SUITE, "split": "photos", "size": 256, "test_size": 256, "crops_per_image": 8,
          "test_per_image": 2}
CONDITIONS = (
    Condition("heavy", "rain", False, "embedded varied_heavy rain (make_synthetic's layered rain)",
              {"kind": "rain", "preset": "varied_heavy", "source": EMBEDDED, "split": "photos", "size": 96,
               "test_per_image": 4}),
    Condition("light", "rain", False, "embedded varied_light rain",
              {"kind": "rain", "preset": "varied_light", "source": EMBEDDED, "split": "photos", "size": 96,
               "test_per_image": 4}),
    Condition("renderer2", "rain", True, "the second rain renderer (datasets/rain_renderer2.py) on the embedded "
              "photographs", {"kind": "rain", "renderer": "renderer2", "source": EMBEDDED, "split": "photos",
                              "size": 96, "test_per_image": 4}),
    # Held out until 2026-12-06, when the pseudo recipe's faults were found and its levers measured on it.
    Condition("small", "rain", False, "the second rain renderer on the suite's photographs: at most 51 crops per "
              "domain of 256 px, 10 test pairs from 5 other photographs",
              {"kind": "rain", "renderer": "renderer2", "max_per_domain": 51, **_SMALL}),
    Condition("haze", "haze", False, "embedded haze (make_synthetic's scattering model, grey airlight)",
              {"kind": "haze", "source": EMBEDDED, "split": "photos"}),
    Condition("haze_small", "haze", False, "make_synthetic's haze on the suite's photographs: at most 60 crops per "
              "domain of 256 px, 10 test pairs from 5 other photographs",
              {"kind": "haze", "max_per_domain": 60, **_SMALL}),
    Condition("haze_renderer2", "haze", True, "the second haze renderer (datasets/haze_renderer2.py: tinted "
              "airlight, depth from the scene, patchy haze, sensor noise) on the embedded photographs",
              {"kind": "haze", "renderer": "renderer2", "source": EMBEDDED, "split": "photos"}),
)


def conditions_of(task: str) -> list[Condition]:
    """The conditions of `task` ('rain' or 'haze'), in table order."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {TASKS}")
    return [c for c in CONDITIONS if c.task == task]


def build_suite(task: str, out_dir: str | Path, only: str | None = None, seed: int = 0, overwrite: bool = False,
                overrides: dict | None = None) -> dict:
    """Build the conditions of `task` (or only the one named `only`) under `out_dir`; write suite.json.

    `overrides` replaces build_dataset arguments of every condition (tests use tiny sizes and
    their own photo folders: {"source": ...} or {"sources": {"embedded": DIR, "suite": DIR}}).
    Returns the suite.json content.
    """
    chosen = conditions_of(task)
    names = [c.name for c in chosen]
    if only is not None and only not in names:
        raise ValueError(f"--only {only!r} is not a {task} condition; choose one of {names}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    overrides = dict(overrides or {})
    sources = overrides.pop("sources", {})
    previous = read_suite(out) if (out / SUITE_FILE).is_file() else {}
    built = {c["name"]: c for c in previous.get("conditions", []) if c.get("built")}
    entries = []
    for condition in chosen:
        arguments = {**condition.build, **overrides}
        arguments["source"] = str(sources.get(arguments["source"], arguments["source"]))
        entry = {"name": condition.name, "held_out": condition.held_out, "description": condition.description,
                 "dataroot": condition.name, "build": arguments, "channel": CHANNELS[task]}
        if only in (None, condition.name):
            started = time.perf_counter()
            meta = build_dataset(out / condition.name, seed=seed, overwrite=overwrite, **arguments)
            entry.update(built=True, seconds=round(time.perf_counter() - started, 1), trainA=len(meta["trainA"]),
                         trainB=len(meta["trainB"]), test=len(meta["test"]), test_photos=meta["test_photos"])
            log.info("%s: %d + %d training crops, %d test pairs in %.1f s", condition.name, entry["trainA"],
                     entry["trainB"], entry["test"], entry["seconds"])
        elif condition.name in built:  # built by an earlier --only run: keep what it recorded
            entry = {**built[condition.name], **{k: v for k, v in entry.items() if k != "build"}}
        else:
            entry["built"] = False
        entries.append(entry)
    suite = {"task": task, "seed": seed, "channel": CHANNELS[task], "photo_sources": PHOTO_SOURCES,
             "held_out": [c.name for c in chosen if c.held_out],
             "tuning": "choose recipes on the conditions that are not held out; report the held-out ones only",
             "conditions": entries}
    with atomic_write(out / SUITE_FILE, "w") as fh:
        json.dump(suite, fh, indent=1)
    return suite


def read_suite(folder: str | Path) -> dict:
    """suite.json of a suite folder; ValueError naming the file when it is missing or unreadable."""
    path = Path(folder) / SUITE_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read '{path}' ({err}); build the suite with python -m datasets.suite") from err


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build every condition of a rain or haze suite.")
    parser.add_argument("--task", choices=TASKS, required=True)
    parser.add_argument("--out", required=True, help="suite folder: one dataset root per condition, suite.json")
    parser.add_argument("--only", default=None, help="build only this condition (the others keep their state)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace conditions already built in --out")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(levelname)s: %(message)s", level=logging.INFO)
    try:
        build_suite(args.task, args.out, args.only, args.seed, args.overwrite)
    except (FileExistsError, FileNotFoundError, ValueError, PhotoFetchError) as err:
        log.error("%s", err)
        return 2
    except OSError as err:
        log.error("cannot write the suite: %s", err)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
