"""The count of a CSV file's records kept apart from the engine: the quick count by line
breaks never falls below the quote-aware count, and equals it whenever no value holds a
line break."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as strat

from strataml.data import _records
from strataml.data._records import count_lines, count_records

field = strat.text(alphabet=strat.sampled_from(list('ab ,"\n\r;é')), max_size=6)
rows = strat.lists(strat.lists(field, min_size=3, max_size=3), min_size=1, max_size=12)


def _write(path: Path, body: list[list[str]], ending: str, blank_at: int | None, final_break: bool) -> None:
    out = io.StringIO()
    w = csv.writer(out, lineterminator=ending)
    w.writerow(["a", "b", "c"])
    for i, r in enumerate(body):
        if i == blank_at:
            out.write(ending)
        w.writerow(r)
    text = out.getvalue()
    path.write_bytes((text if final_break else text.removesuffix(ending)).encode())


@settings(max_examples=150, deadline=None)
@given(body=rows, ending=strat.sampled_from(["\n", "\r\n"]), blank_at=strat.none() | strat.integers(0, 11), final_break=strat.booleans())
def test_the_quick_count_is_never_below_the_records_and_exact_without_breaks_in_values(tmp_path_factory, body, ending, blank_at, final_break) -> None:
    path = tmp_path_factory.mktemp("count") / "f.csv"
    _write(path, body, ending, blank_at, final_break)
    exact = count_records(str(path), ",", '"', '"', 3)
    quick = count_lines(str(path), 3)
    if quick is not None:
        assert quick >= exact
    breaks_in_values = any("\n" in v or "\r" in v for r in body for v in r)
    blank = blank_at is not None and blank_at < len(body)
    if not breaks_in_values and not blank:
        assert quick == exact


@pytest.mark.parametrize("block", [1, 2, 3, 5, 64])
def test_the_quick_count_does_not_depend_on_where_its_reads_split_the_file(tmp_path: Path, monkeypatch, block: int) -> None:
    crlf = tmp_path / "crlf.csv"
    crlf.write_bytes(b"a,b\r\n1,2\r\n3,4\r\n5,6")
    blank = tmp_path / "blank.csv"
    blank.write_bytes(b"a,b\n1,2\n\n3,4\n")
    bare_cr = tmp_path / "cr.csv"
    bare_cr.write_bytes(b"a,b\r1,2\r3,4\r")
    monkeypatch.setattr(_records, "_LINES_BLOCK", block)
    assert count_lines(str(crlf), 2) == 3
    assert count_lines(str(blank), 2) is None  # a blank line is no record: the parser decides
    assert count_lines(str(blank), 1) == 3  # but is one (a null) in a one-column file
    assert count_lines(str(bare_cr), 2) is None


def test_the_quick_count_leaves_other_encodings_to_the_parser(tmp_path: Path) -> None:
    p = tmp_path / "u16.csv"
    p.write_bytes("a,b\n1,2\n".encode("utf-16"))
    assert count_lines(str(p), 2, "utf-16") is None
    assert count_lines(str(p), 2, "Latin-1") is not None
