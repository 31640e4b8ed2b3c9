"""Static HTML pages: the training page (visuals per epoch, loss curve) and the test page.

Both are plain files a browser opens from disk, no server needed. dominate escapes every text
and attribute value; image paths are additionally URL-quoted, so a file named
`<script>alert(1)</script>.png` shows as text and still loads.
"""
from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

import dominate
import numpy as np
from dominate import tags
from dominate.util import raw
from PIL import Image, ImageDraw, ImageFont

from util.atomic_file import atomic_write
from util.image_io import display_name, save_image

# Points of one loss curve: (fractional epoch, value).
LossHistory = Mapping[str, Sequence[tuple[float, float]]]

_STYLE = """
body { font-family: sans-serif; margin: 1em; }
table { border-collapse: collapse; }
td, th { padding: 4px 8px; text-align: center; vertical-align: top; }
th { background: #eee; }
tr.mean td { font-weight: bold; border-top: 2px solid #888; }
.epoch img { image-rendering: pixelated; }  /* tiny training crops stay crisp when enlarged */
.label { margin: 2px 0 8px; font-size: 13px; word-break: break-all; }
td.name { min-width: 9em; max-width: 18em; overflow-wrap: anywhere; text-align: left; }
"""

# Distinct line colours (the category10 palette plotly also uses).
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
            "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def _src(path: str | os.PathLike) -> str:
    # A file name that is not UTF-8 keeps its bytes (%FF), so the browser finds the file.
    return quote(Path(path).as_posix(), safe="/", errors="surrogateescape")


def _write_atomic(path: Path, text: str) -> None:
    # The page is often open in a browser while training rewrites it: never show half a file.
    with atomic_write(path, "w") as fh:
        fh.write(text)


