"""The Parquet part files an ingestion's ``COPY`` writes: listed in the order written,
named in SQL, and hashed ahead of storing them."""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from strataml.spine import quote_literal, sha256_file


def parts(out: Path) -> list[Path]:
    """The Parquet files a COPY wrote to ``out``, in the order it wrote them (part_0, part_1, …)."""
    return sorted(out.glob("part_*.parquet"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))


def _digest_all(paths: list[Path]) -> dict[Path, str]:
    digests = {}
    for path in paths:
        digests[path] = sha256_file(path)
        with open(path, "rb") as fh:  # storing it then finds nothing left to flush
            os.fsync(fh.fileno())
    return digests


def digest_later(paths: list[Path]) -> Future[dict[Path, str]]:
    """The sha256 of each file (flushed to disk), computed on another thread."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="strata-digest")
    try:
        return pool.submit(_digest_all, paths)
    finally:
        pool.shutdown(wait=False)


def file_list(paths: list[Path]) -> str:
    """A SQL list literal of the paths."""
    return "[" + ", ".join(quote_literal(str(p)) for p in paths) + "]"
