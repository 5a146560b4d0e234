"""Counting a CSV file's records with a parser other than the engine's.

The ingestion compares this count with what the engine's reader accounted for (accepted,
rejected, duplicate and skipped lines), so a record the reader drops unreported refuses
the batch instead of vanishing. The count runs on another thread while the engine reads.

It is done in two steps, because a quote-aware parse of the whole file costs about as
much CPU as the engine's own read and takes a core from it. First the line breaks are
counted (:func:`count_lines`, a byte search). A quoted line break only makes that count
larger than the records, never smaller, so when it equals what the engine accounted for,
the engine accounted for every record (a dropped one could hide only behind a record the
reader invented, which it reports as a reject). When it differs, or the file has lines
the byte search cannot judge (blank lines, bare carriage returns, another encoding), the
quote-aware parser (:func:`count_records`) counts again and decides.
"""

from __future__ import annotations

import mmap
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

#: the parser's block: a record must fit in one (larger than the reader's 32 MiB buffer)
_BLOCK = 64 * 1024 * 1024
_COMPRESSED = (".gz", ".zst", ".bz2", ".xz", ".zip")
#: encodings in which a line break is the byte 0x0A and nothing else holds that byte
_BYTE_NEWLINE = ("utf8", "latin1", "iso88591", "ascii")
#: the byte search's read size (its line-break positions take at most 8x this)
_LINES_BLOCK = 4 * 1024 * 1024

#: one file for :class:`RecordCount`: its path, dialect (delimiter, quote, escape), column count and encoding
Job = tuple[str, str, str, str, int, str | None]


def compressed(path: str) -> bool:
    """Whether ``path`` names a compressed file (its bytes are not the records' text)."""
    return path.lower().endswith(_COMPRESSED)


def countable(path: str) -> bool:
    """Whether ``path`` is a local, uncompressed file the counter can read."""
    return "://" not in path and not compressed(path) and os.path.isfile(path)


def count_records(path: str, delim: str, quote: str, escape: str, columns: int, encoding: str | None = None) -> int:
    """The data records of a CSV file with a header line, quote-aware (a quoted field may hold newlines).

    Uses the dialect the engine's reader was given. Empty lines are not records (but in a one-column file); a record
    with the wrong number of fields still is one (the reader quarantines it).
    """
    import pyarrow as pa
    import pyarrow.csv as pcsv

    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            return 0
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            # newlines inside values need the slower quote-aware chunker: only when quoted
            quoted = bool(quote) and mm.find(quote.encode()) != -1
    invalid = 0

    def skip(_row: Any) -> str:
        nonlocal invalid
        invalid += 1
        return "skip"

    names = [f"c{i}" for i in range(columns)]
    read = pcsv.ReadOptions(
        column_names=names, skip_rows=1, block_size=_BLOCK, use_threads=False,
        encoding=encoding if encoding and encoding.lower().replace("-", "").replace("_", "") not in ("utf8", "latin1", "iso88591") else "utf8",
    )
    parse = pcsv.ParseOptions(
        delimiter=delim,
        quote_char=quote or False,
        double_quote=bool(quote) and escape in ("", quote),
        escape_char=escape if escape and escape != quote else False,
        newlines_in_values=quoted,
        # the reader skips an empty line, except in a one-column file (where it is a null)
        ignore_empty_lines=columns > 1,
        invalid_row_handler=skip,
    )
    # only the first column is converted (as bytes, so no encoding is checked): rows are counted
    convert = pcsv.ConvertOptions(include_columns=[names[0]], column_types={names[0]: pa.binary()})
    rows = 0
    with pcsv.open_csv(path, read_options=read, parse_options=parse, convert_options=convert) as reader:
        for batch in reader:
            rows += batch.num_rows
    return rows + invalid


def count_lines(path: str, columns: int, encoding: str | None = None) -> int | None:
    """The records of a CSV file with a header line if every line break ends one; None
    when a byte search cannot tell (a blank line is no record but in a one-column file,
    a bare carriage return ends a line, or line breaks are not the byte 0x0A).

    Quoted line breaks are counted as if they ended records: the result is then larger
    than the records (see the module docstring for why that is enough).
    """
    if encoding and encoding.lower().replace("-", "").replace("_", "") not in _BYTE_NEWLINE:
        return None
    import numpy as np

    breaks = carriage = crlf = blank = offset = 0
    tail = last = b""
    previous = -2  # where the last line break read so far is (none yet)
    with open(path, "rb") as fh:
        while block := fh.read(_LINES_BLOCK):
            at = np.flatnonzero(np.frombuffer(block, np.uint8) == 0x0A) + offset
            breaks += len(at)
            if columns > 1 and len(at):
                blank += int((np.diff(at, prepend=previous) == 1).sum())
                previous = int(at[-1])
            if block.find(b"\r") != -1 or tail.endswith(b"\r"):  # rare enough to search the slow way
                carriage += block.count(b"\r")
                crlf += _occurrences(b"\r\n", tail, block)
                if columns > 1:
                    blank += _occurrences(b"\n\r\n", tail, block)
            tail, last = (tail + block[-2:])[-2:], block[-1:]
            offset += len(block)
    if last == b"":
        return 0
    if carriage != crlf or blank:
        return None
    lines = breaks + (last != b"\n")
    return max(lines - 1, 0)  # the header line


def _occurrences(pattern: bytes, tail: bytes, block: bytes) -> int:
    """Non-overlapping occurrences of ``pattern`` in ``block`` and across its start
    (``tail`` holds the bytes read before it)."""
    k = len(pattern) - 1
    return block.count(pattern) + (tail[-k:] + block[:k]).count(pattern)


class RecordCount:
    """The records of some CSV files, counted on another thread while the engine reads
    them: by their line breaks, or quote-aware when these cannot tell."""

    def __init__(self, jobs: list[Job]) -> None:
        self.jobs = jobs
        pool = ThreadPoolExecutor(1, thread_name_prefix="strata-count")
        try:
            self._counting = pool.submit(self._count)
        finally:
            pool.shutdown(wait=False)

    def _exact(self) -> int:
        return sum(count_records(*job) for job in self.jobs)

    def _count(self) -> tuple[int, bool]:
        quick = [count_lines(path, columns, encoding) for path, _, _, _, columns, encoding in self.jobs]
        if None in quick:
            return self._exact(), True
        return sum(n for n in quick if n is not None), False

    def records(self, read: int) -> int:
        """The files' records, given that the engine read ``read``: the line-break count
        when it agrees, else the quote-aware one (see the module docstring)."""
        counted, exact = self._counting.result()
        return counted if exact or counted == read else self._exact()
