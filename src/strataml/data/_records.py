"""Counting a CSV file's records with a parser other than the engine's.

The ingestion compares this count with what the engine's reader accounted for (accepted,
rejected, duplicate and skipped lines), so a record the reader drops unreported refuses
the batch instead of vanishing. The count runs on another thread while the engine reads.
"""

from __future__ import annotations

import mmap
import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

#: the parser's block: a record must fit in one (larger than the reader's 32 MiB buffer)
_BLOCK = 64 * 1024 * 1024
_COMPRESSED = (".gz", ".zst", ".bz2", ".xz", ".zip")


def countable(path: str) -> bool:
    """Whether ``path`` is a local, uncompressed file the counter can read."""
    return "://" not in path and not path.lower().endswith(_COMPRESSED) and os.path.isfile(path)


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


def count_later(jobs: list[tuple[str, str, str, str, int, str | None]]) -> Future[int]:
    """The summed :func:`count_records` of each job's file, on another thread."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="strata-count")
    try:
        return pool.submit(lambda: sum(count_records(*job) for job in jobs))
    finally:
        pool.shutdown(wait=False)