def _safe_file_part(label: str) -> str:
    """A visual's label as a file name part: one path component, no odd characters."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("._") or "image"


def _nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """About `target` round tick values (steps of 1, 2 or 5 times a power of ten) in [lo, hi]."""
    raw_step = (hi - lo) / target
    power = 10.0 ** math.floor(math.log10(raw_step))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw_step)
    first = math.ceil(lo / step)
    # round(): keep 0.30000000000000004 from reaching the labels.
    return [round(k * step, 12) for k in range(first, math.floor(hi / step) + 1)]


def draw_loss_curve(history: LossHistory, path: str | os.PathLike, size: tuple[int, int] = (900, 380)) -> None:
    """Draw the loss curves as a PNG (see `draw_curves`)."""
    draw_curves(history, path, size, title="training losses", xlabel="epoch", empty="no losses yet")


def draw_curves(history: LossHistory, path: str | os.PathLike, size: tuple[int, int] = (900, 380),
                title: str = "", xlabel: str = "", empty: str = "no data") -> None:
    """Draw named (x, y) curves as a PNG with PIL (one polyline per name, axes, legend).

    Non-finite values are left out; an empty history gives an empty frame saying `empty`.
    """
    width, height = size
    left, right, top, bottom = 70, 170, 30, 45
    canvas = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=12)
    curves = {name: [(x, y) for x, y in points if math.isfinite(x) and math.isfinite(y)]
              for name, points in history.items()}
    curves = {name: points for name, points in curves.items() if points}
    x0, x1, y0, y1 = left, width - right, top, height - bottom
    draw.text(((x0 + x1) // 2, 8), title, fill="black", font=font, anchor="mt")
    draw.text(((x0 + x1) // 2, height - 8), xlabel, fill="black", font=font, anchor="mb")
    if not curves:
        draw.rectangle((x0, y0, x1, y1), outline="#444")
        draw.text(((x0 + x1) // 2, (y0 + y1) // 2), empty, fill="#888", font=font, anchor="mm")
        save_image(canvas, path)
        return
    xs = [x for points in curves.values() for x, _ in points]
    ys = [y for points in curves.values() for _, y in points]
    xmin, xmax = min(xs), max(xs)
    ymin, ymax = min(ys), max(ys)
    if xmax == xmin:
        xmin, xmax = xmin - 0.5, xmax + 0.5
    pad = (ymax - ymin) * 0.05 or max(abs(ymax) * 0.1, 1e-3)
    ymin, ymax = ymin - pad, ymax + pad

    def to_px(x: float, y: float) -> tuple[float, float]:
        return (x0 + (x - xmin) / (xmax - xmin) * (x1 - x0),
                y1 - (y - ymin) / (ymax - ymin) * (y1 - y0))

    for xv in _nice_ticks(xmin, xmax):
        px, _ = to_px(xv, ymin)
        draw.line((px, y0, px, y1), fill="#e6e6e6")
        draw.text((px, y1 + 4), f"{xv:g}", fill="black", font=font, anchor="mt")
    for yv in _nice_ticks(ymin, ymax):
        _, py = to_px(xmin, yv)
        draw.line((x0, py, x1, py), fill="#e6e6e6")
        draw.text((x0 - 4, py), f"{yv:g}", fill="black", font=font, anchor="rm")
    draw.rectangle((x0, y0, x1, y1), outline="#444")  # over the grid lines
    for i, (name, points) in enumerate(curves.items()):
        colour = _PALETTE[i % len(_PALETTE)]
        pixels = [to_px(x, y) for x, y in points]
        if len(pixels) == 1:
            (px, py), = pixels
            draw.ellipse((px - 3, py - 3, px + 3, py + 3), fill=colour)
        else:
            draw.line(pixels, fill=colour, width=2)
        ly = y0 + 8 + 18 * i
        draw.line((x1 + 12, ly, x1 + 36, ly), fill=colour, width=3)
        draw.text((x1 + 42, ly), name, fill="black", font=font, anchor="lm")
    save_image(canvas, path)


class TrainingPage:
    """`<run>/web/index.html`: the loss curve, then the visuals of each epoch, newest first.

    Each epoch's block is written once as a small HTML fragment (`web/epochs/epochNNN.html`),
    so updating the page after an epoch saves only that epoch's images and concatenates
    fragments; nothing older is re-encoded.
    """

    def __init__(self, web_dir: str | os.PathLike, title: str, image_width: int = 256,
                 ncols: int = 4, subtitle: str = "", keep_existing: bool = True):
        self.web_dir = Path(web_dir)
        self.image_dir = self.web_dir / "images"
        self.fragment_dir = self.web_dir / "epochs"
        self.title = title
        self.subtitle = subtitle
        self.image_width = image_width
        self.ncols = max(1, ncols)
        self.image_dir.mkdir(parents=True, exist_ok=True)
        self.fragment_dir.mkdir(parents=True, exist_ok=True)
        if not keep_existing:
            # A new run under an old name: the old epochs would be mixed into the new page.
            for old in self.fragment_dir.glob("epoch*.html"):
                old.unlink()

    @property
    def index_path(self) -> Path:
        return self.web_dir / "index.html"

    @property
    def loss_curve_path(self) -> Path:
        return self.image_dir / "loss_curve.png"

    def add_epoch(self, epoch: int, images: Mapping[str, np.ndarray]) -> None:
        """Save one epoch's visuals (HxWx3 uint8) as `images/epochNNN_<label>.png` and its fragment."""
        block = tags.div(cls="epoch")
        block.add(tags.h3(f"epoch {epoch}"))
        grid = block.add(tags.table())
        row = None
        for i, (label, array) in enumerate(images.items()):
            rel = f"images/epoch{epoch:03d}_{_safe_file_part(label)}.png"
            save_image(array, self.web_dir / rel)
            if i % self.ncols == 0:
                row = grid.add(tags.tr())
            cell = row.add(tags.td())
            link = cell.add(tags.a(href=_src(rel)))
            link.add(tags.img(src=_src(rel), width=self.image_width, alt=label))
            cell.add(tags.p(label, cls="label"))
        _write_atomic(self.fragment_dir / f"epoch{epoch:03d}.html", block.render())

    def set_loss_curve(self, history: LossHistory) -> None:
        draw_loss_curve(history, self.loss_curve_path)

    def render(self) -> Path:
        """Write index.html from the stored fragments; returns its path."""
        def epoch_of(path: Path) -> int:
            return int(path.stem[len("epoch"):])

        fragments = sorted(self.fragment_dir.glob("epoch*.html"), key=epoch_of, reverse=True)
        doc = dominate.document(title=self.title)
        with doc.head:
            tags.meta(charset="utf-8")
            tags.style(_STYLE)
        with doc:
            tags.h1(self.title)
            if self.subtitle:
                tags.p(self.subtitle)
            if self.loss_curve_path.exists():
                # The curve is redrawn in place: a changing query defeats the browser cache.
                stamp = self.loss_curve_path.stat().st_mtime_ns
                tags.img(src=f"{_src('images/loss_curve.png')}?v={stamp}", alt="loss curve")
            for fragment in fragments:
                raw(fragment.read_text(encoding="utf-8"))
            tags.p(f"updated {time.strftime('%Y-%m-%d %H:%M:%S')}")
        _write_atomic(self.index_path, doc.render())
        return self.index_path


