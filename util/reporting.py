"""How scores are shown: a value or "-", mean and spread with missing values skipped, plain
and markdown tables, and CSV files written whole (test.py, evaluate.py and the scripts)."""
from __future__ import annotations

import csv
import math
import os
import statistics
from collections.abc import Iterable, Sequence

from util.atomic_file import atomic_write

MISSING = "-"


def fmt(value: float | None, digits: int = 2, missing: str = MISSING) -> str:
    """``value`` with ``digits`` decimals; ``missing`` for None and NaN (inf stays 'inf': the
    PSNR of an exact restoration)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    return f"{value:.{digits}f}"


def present(values: Iterable[float | None]) -> list[float]:
    """The values that are not None."""
    return [v for v in values if v is not None]


def mean_std(values: Iterable[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation of the values that are not None; the mean is None
    without any, the deviation None with fewer than two."""
    kept = present(values)
    if not kept:
        return None, None
    if len(kept) < 2:
        return statistics.fmean(kept), None
    if not all(math.isfinite(v) for v in kept):  # e.g. PSNR inf of an exact output: no spread to speak of
        return statistics.fmean(kept), math.nan
    return statistics.fmean(kept), statistics.stdev(kept)


def spread(values: Iterable[float | None], digits: int, scale: float = 1.0) -> str:
    """'17.49' for one value, '17.49 ± 0.52' (sample standard deviation) for several, '-' for
    none; None values are skipped, each value is multiplied by ``scale`` first (100: percent)."""
    mean, std = mean_std(v * scale if v is not None else None for v in values)
    if std is None or math.isnan(std):
        return fmt(mean, digits)
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def column_means(rows: Sequence[dict], keys: Iterable[str]) -> dict[str, float | None]:
    """Mean of each key over the rows where it is present and not None (None where no row has it)."""
    return {key: mean_std(row.get(key) for row in rows)[0] for key in keys}


def text_table(rows: Sequence[Sequence[str]], widths: Sequence[int]) -> list[str]:
    """Lines of a plain table: the first column left-aligned to its longest cell, column k
    right-aligned to at least ``widths[k - 1]``, two spaces between columns."""
    first = max(len(row[0]) for row in rows)
    sizes = [max([w, *(len(row[k]) for row in rows)]) for k, w in enumerate(widths, 1)]
    return [f"{row[0]:<{first}}" + "".join(f"  {cell:>{size}}" for cell, size in zip(row[1:], sizes))
            for row in rows]


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]], align: str) -> list[str]:
    """Lines of a markdown table; ``align`` has one letter per column, 'l' or 'r'."""
    rule = "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"
    return [markdown_row(header), rule, *(markdown_row(row) for row in rows)]


def markdown_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def write_csv(path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence]) -> None:
    """``header`` then one line per row, written whole (util/atomic_file); None is an empty cell."""
    with atomic_write(path, "w") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(["" if cell is None else cell for cell in row] for row in rows)
