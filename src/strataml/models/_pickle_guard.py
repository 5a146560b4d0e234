"""The pickle guard every model format runs first: a pickle stream is never loaded.

A leaf module, so that every format (and :mod:`strataml.models._serialization`, which
dispatches between them) can share it without importing each other.
"""

from __future__ import annotations

import io
import zipfile

from strataml.errors import UnsafeModel


def refuse_pickle(data: bytes, where: str) -> None:
    """Raise :class:`UnsafeModel` if ``data`` is (or wraps) a pickle stream."""
    if len(data) >= 2 and data[0] == 0x80 and data[1] <= 5:
        raise UnsafeModel(f"{where} is a pickle stream; strataml never loads pickle", hint="re-create the model with 'strata train' (native or skops formats)")
    if data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                names = z.namelist()
        except zipfile.BadZipFile:
            return
        if any(n.endswith((".pkl", ".pickle")) or n.endswith("/data.pkl") for n in names):
            raise UnsafeModel(f"{where} contains a pickle file; strataml never loads pickle")
