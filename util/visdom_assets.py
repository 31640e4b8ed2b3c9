"""Install the JavaScript/CSS/font files the visdom dashboard needs, from the npm registry.

visdom 0.2.4 ships without jQuery, React, Plotly, MathJax & co. and downloads them from
several CDNs the first time `python -m visdom.server` starts; offline (or with only the npm
registry reachable) that crashes, and a server started another way shows a blank page.
Every one of those files is published on the npm registry, so this module fetches the
pinned package tarballs (with `npm pack`, or plain HTTPS when npm is not installed), copies
the files to where visdom looks for them (`site-packages/visdom/static/`) and writes
`static/version.built`, the marker that makes visdom skip its own download.

    python -m util.visdom_assets            # install when missing (idempotent)
    python -m util.visdom_assets --check    # exit 1 when missing, install nothing
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.util
import json
import logging
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

logger = logging.getLogger(__name__)

NPM_REGISTRY = "https://registry.npmjs.org"
_MATHJAX = "js/mathjax/2.7.5"
_GLYPHS = "glyphicons-halflings-regular"


@dataclass(frozen=True)
class NpmPackage:
    """One pinned npm package and the files visdom wants from it.

    `files` maps a path inside the package (file or folder) to a path under `static/`.
    """

    name: str
    version: str
    files: tuple[tuple[str, str], ...]

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"


# The versions are the ones visdom 0.2.4's own downloader pins (visdom/server/build.py).
PACKAGES: tuple[NpmPackage, ...] = (
    NpmPackage("jquery", "3.1.1", (("dist/jquery.min.js", "js/jquery.min.js"),)),
    NpmPackage("bootstrap", "3.3.7", (
        ("dist/js/bootstrap.min.js", "js/bootstrap.min.js"),
        ("dist/css/bootstrap.min.css", "css/bootstrap.min.css"),
        *((f"dist/fonts/{_GLYPHS}.{ext}", f"fonts/{_GLYPHS}.{ext}")
          for ext in ("eot", "woff2", "woff", "ttf", "svg")),
        # visdom's downloader stores the svg under its URL fragment too; keep that name.
        (f"dist/fonts/{_GLYPHS}.svg", f"fonts/{_GLYPHS}.svg#glyphicons_halflingsregular"),
    )),
    NpmPackage("react", "16.2.0", (("umd/react.production.min.js", "js/react-react.min.js"),)),
    NpmPackage("react-dom", "16.2.0", (("umd/react-dom.production.min.js", "js/react-dom.min.js"),)),
    NpmPackage("react-modal", "3.1.10", (("dist/react-modal.min.js", "js/react-modal.min.js"),)),
    NpmPackage("plotly.js-dist-min", "2.11.1", (("plotly.min.js", "js/plotly-plotly.min.js"),)),
    NpmPackage("sjcl", "1.0.7", (("sjcl.js", "js/sjcl.js"),)),
    NpmPackage("layout-bin-packer", "1.4.0", (
        ("dist/layout-bin-packer.js", "js/layout_bin_packer.js"),
        ("dist/layout-bin-packer.js.map", "js/layout-bin-packer.js.map"),
    )),
    NpmPackage("d3", "3.5.17", (("d3.min.js", "js/d3.v3.min.js"),)),
    NpmPackage("d3-selection-multi", "1.0.1", (("build/d3-selection-multi.js", "js/d3-selection-multi.v1.js"),)),
    NpmPackage("save-svg-as-png", "1.4.17", (("lib/saveSvgAsPng.js", "js/saveSvgAsPng.js"),)),
    NpmPackage("react-resizable", "1.4.6", (("css/styles.css", "css/react-resizable-styles.css"),)),
    NpmPackage("react-grid-layout", "0.16.3", (("css/styles.css", "css/react-grid-layout-styles.css"),)),
    NpmPackage("classnames", "2.2.5", (("index.js", "fonts/classnames"),)),
    NpmPackage("mathjax", "2.7.5", tuple(
        (part, f"{_MATHJAX}/{part}") for part in ("MathJax.js", "config", "extensions", "jax", "fonts")
    )),
)

# Fetches the tarballs of `packages` into a folder; returns one .tgz path per package spec.
Fetcher = Callable[[tuple[NpmPackage, ...], Path], dict[str, Path]]


class AssetInstallError(RuntimeError):
    """The dashboard assets could not be fetched or installed; the message says what to do."""


def visdom_static_dir() -> Path:
    """`site-packages/visdom/static` of the visdom this interpreter imports (not imported here)."""
    spec = importlib.util.find_spec("visdom")
    if spec is None or spec.origin is None:
        raise AssetInstallError(
            "visdom is not installed in this Python; install it first "
            "(make venv, or pip install --no-build-isolation visdom==0.2.4 'tornado<6.6')")
    return Path(spec.origin).parent / "static"


def _visdom_version(static_dir: Path) -> str:
    # visdom compares version.built with the VERSION file next to its __init__.py.
    return (static_dir.parent / "VERSION").read_text().strip()


def missing_assets(static_dir: Path | None = None) -> list[str]:
    """Paths under `static/` that visdom needs and lacks; empty when the install is complete."""
    static_dir = static_dir or visdom_static_dir()
    missing = [dest for pkg in PACKAGES for _, dest in pkg.files if not (static_dir / dest).exists()]
    marker = static_dir / "version.built"
    if not marker.is_file() or marker.read_text().strip() != _visdom_version(static_dir):
        missing.append("version.built")
    return missing


def _tarball_name(pkg: NpmPackage) -> str:
    return f"{pkg.name}-{pkg.version}.tgz"  # npm pack's name for an unscoped package


def fetch_with_npm(packages: tuple[NpmPackage, ...], dest: Path) -> dict[str, Path]:
    """`npm pack` every package into `dest` (one npm call: about 3 s for all of them)."""
    cmd = ["npm", "pack", "--silent", "--pack-destination", str(dest), *(p.spec for p in packages)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise AssetInstallError(
            f"'npm pack' failed (exit {result.returncode}): {result.stderr.strip()[-2000:]}\n"
            "Check that the npm registry is reachable (npm config get registry).")
    tarballs = {pkg.spec: dest / _tarball_name(pkg) for pkg in packages}
    absent = [str(path) for path in tarballs.values() if not path.is_file()]
    if absent:
        raise AssetInstallError(f"'npm pack' did not produce {absent}; npm printed: {result.stdout.strip()}")
    return tarballs


def _registry_get(url: str) -> bytes:
    # Only the npm registry is ever contacted, whatever tarball URL its JSON names.
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme != "https" or parsed.netloc != urllib.parse.urlparse(NPM_REGISTRY).netloc:
        raise AssetInstallError(f"refusing to download {url}: not on {NPM_REGISTRY}")
    with urllib.request.urlopen(url, timeout=120) as response:
        return response.read()


def _check_integrity(data: bytes, dist: dict, spec: str) -> None:
    integrity = dist.get("integrity", "")
    if integrity.startswith("sha512-"):
        ok = base64.b64encode(hashlib.sha512(data).digest()).decode() == integrity[len("sha512-"):]
    else:
        ok = hashlib.sha1(data).hexdigest() == dist.get("shasum")
    if not ok:
        raise AssetInstallError(f"the tarball of {spec} does not match the registry's checksum; retry later")


def fetch_with_https(packages: tuple[NpmPackage, ...], dest: Path) -> dict[str, Path]:
    """Download the tarballs named in the registry's JSON and check their checksums."""
    tarballs = {}
    for pkg in packages:
        meta = json.loads(_registry_get(f"{NPM_REGISTRY}/{pkg.name}/{pkg.version}"))
        data = _registry_get(meta["dist"]["tarball"])
        _check_integrity(data, meta["dist"], pkg.spec)
        path = dest / _tarball_name(pkg)
        path.write_bytes(data)
        tarballs[pkg.spec] = path
    return tarballs


