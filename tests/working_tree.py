"""The working tree's user folders, which tests must leave alone: the files git tracks there,
and a snapshot of everything there to prove that a test session changed nothing.

`checkpoints/`, `results/`, `datasets/` and `pretrained/` hold what a user made (a demo run,
built data, an exported model); tests read only the tracked files and write under tmp_path.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
USER_FOLDERS = ("checkpoints", "results", "datasets", "pretrained")
# Python's own bytecode cache is written on import, by any test; it is not a test's output.
IGNORED_DIRS = {"__pycache__"}

Snapshot = dict[str, tuple[int, int]]


def tracked_files(pattern: str, root: Path = REPO) -> list[Path]:
    """The files git tracks under `root` that match the pathspec `pattern` (e.g.
    'pretrained/*.pt', '*.md'), sorted; a copy without git history falls back to globbing."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--", pattern], cwd=root, capture_output=True,
                                check=True, timeout=60).stdout
    except (OSError, subprocess.CalledProcessError):
        return sorted(p for p in root.glob(pattern) if p.is_file())
    return sorted(root / name for name in listed.decode().split("\0") if name)


def snapshot(root: Path = REPO) -> Snapshot:
    """(size, mtime in ns) of every file under the user folders of `root`, by relative path."""
    files: Snapshot = {}
    for folder in USER_FOLDERS:
        for dirpath, dirnames, filenames in os.walk(root / folder):
            dirnames[:] = [d for d in dirnames if d not in IGNORED_DIRS]
            for name in filenames:
                path = Path(dirpath, name)
                try:
                    stat = path.lstat()
                except FileNotFoundError:  # removed while walking
                    continue
                files[path.relative_to(root).as_posix()] = (stat.st_size, stat.st_mtime_ns)
    return files


def changes(before: Snapshot, after: Snapshot) -> list[str]:
    """'created PATH', 'changed PATH' and 'deleted PATH' lines, sorted by path."""
    lines = [f"created {p}" for p in after.keys() - before.keys()]
    lines += [f"deleted {p}" for p in before.keys() - after.keys()]
    lines += [f"changed {p}" for p in before.keys() & after.keys() if before[p] != after[p]]
    return sorted(lines, key=lambda line: line.split(" ", 1)[1])
