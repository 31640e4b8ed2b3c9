"""One process at a time in a run folder: a lock file naming its owner's PID and host.

The file is also `flock`ed while held, so a lock whose owner died (kill -9, power cut) is
free at once; what the file says about that owner is kept only to name it. Two trainings of
one run would otherwise write the same checkpoints and interleave the loss log.
"""
from __future__ import annotations

import errno
import fcntl
import logging
import os
import socket
from pathlib import Path

logger = logging.getLogger(__name__)

LOCK_NAME = "train.lock"


class RunLockedError(RuntimeError):
    """Another live process holds the lock."""


class RunLock:
    """`with RunLock(folder):` holds `<folder>/train.lock` for the block (created if missing).

    `lock_name`, `holder` and `clash` fit the refusal to another kind of folder (test.py's
    page folder): the lock file's name, who to wait for, and what two owners would do."""

    def __init__(self, folder: str | os.PathLike, lock_name: str = LOCK_NAME, holder: str = "that training",
                 clash: str = "two trainings of one run would overwrite each other's checkpoints"):
        self.path = Path(folder) / lock_name
        self.holder, self.clash = holder, clash
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock; raises `RunLockedError` naming the owner when a live process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                os.close(fd)
                if err.errno not in (errno.EAGAIN, errno.EACCES):  # a file system without locks
                    logger.warning("cannot lock %s (%s): make sure no other process uses %s",
                                   self.path, err.strerror, self.path.parent)
                    return
                raise RunLockedError(f"'{self.path.parent}' is in use by {self._owner() or 'another process'} "
                                     f"(lock file {self.path}): wait for {self.holder} to end or stop it; "
                                     f"{self.clash}") from err
            # The owner before us may have removed the file between our open and our flock:
            # then we hold a lock on a file nobody else will see. Try again on the new file.
            if os.path.exists(self.path) and os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                break
            os.close(fd)
        stale = self._owner()
        if stale:
            logger.warning("took over the stale lock %s left by %s, which is no longer running", self.path, stale)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)  # before unlocking: nobody can take a file about to vanish
        os.close(self._fd)
        self._fd = None

    def _owner(self) -> str:
        """'PID 123 on host' as the lock file says, or '' when it says nothing."""
        try:
            pid, host = self.path.read_text().split()
        except (OSError, ValueError):
            return ""
        return f"PID {pid} on {host}"
