"""test.py's page folder (<results_dir>/<name>/test_<label>/): who may write there, and what a run may remove.

A run replaces what an earlier run wrote, and only that: each run lists the files it writes
in the folder's manifest (`MANIFEST_NAME`, one JSON line per file: its path and size), and
the next run removes the listed files that still have that size. Anything else (a user's own
file in images/, a results folder of an older version without a manifest) stays, and a run
that would overwrite such a file is refused. Inputs and ground truth inside the folder are
refused before anything is touched, and one run at a time holds the folder's lock.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from util.run_lock import RunLock, RunLockedError

logger = logging.getLogger("test")

# What a run writes in its page folder: these folders and files, each listed in the manifest.
OUTPUT_FOLDERS = ("images", "inputs", "gt")
OUTPUT_FILES = ("index.html", "metrics.txt", "metrics.csv", "quality.csv", "skipped.txt")
MANIFEST_NAME = "written_by_test.jsonl"
LOCK_NAME = "test.lock"
# Files kept because no run wrote them: at most this many named in the log line.
NAMED_KEPT = 5


class PageFolderError(RuntimeError):
    """The run may not write its page folder; the message names the folder and what to do."""


def lock_page_folder(page_dir: Path) -> RunLock:
    """Hold `page_dir`'s lock (release it with `.release()`); raises `PageFolderError` naming
    the PID and host of a live test.py that holds it. A lock left by a dead process is free.

    Locking rather than writing each run into a temporary folder and swapping it in: a swap
    replaces the whole folder, a user's files in it included, and two runs would each spend
    their time to leave one result; a refusal says so at once and touches nothing."""
    lock = RunLock(page_dir, lock_name=LOCK_NAME, holder="that test.py",
                   clash="two runs into one results folder would mix their images and scores")
    try:
        lock.acquire()
    except RunLockedError as err:
        raise PageFolderError(str(err)) from err
    return lock


def replaced_areas(page_dir: Path) -> list[Path]:
    """The real folders a run replaces: the page folder and its output folders (any of which
    may be a link to somewhere else)."""
    areas = [page_dir, *(page_dir / name for name in OUTPUT_FOLDERS)]
    return sorted({Path(os.path.realpath(area)) for area in areas})


def check_inputs_outside(page_dir: Path, inputs: Iterable[tuple[str, str | os.PathLike]]) -> None:
    """Refuse (PageFolderError) when an input, (label, path) such as ('--dataroot', DIR), or
    where its links lead, lies inside the page folder this run would replace."""
    areas = replaced_areas(page_dir)
    for label, path in inputs:
        real = Path(os.path.realpath(path))
        if any(real == area or real.is_relative_to(area) for area in areas):
            leads = "" if real == Path(os.path.abspath(path)) else f" (which leads to '{real}')"
            raise PageFolderError(f"{label} '{path}'{leads} lies inside '{page_dir}', the results folder this run "
                                  "would replace: copy the images elsewhere or pick another --results_dir")


def read_manifest(page_dir: Path) -> dict[str, int]:
    """{relative path: size} of the files earlier runs wrote in `page_dir` ({} without a
    manifest). A line that is no record (a torn last line) or names anything outside the
    output folders and files is ignored."""
    try:
        lines = (page_dir / MANIFEST_NAME).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return {}
    written = {}
    for line in lines:
        try:
            record = json.loads(line)
            rel, size = record["path"], record["size"]
        except (ValueError, TypeError, KeyError):
            continue
        if isinstance(rel, str) and isinstance(size, int) and is_output_path(rel):
            written[rel] = size
    return written


def is_output_path(rel: str) -> bool:
    """Whether `rel` names one of the files a run writes (no '..', nothing absolute)."""
    parts = Path(rel).parts
    if not parts or Path(rel).is_absolute() or ".." in parts:
        return False
    return (len(parts) == 1 and parts[0] in OUTPUT_FILES) or (len(parts) > 1 and parts[0] in OUTPUT_FOLDERS)


def remove_earlier_outputs(page_dir: Path) -> set[str]:
    """Remove what earlier runs wrote in `page_dir` (as their manifest lists it, where the file
    still has its recorded size) and the output folders this leaves empty; returns the
    relative paths of the files kept because no run wrote them, mentioned once in the log."""
    removed = 0
    for rel, size in read_manifest(page_dir).items():
        path = page_dir / rel
        if path.is_symlink() or not path.is_file() or path.stat().st_size != size:
            continue
        path.unlink()
        removed += 1
        remove_empty_parents(path.parent, page_dir)
    if removed:
        logger.info("replaced the results of an earlier run in %s", page_dir)
    kept = files_not_written(page_dir)
    if kept:
        named = ", ".join(sorted(kept)[:NAMED_KEPT]) + (", ..." if len(kept) > NAMED_KEPT else "")
        logger.info("kept %d files in %s that no run of test.py wrote (%s): test.py removes only what it wrote",
                    len(kept), page_dir, named)
    return kept


def remove_empty_parents(folder: Path, page_dir: Path) -> None:
    """Remove `folder` and its parents below `page_dir` while they are empty."""
    while folder != page_dir and page_dir in folder.parents:
        try:
            folder.rmdir()
        except OSError:  # not empty (a user's file), or gone
            return
        folder = folder.parent


def files_not_written(page_dir: Path) -> set[str]:
    """The relative paths of the files at output places of `page_dir` (after the earlier
    outputs are removed, so none of them was written by a run)."""
    found = {name for name in OUTPUT_FILES if os.path.lexists(page_dir / name)}
    for name in OUTPUT_FOLDERS:
        top = page_dir / name
        if top.is_symlink() or (top.exists() and not top.is_dir()):
            found.add(name)
            continue
        for root, _dirs, files in os.walk(top):
            found.update(os.path.relpath(os.path.join(root, f), page_dir) for f in files)
    return found


def check_nothing_overwritten(page_dir: Path, kept: set[str], planned: Iterable[str]) -> None:
    """Refuse (PageFolderError) when this run would write over a file no run wrote."""
    in_the_way = sorted(kept.intersection(planned))
    if in_the_way:
        named = ", ".join(in_the_way[:NAMED_KEPT]) + (", ..." if len(in_the_way) > NAMED_KEPT else "")
        raise PageFolderError(f"'{page_dir}' holds {len(in_the_way)} files that no run of test.py wrote and this run "
                              f"would overwrite ({named}): move them elsewhere or pick another --results_dir")


class Manifest:
    """The manifest of this run: `record(rel)` after each file it writes (one line, flushed, so
    a run stopped midway still lists what it wrote). Opening it forgets the earlier runs' list
    (call it once their files are removed); the file is created with the first record, so a
    run that writes nothing leaves nothing."""

    def __init__(self, page_dir: Path):
        self.page_dir = page_dir
        self.recorded: set[str] = set()
        (page_dir / MANIFEST_NAME).unlink(missing_ok=True)
        self._fh: TextIO | None = None

    def record(self, rel: str) -> None:
        if rel in self.recorded:
            return
        size = (self.page_dir / rel).stat().st_size
        if self._fh is None:
            self._fh = open(self.page_dir / MANIFEST_NAME, "w", encoding="utf-8")
        # ensure_ascii keeps a file name that is not UTF-8 (surrogate escapes) on one readable line.
        self._fh.write(json.dumps({"path": rel, "size": size}) + "\n")
        self._fh.flush()
        self.recorded.add(rel)

    def record_existing(self, names: Iterable[str]) -> None:
        """Record those of `names` that exist (the run's files written without a call per file)."""
        for rel in names:
            if (self.page_dir / rel).is_file():
                self.record(rel)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
