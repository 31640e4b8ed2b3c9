"""The clean photographs behind the synthetic datasets: two disjoint catalogues.

    python -m datasets.photos --out datasets/photos      # fetch once (about 55 MB of packages)
    python -m datasets.photos --catalogue suite          # the second one, into datasets/photos_suite

``PHOTOS`` (35 photos, 8 held out for testing) is behind the embedded sets; ``SUITE_PHOTOS``
(23 other photos, 5 held out) behind the held-out conditions of datasets/suite.py: tuxpaint-data's
template photographs, puzzle-jigsaw's two Pexels photographs, scikit-learn's two sample images and
matplotlib's portrait of Grace Hopper, the last two through their Debian packages.

Sources, all installable offline from a package registry (no web download):
- scikit-image's bundled photographs (5), in the Python environment already;
- four Debian packages (30), fetched with ``apt-get download`` and unpacked with ``dpkg-deb``
  (no root, nothing installed): lomiri-wallpapers-16.04 and -20.04 (Ubuntu community
  wallpaper-contest photographs), palapeli-data (KDE's jigsaw-puzzle photographs) and
  lxqt-themes (LXQt's wallpapers; its drawings and logos are left out).
Every photo's author and licence are in ``PHOTOS`` (and in datasets/README.md), taken from the
packages' copyright files and metadata. Reserved for the project's independent evaluation
and never used here: mate-backgrounds, plasma-workspace-wallpapers, gnome-backgrounds.

The folder written holds one RGB PNG per photo (longest side at most ``max_side``) and
``photos.json`` (source, author, licence, role). Test photos are whole photographs from
which no training crop is taken, so test scores measure generalisation to unseen scenes.
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import unquote

import numpy as np
from PIL import Image

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from util.image_io import save_image

log = logging.getLogger(__name__)

CATALOGUE_FILE = "photos.json"
DEFAULT_MAX_SIDE = 1024


@dataclass(frozen=True)
class Photo:
    name: str  # file stem in the photo folder
    source: str  # "skimage" or the Debian package
    path: str  # skimage.data function, or the file inside the package
    author: str
    licence: str
    test: bool = False  # held out: test crops only, never a training crop


_LOMIRI = "/usr/share/backgrounds/"
_PALAPELI = "/usr/share/palapeli/collection/"
_LXQT = "/usr/share/lxqt/wallpapers/"

PHOTOS = (
    Photo("astronaut", "skimage", "astronaut", "NASA", "public domain", test=True),
    Photo("chelsea", "skimage", "chelsea", "Stefan van der Walt", "CC0"),
    Photo("coffee", "skimage", "coffee", "Rachel Michetti", "CC0"),
    Photo("rocket", "skimage", "rocket", "SpaceX", "public domain"),
    # The right view of this stereo pair is left out: it shows the same scene.
    Photo("motorcycle_left", "skimage", "stereo_motorcycle", "Middlebury stereo dataset (Scharstein et al.)",
          "research use, see skimage.data.stereo_motorcycle"),
    Photo("bridge", "lomiri-wallpapers-16.04", _LOMIRI + "Bridge_by_Sander_Klootwijk.jpg", "Sander Klootwijk",
          "CC-BY-SA-4.0"),
    Photo("dragonfly", "lomiri-wallpapers-16.04", _LOMIRI + "Dragonfly_by_Bolly.jpg", "Bolly", "CC-BY-SA-4.0"),
    Photo("fig_bowl", "lomiri-wallpapers-16.04", _LOMIRI + "Picture_0B_by_freespace.jpg", "Trevor 'Freespace'",
          "CC-BY-4.0"),
    Photo("brushes", "lomiri-wallpapers-16.04", _LOMIRI + "Picture_1A_by_freespace.jpg", "Trevor 'Freespace'",
          "CC-BY-4.0"),
    Photo("wine", "lomiri-wallpapers-16.04", _LOMIRI + "Wine_by_Jakkub_Mede.jpg", "Jakub Mede", "CC-BY-4.0"),
    Photo("aitzgorri", "lomiri-wallpapers-16.04", _LOMIRI + "aitzgorri_by_Aitzol_Berasategi.jpg",
          "Aitzol Berasategi", "CC-BY-4.0"),
    Photo("free", "lomiri-wallpapers-16.04", _LOMIRI + "free_by_Peter_Nerlich.jpg", "Peter Nerlich", "CC-BY-SA-4.0"),
    Photo("friends", "lomiri-wallpapers-16.04", _LOMIRI + "friends_by_Aitzol_Berasategi.jpg", "Aitzol Berasategi",
          "CC-BY-4.0"),
    Photo("greentock", "lomiri-wallpapers-16.04", _LOMIRI + "greentock_by_Peter_Nerlich.jpg", "Peter Nerlich",
          "CC-BY-SA-4.0"),
    Photo("life", "lomiri-wallpapers-16.04", _LOMIRI + "life_by_Aitzol_Berasategi.jpg", "Aitzol Berasategi",
          "CC-BY-4.0", test=True),
    Photo("picosdeeuropa", "lomiri-wallpapers-16.04", _LOMIRI + "picosdeeuropa_by_Aitzol_Berasategi.jpg",
          "Aitzol Berasategi", "CC-BY-4.0", test=True),
    Photo("seeding", "lomiri-wallpapers-16.04", _LOMIRI + "seeding_by_Clements_Engelhardt.jpg", "Clemens Engelhardt",
          "CC0-1.0"),
    Photo("sunset", "lomiri-wallpapers-16.04", _LOMIRI + "sunset_by_Aitzol_Berasategi.jpg", "Aitzol Berasategi",
          "CC-BY-4.0"),
    Photo("kleiber", "lomiri-wallpapers-20.04", _LOMIRI + "Kleiber_by_Lukas_Baubkus.jpg", "Lukas Baubkus",
          "CC-BY-SA-3.0", test=True),
    Photo("castle", "palapeli-data", _PALAPELI + "castle-maintenon.jpg", "Eric Pouhier", "GFDL", test=True),
    Photo("suspension_bridge", "palapeli-data", _PALAPELI + "cincinnati-bridge.jpg", "Derek Jensen",
          "public domain"),
    Photo("citrus", "palapeli-data", _PALAPELI + "citrus-fruits.jpg", "US Department of Agriculture",
          "public domain", test=True),
    Photo("honey_bee", "palapeli-data", _PALAPELI + "european-honey-bee.jpg", "John Severns", "public domain",
          test=True),
    Photo("chameleon", "palapeli-data", _PALAPELI + "panther-chameleon-female.jpg", "B. Navez and others",
          "GFDL"),
    Photo("butterfly_kw", "lxqt-themes", _LXQT + "Butterfly-Kenneth-Wimer.jpg", "Kenneth Wimer (LXQt Project)",
          "CC-BY-SA-3.0"),
    Photo("valendas", "lxqt-themes", _LXQT + "Valendas.png", "LXQt Project", "CC-BY-SA-3.0"),
    Photo("after_the_rain", "lxqt-themes", _LXQT + "after-the-rain.jpg", "stefonarch (LXQt Project)",
          "CC-BY-SA-3.0", test=True),
    Photo("appleflower", "lxqt-themes", _LXQT + "appleflower.png", "stefonarch (LXQt Project)", "CC-BY-SA-3.0"),
    Photo("beam", "lxqt-themes", _LXQT + "beam.png", "stefonarch (LXQt Project)", "CC-BY-SA-3.0"),
    Photo("butterfly", "lxqt-themes", _LXQT + "butterfly.png", "stefonarch (LXQt Project)", "CC-BY-SA-3.0"),
    Photo("cloud", "lxqt-themes", _LXQT + "cloud.png", "LXQt Project", "CC-BY-SA-3.0"),
    Photo("drop", "lxqt-themes", _LXQT + "drop.png", "stefonarch (LXQt Project)", "CC-BY-SA-3.0"),
    Photo("flowers", "lxqt-themes", _LXQT + "flowers.png", "stefonarch (LXQt Project)", "CC-BY-SA-3.0"),
    Photo("fog", "lxqt-themes", _LXQT + "fog.jpg", "stefonarch (LXQt Project)", "CC-BY-SA-3.0"),
    Photo("hills", "lxqt-themes", _LXQT + "this-is-not-windows.jpg", "stefonarch (LXQt Project)", "CC-BY-SA-3.0"),
)


_TUXPAINT = "/usr/share/tuxpaint/templates/"
_TUXPAINT_AUTHOR = "Bill Kendrick (Tux Paint)"
_PEXELS = "/usr/share/puzzle-jigsaw/samples/"
_SKLEARN = "/usr/lib/python3/dist-packages/sklearn/datasets/images/"


def _tuxpaint(name: str, test: bool = False) -> Photo:
    return Photo(name, "tuxpaint-data", f"{_TUXPAINT}{name}.jpg", _TUXPAINT_AUTHOR, "GPL-2+", test=test)


# A second catalogue, disjoint from PHOTOS, for the held-out conditions of datasets/suite.py:
# other scenes and other cameras than the ones the recipes were tuned on. Its 5 test photos
# give only test pairs. Left out of the packages named here: tuxpaint-data's mossy_bark
# (black bars), and ukui-wallpapers, lomiri-wallpapers, sway-backgrounds and
# mypaint-data-extras as a whole (renders, logos and paper textures, no photographs).
SUITE_PHOTOS = (
    _tuxpaint("burnt_bark"),
    _tuxpaint("cliff"),
    _tuxpaint("corn_maze"),
    _tuxpaint("jellyfish"),
    _tuxpaint("lighthouse", test=True),
    _tuxpaint("mossy_log"),
    _tuxpaint("mudstone"),
    _tuxpaint("ocean_splash"),
    _tuxpaint("ocean_waves"),
    _tuxpaint("redwoods_above"),
    _tuxpaint("rocks"),
    _tuxpaint("sheep", test=True),
    _tuxpaint("spiders_web"),
    _tuxpaint("sun_behind_clouds"),
    _tuxpaint("sun_behind_leaves", test=True),
    _tuxpaint("trees_above"),
    _tuxpaint("trees_at_dusk"),
    _tuxpaint("wool_mill_machine"),
    Photo("tiger", "puzzle-jigsaw", _PEXELS + "pexels-photo-302304.jpeg", "Pexels (pexels.com/photo/302304)",
          "CC0-1.0"),
    Photo("cat", "puzzle-jigsaw", _PEXELS + "cat-animal-cat-portrait-mackerel.jpg", "Pexels (pexels.com/photo/33537)",
          "CC0-1.0", test=True),
    Photo("china", "python3-sklearn", _SKLEARN + "china.jpg", "danielbuechele (Flickr)", "CC-BY-2.0", test=True),
    Photo("flower", "python3-sklearn", _SKLEARN + "flower.jpg", "vultilion (Flickr)", "CC-BY-2.0"),
    Photo("grace_hopper", "python-matplotlib-data", "/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg",
          "US Navy (official portrait of Grace Hopper)", "public domain"),
)
# --catalogue name -> (photos, default folder name under datasets/)
CATALOGUES = {"embedded": (PHOTOS, "photos"), "suite": (SUITE_PHOTOS, "photos_suite")}


class PhotoFetchError(RuntimeError):
    """The photographs cannot be fetched here; the message says why and what to do instead."""


def _skimage_photo(function: str) -> np.ndarray:
    from skimage import data as skimage_data

    image = getattr(skimage_data, function)()
    return image[0] if function == "stereo_motorcycle" else image


def shrink_photo(image: np.ndarray, max_side: int | None) -> np.ndarray:
    height, width = image.shape[:2]
    if not max_side or max(height, width) <= max_side:
        return image
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))


def _unpack_packages(packages: list[str], into: Path) -> dict[str, str]:
    """`apt-get download` each package into `into` and unpack it there; returns package -> version."""
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise PhotoFetchError(
                f"'{tool}' is not available: the embedded photographs come from Debian packages. On another "
                "system pass --source DIR (a folder of your own photographs) or --source skimage")
    result = subprocess.run(["apt-get", "download", *packages], cwd=into, capture_output=True, text=True)
    if result.returncode != 0:
        detail = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "no message"
        raise PhotoFetchError(f"apt-get download {' '.join(packages)} failed ({detail}); run 'apt-get update' "
                              "first, or pass --source DIR / --source skimage")
    versions = {}
    for package in packages:
        debs = sorted(into.glob(f"{package}_*.deb"))
        if not debs:
            raise PhotoFetchError(f"apt-get download did not produce {package}_*.deb in {into}")
        subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(into / package)], check=True)
        versions[package] = unquote(debs[-1].name.split("_")[1])  # an epoch is written '1%3a' in the name
    return versions


def fetch_photos(out_dir: str | Path, max_side: int | None = DEFAULT_MAX_SIDE,
                 photos: tuple[Photo, ...] = PHOTOS) -> Path:
    """Write every photograph of ``photos`` (a catalogue: ``PHOTOS`` or ``SUITE_PHOTOS``) and
    ``photos.json`` into ``out_dir`` (once).

    A folder that already holds a complete catalogue is reused as it is.
    """
    out = Path(out_dir)
    if (out / CATALOGUE_FILE).is_file() and all((out / f"{p.name}.png").is_file() for p in photos):
        return out
    out.mkdir(parents=True, exist_ok=True)
    packages = sorted({p.source for p in photos if p.source != "skimage"})
    entries = []
    with tempfile.TemporaryDirectory(prefix="photos-", dir=out) as tmp:
        versions = _unpack_packages(packages, Path(tmp))
        for photo in photos:
            if photo.source == "skimage":
                image = _skimage_photo(photo.path)
            else:
                file = Path(tmp) / photo.source / photo.path.lstrip("/")
                image = np.asarray(Image.open(file).convert("RGB"))
            original = image.shape[:2]
            image = shrink_photo(image, max_side)
            save_image(np.ascontiguousarray(image), out / f"{photo.name}.png")
            entries.append({**asdict(photo), "version": versions.get(photo.source),
                            "original_size": list(original), "size": list(image.shape[:2])})
    (out / CATALOGUE_FILE).write_text(json.dumps({"max_side": max_side, "photos": entries}, indent=1))
    log.info("wrote %d photographs (%d held out for testing) to %s", len(entries),
             sum(p.test for p in photos), out)
    return out


def test_photo_names(folder: str | Path) -> set[str] | None:
    """The held-out photos named by a folder's photos.json, or None for a folder without one."""
    catalogue = Path(folder) / CATALOGUE_FILE
    if not catalogue.is_file():
        return None
    return {p["name"] for p in json.loads(catalogue.read_text())["photos"] if p.get("test")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fetch a photo catalogue (skimage + Debian packages).")
    parser.add_argument("--catalogue", choices=sorted(CATALOGUES), default="embedded",
                        help="embedded: the 35 photos of the embedded sets; suite: the 23 other photos of "
                             "datasets/suite.py's held-out conditions")
    parser.add_argument("--out", default=None,
                        help="folder to write the photographs to (default datasets/photos or datasets/photos_suite)")
    parser.add_argument("--max_side", type=int, default=DEFAULT_MAX_SIDE, help="shrink longer sides to this")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(levelname)s: %(message)s", level=logging.INFO)
    try:
        photos, folder = CATALOGUES[args.catalogue]
        fetch_photos(args.out or f"datasets/{folder}", args.max_side, photos)
    except PhotoFetchError as err:
        log.error("%s", err)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
