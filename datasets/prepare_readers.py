"""Reading the --archive arguments of datasets/prepare.py: folders, zip and tar archives (rar
and 7z through a tool on PATH), archives nested in them, and only the folders of the requested set."""
from __future__ import annotations

import logging
import lzma
import os
import re
import shutil
import subprocess
import tarfile
import zipfile
import zlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from datasets.prepare_catalogue import RAIN_SETS, SOTS_SETS, PrepareError
from util.image_io import is_image_file

log = logging.getLogger(__name__)

MAX_NESTING = 3  # archives inside archives inside archives; deeper ones are left closed
# Formats Python cannot open: (name, tools that extract them, what to run by hand).
_TOOL_ARCHIVES = {
    ".rar": ("RAR", ("unrar", "7z", "7zz", "bsdtar"), "`unrar x {name}` or `7z x {name}`"),
    ".7z": ("7z", ("7z", "7za", "7zz", "bsdtar"), "`7z x {name}`"),
}
# What tarfile's "data" filter refuses to extract, in words.
_UNSAFE_MEMBERS = (
    (tarfile.AbsolutePathError, "an absolute path"),
    (tarfile.OutsideDestinationError, "a path leading outside the folder it is unpacked into"),
    (tarfile.AbsoluteLinkError, "a link to an absolute path"),
    (tarfile.LinkOutsideDestinationError, "a link leading outside the folder it is unpacked into"),
    (tarfile.SpecialFileError, "a device or pipe"),
)
# JORDER's test archives are tarballs named rain_data_test_*.gz.
_ARCHIVE_SUFFIXES = (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tbz2", ".txz", ".gz", ".tar", ".zip", ".rar", ".7z")


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


def set_choice(name: str, subset: str) -> SetChoice | None:
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
    except tarfile.FilterError as err:  # a TarError, but no damage: the filter refused a member
        reason = next((text for refused, text in _UNSAFE_MEMBERS if isinstance(err, refused)), "refused by tarfile")
        raise PrepareError(
            f"refused to unpack '{shown}': its member '{err.tarinfo.name}' is unsafe ({reason}); "
            "no benchmark release holds such a member: check where the archive comes from"
        ) from err
    # zipfile raises NotImplementedError for an unknown compression method and RuntimeError
    # for an encrypted member: a damaged (or foreign) archive as far as this converter goes.
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, NotImplementedError,
            RuntimeError) as err:
        raise PrepareError(
            f"cannot unpack '{shown}' ({err}): the download may be incomplete; download it again"
        ) from err


class Reader:
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

