"""Arrow columns as numpy arrays without pandas.

pyarrow's ``to_numpy`` imports pandas when it is installed (half a second of a
command's start); monitoring reads the buffers instead: a primitive column's values
buffer is the numpy array, its validity bitmap the null mask.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def _one(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    return values


def valid_mask(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """True where a value is not null."""
    arr = _one(values)
    n = len(arr)
    if arr.null_count == 0:
        return np.ones(n, dtype=bool)
    if arr.null_count == n or arr.buffers()[0] is None:
        return np.zeros(n, dtype=bool)
    bits = np.frombuffer(arr.buffers()[0], dtype=np.uint8)
    return np.unpackbits(bits, bitorder="little", count=arr.offset + n)[arr.offset :].astype(bool)


def float64_values(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A numeric (or null) column as float64, nulls as NaN (a read-only view when it can be)."""
    arr = _one(values)
    if not pa.types.is_float64(arr.type):
        arr = pc.cast(arr, pa.float64())
    n = len(arr)
    if n == 0 or arr.null_count == n:
        return np.full(n, np.nan)
    data = np.frombuffer(arr.buffers()[1], dtype=np.float64, count=arr.offset + n)[arr.offset :]
    if arr.null_count:
        data = np.where(valid_mask(arr), data, np.nan)
    return data


def int64_values(values: pa.Array | pa.ChunkedArray, null: int = 0) -> np.ndarray:
    """An integer or timestamp column as int64 (nulls as ``null``)."""
    arr = _one(values)
    if pa.types.is_timestamp(arr.type) or pa.types.is_date64(arr.type):
        arr = arr.view(pa.int64()) if arr.type.bit_width == 64 else pc.cast(arr, pa.int64())
    elif not pa.types.is_int64(arr.type):
        arr = pc.cast(arr, pa.int64())
    n = len(arr)
    if n == 0 or arr.null_count == n:
        return np.full(n, null, dtype=np.int64)
    data = np.frombuffer(arr.buffers()[1], dtype=np.int64, count=arr.offset + n)[arr.offset :]
    if arr.null_count:
        data = np.where(valid_mask(arr), data, null)
    return data
