"""Files that appear whole or not at all: checkpoints, restored images, HTML pages.

Each is written to a temporary file beside its target and renamed over it, so a reader (a
browser, a resumed run) and a crash at any moment see either the old file or the new one.
The file gets the permissions an ordinary write would give it (0666 less the umask), and a
full disk is reported in one line naming the device and the file, with nothing left behind.
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

# Errors that mean "the device has no room for this file".
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class DiskFullError(OSError):
    """No space left on the device (or quota) while writing a file; the partial file is removed."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        mount = mount_point(self.path)
        try:
            free = f" ({shutil.disk_usage(mount).free / 2**20:.0f} MiB free)"
        except OSError:
            free = ""
        super().__init__(errno.ENOSPC, f"no space left on {mount} while writing '{self.path}'{free}: "
                                       "the partial file was removed; free some space or write elsewhere")

    def __str__(self) -> str:
        return self.strerror


def mount_point(path: Path) -> Path:
    """The mount point of the file system that holds `path` (or would hold it)."""
    path = path.resolve()
    while not path.exists() or not os.path.ismount(path):
        path = path.parent
    return path


def no_space_left(err: BaseException) -> bool:
    """True when `err`, or an error it was raised from, is ENOSPC / EDQUOT.

    torch.save turns the OSError of a failed write into a RuntimeError about its zip writer;
    the OSError survives as its context.
    """
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in _NO_SPACE:
            return True
        err = err.__cause__ or err.__context__
    return False


def _umask() -> int:
    """The process's umask, read without changing it where Linux allows (no window for threads)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", durable: bool = False) -> Iterator[IO]:
    """Open a temporary file to write `path` through; it replaces `path` when the block ends.

    `mode` is "wb" or "w" (UTF-8 text). `durable` also fsyncs the file and its folder, so the
    new file survives a power cut (checkpoints). On any error the temporary file is removed
    and `path` is untouched; a full disk raises `DiskFullError`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as fh:
            os.fchmod(fh.fileno(), 0o666 & ~_umask())  # mkstemp creates 0600
            yield fh
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if no_space_left(err):
            raise DiskFullError(path) from err
        raise
    if durable:
        _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