# Optional metric keys of a test row and their column headers, in column order.
_METRICS = {"psnr": "PSNR (dB)", "ssim": "SSIM", "input_psnr": "input PSNR (dB)", "input_ssim": "input SSIM",
            "niqe": "NIQE", "piqe": "PIQE", "input_niqe": "input NIQE", "input_piqe": "input PIQE"}
# Decimals shown per metric (by the name's ending).
_DECIMALS = {"psnr": 2, "ssim": 4, "niqe": 3, "piqe": 2}


def save_test_page(page_dir: str | os.PathLike, rows: Sequence[Mapping], title: str,
                   image_width: int = 256, subtitle: str = "") -> Path:
    """Write `page_dir/index.html`: input | output | ground truth per image, with the scores.

    Each row is a dict with `name`, `input`, `output` and optionally `gt`, `psnr`, `ssim`,
    the no-reference `niqe`, `piqe` (lower is better), and each again as `input_<metric>`
    (the rainy input's own score, the floor to beat); image
    paths are relative to `page_dir`. A last row gives the mean of each metric. `subtitle`
    (e.g. which checkpoint made the outputs) is shown under the title.
    """
    page_dir = Path(page_dir)
    has_gt = any(row.get("gt") for row in rows)
    metric_names = [m for m in _METRICS if any(row.get(m) is not None for row in rows)]
    headers = ["name", "input", "output"] + (["ground truth"] if has_gt else [])
    headers += [_METRICS[m] for m in metric_names]

    doc = dominate.document(title=title)
    with doc.head:
        tags.meta(charset="utf-8")
        tags.style(_STYLE)
    with doc:
        tags.h1(title)
        if subtitle:
            tags.p(subtitle)
        with tags.table():
            tags.tr([tags.th(h) for h in headers])
            for row in rows:
                with tags.tr():
                    tags.td(display_name(row["name"]), cls="name")
                    for key in ("input", "output") + (("gt",) if has_gt else ()):
                        with tags.td():
                            if row.get(key):
                                with tags.a(href=_src(row[key])):
                                    tags.img(src=_src(row[key]), width=image_width,
                                             alt=f"{display_name(row['name'])} {key}")
                            else:
                                tags.span("-")
                    for m in metric_names:
                        value = row.get(m)
                        tags.td("-" if value is None else _format_metric(m, value))
            means = {m: [row[m] for row in rows if row.get(m) is not None] for m in metric_names}
            if metric_names:
                with tags.tr(cls="mean"):
                    tags.td(f"mean of {len(rows)} images", cls="name")
                    tags.td(colspan=len(headers) - 1 - len(metric_names))
                    for m in metric_names:
                        tags.td(_format_metric(m, float(np.mean(means[m]))) if means[m] else "-")
    path = page_dir / "index.html"
    _write_atomic(path, doc.render())
    return path


def _format_metric(name: str, value: float) -> str:
    return f"{value:.{_DECIMALS[name.rpartition('_')[2]]}f}"