def default_fetcher() -> Fetcher:
    if shutil.which("npm"):
        return fetch_with_npm
    logger.info("npm not found; downloading the tarballs from %s over HTTPS", NPM_REGISTRY)
    return fetch_with_https


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst, dirs_exist_ok=True)
    else:
        shutil.copyfile(src, dst)


def install_assets(static_dir: Path | None = None, fetcher: Fetcher | None = None,
                   force: bool = False) -> bool:
    """Install the missing dashboard assets; returns False when nothing was missing.

    The version marker is written last, so an interrupted install is redone next time.
    """
    static_dir = static_dir or visdom_static_dir()
    if not force and not missing_assets(static_dir):
        return False
    fetcher = fetcher or default_fetcher()
    logger.info("installing visdom's dashboard assets into %s", static_dir)
    with tempfile.TemporaryDirectory(prefix="visdom_assets_") as tmp:
        tmp_dir = Path(tmp)
        tarballs = fetcher(PACKAGES, tmp_dir)
        for pkg in PACKAGES:
            unpacked = tmp_dir / pkg.name
            with tarfile.open(tarballs[pkg.spec]) as tar:
                # 'data' filter: no absolute paths, links out of the folder or device files.
                tar.extractall(unpacked, filter="data")
            # npm tarballs hold one top folder, usually 'package/'.
            (root,) = [p for p in unpacked.iterdir() if p.is_dir()]
            for inside, dest in pkg.files:
                if not (root / inside).exists():
                    raise AssetInstallError(f"{pkg.spec} has no '{inside}'; "
                                            "the pinned version may have been unpublished")
                _copy(root / inside, static_dir / dest)
    (static_dir / "version.built").write_text(_visdom_version(static_dir))
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only report; exit 1 when assets are missing")
    parser.add_argument("--force", action="store_true", help="reinstall even when everything is present")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        if args.check:
            missing = missing_assets()
            if missing:
                logger.info("visdom assets missing (%d), e.g. %s", len(missing), ", ".join(missing[:3]))
                return 1
            logger.info("visdom assets present in %s", visdom_static_dir())
            return 0
        if install_assets(force=args.force):
            logger.info("visdom assets installed")
        else:
            logger.info("visdom assets already present in %s", visdom_static_dir())
        return 0
    except (AssetInstallError, OSError) as err:
        logger.error("%s", err)
        return 1


if __name__ == "__main__":
    sys.exit(main())
