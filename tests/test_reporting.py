"""util/reporting.py: missing values, mean ± std with None skipped, tables and CSV files."""
import csv
import math

import pytest

from util.reporting import column_means, fmt, markdown_table, mean_std, spread, text_table, write_csv


def test_fmt_shows_missing_values_as_a_dash_and_keeps_inf():
    assert fmt(3.14159, 3) == "3.142"
    assert fmt(None) == "-" and fmt(math.nan) == "-" and fmt(None, missing="") == ""
    assert fmt(math.inf, 4) == "inf"


def test_mean_std_and_spread_skip_missing_values():
    assert mean_std([17.0, None, 19.0]) == (18.0, pytest.approx(math.sqrt(2)))
    assert mean_std([5.0, None]) == (5.0, None)
    assert mean_std([None]) == (None, None)
    assert spread([17.0, 19.0, None], 2) == "18.00 ± 1.41"
    assert spread([0.0135], 2, scale=100) == "1.35"
    assert spread([None, None], 3) == "-"


def test_column_means_skip_rows_without_the_value():
    rows = [{"a": 1.0, "b": None}, {"a": 3.0}, {"a": 5.0, "b": 2.0}]
    assert column_means(rows, ["a", "b", "c"]) == {"a": 3.0, "b": 2.0, "c": None}


def test_text_table_aligns_the_name_left_and_scores_right():
    lines = text_table([["name", "PSNR"], ["a_long_name", "20.1234"], ["mean", "inf"]], [8])
    assert lines == ["name             PSNR", "a_long_name   20.1234", "mean              inf"]
    assert text_table([["x", "123456789"]], [3]) == ["x  123456789"]  # a wide cell widens its column


def test_markdown_table():
    assert markdown_table(["rank", "model"], [["1", "cut"]], "rl") == ["| rank | model |", "|---:|---|", "| 1 | cut |"]


def test_write_csv_leaves_missing_values_empty(tmp_path):
    path = tmp_path / "sub" / "scores.csv"
    path.parent.mkdir()
    write_csv(path, ["name", "psnr", "rain_residue"], [["a", 20.5, None], ["b", "inf", 0.25]])
    assert path.read_text() == "name,psnr,rain_residue\na,20.5,\nb,inf,0.25\n"
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]  # no temporary file left
    with open(path, newline="") as fh:
        assert next(csv.reader(fh)) == ["name", "psnr", "rain_residue"]


def test_mean_std_of_infinite_values_has_no_spread_instead_of_failing():
    # An output equal to its ground truth has PSNR inf; test.py and the benchmarks average such rows.
    mean, std = mean_std([math.inf, math.inf, 30.0])
    assert mean == math.inf and math.isnan(std)
    assert spread([math.inf, 20.0], 2) == "inf"
