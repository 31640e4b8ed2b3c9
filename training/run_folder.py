"""The run folder checkpoints/<name>/: one training at a time, and no run replaced by accident."""
from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from util.run_lock import RunLock, RunLockedError

logger = logging.getLogger(__name__)

# What a training saves: 'latest' and one file per saved epoch. Other .pt files in the run
# folder (a user's own copy, my_best.pt) are neither a reason to refuse nor deleted.
TRAINING_CHECKPOINT = re.compile(r"(latest|\d+)\.pt")
# util.atomic_file's temporary files: '<name>.<8 random characters of tempfile>.tmp'.
TEMPORARY = re.compile(r"(?P<target>.+)\.[a-z0-9_]{8}\.tmp")
# The files a training writes in the run folder itself; web/ (the HTML page and its
# images) is the training's alone. test.py's test_opt.txt is not here: a test.py may be
# writing it at this moment.
TRAINING_FILE = re.compile(r"(latest|\d+)\.pt|train_opt\.txt")


class RunFolderError(RuntimeError):
    """This command may not train in the run folder; the message names the folder and the fix."""


@contextmanager
def claim_run_folder(run_dir: Path, continue_train: bool, overwrite_run: bool) -> Iterator[None]:
    """Hold the run folder's lock for the block, once this command may train there.

    Without --continue_train a folder holding checkpoints is refused, unless --overwrite_run
    asks to start that run over: its checkpoints are then deleted, so that none of the old
    run's epochs is mistaken for the new run's. A folder this call created is removed again
    when the block fails and leaves nothing in it.
    """
    created = not run_dir.exists()
    lock = RunLock(run_dir)
    try:
        lock.acquire()
    except RunLockedError as err:
        raise RunFolderError(str(err)) from err
    except OSError as err:
        raise RunFolderError(f"cannot write to '{run_dir}' ({err.strerror or err}): check --checkpoints_dir "
                             "(a writable folder) and --name") from err
    try:
        remove_leftover_temporaries(run_dir)
        if not continue_train:
            start_afresh(run_dir, overwrite_run)
        yield
    except BaseException:
        lock.release()
        if created:
            remove_if_empty(run_dir)
        raise
    lock.release()


def training_checkpoints(run_dir: Path) -> list[Path]:
    """The checkpoints a training wrote in `run_dir` ('latest.pt', '<epoch>.pt')."""
    return sorted(p for p in run_dir.glob("*.pt") if TRAINING_CHECKPOINT.fullmatch(p.name))


def leftover_temporaries(run_dir: Path) -> list[Path]:
    """The temporary files of saves that a kill -9 interrupted: of the training's own files in
    `run_dir` and of anything under its web/ folder. A user's files never match."""
    found = [p for p in run_dir.glob("*.tmp")
             if (m := TEMPORARY.fullmatch(p.name)) and TRAINING_FILE.fullmatch(m.group("target"))]
    found += [p for p in (run_dir / "web").rglob("*.tmp") if TEMPORARY.fullmatch(p.name)]
    return sorted(p for p in found if p.is_file() and not p.is_symlink())


def remove_leftover_temporaries(run_dir: Path) -> None:
    """Remove what `leftover_temporaries` finds (call it with the run's lock held: no save is
    under way then) and say so in one line."""
    leftovers = leftover_temporaries(run_dir)
    for path in leftovers:
        path.unlink(missing_ok=True)
    if leftovers:
        names = ", ".join(p.name for p in leftovers[:3]) + (", ..." if len(leftovers) > 3 else "")
        logger.info("removed %d temporary file(s) of an interrupted save from %s (%s)", len(leftovers), run_dir,
                    names)


def remove_if_empty(run_dir: Path) -> None:
    """Remove `run_dir` when it holds nothing but empty folders (a start that failed early)."""
    if any(p.is_file() or p.is_symlink() for p in run_dir.rglob("*")):
        return
    for folder in sorted(run_dir.rglob("*"), reverse=True):
        folder.rmdir()
    run_dir.rmdir()
    logger.debug("removed the empty run folder %s", run_dir)


def start_afresh(run_dir: Path, overwrite_run: bool) -> None:
    saved = training_checkpoints(run_dir)
    if not saved:
        return
    names = ", ".join(p.name for p in saved[:4]) + (", ..." if len(saved) > 4 else "")
    if not overwrite_run:
        raise RunFolderError(f"'{run_dir}' already holds a trained run ({names}): resume it with --continue_train, "
                             "start it over with --overwrite_run (deletes those checkpoints) or choose another --name")
    for path in saved:
        path.unlink()
    logger.warning("--overwrite_run: deleted the earlier run's checkpoints in %s (%s)", run_dir, names)
