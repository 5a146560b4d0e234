"""The prediction log's writer process: appends what its pipe brings, flushes, and acknowledges.

:class:`strataml.serving._audit.AuditLog` starts one per log file with ``python -I -c``
and this file's source (isolated: it imports nothing from the environment), so that
writing and ``fdatasync`` never take the serving process's interpreter lock. It reads
encoded lines from stdin; after each write + ``fdatasync`` it answers on stdout with
the total number of bytes on disk (8 bytes, little-endian), ``2**64 - 1`` when it
fails. Arguments: directory, file name prefix, rotation size in bytes, ``1`` to flush.

Files grow in zero-filled steps ahead of the data and are overwritten in place (each
``fdatasync`` is then a plain data flush, not a journal commit of a new file size),
and are cut to their data when rotated or closed.
"""

import contextlib
import os
import struct
import sys

CHUNK, ZEROS = 4 << 20, bytes(1 << 20)
FAILED = 2**64 - 1


class _File:
    def __init__(self, directory: str, prefix: str, flush: bool) -> None:
        self.directory, self.prefix, self.flush = directory, prefix, flush
        self.seq = self.fd = -1
        self.pos = self.allocated = 0

    def open_next(self) -> None:
        if self.fd >= 0:
            os.ftruncate(self.fd, self.pos)
            os.close(self.fd)
        self.seq += 1
        path = os.path.join(self.directory, f"{self.prefix}-{self.seq:04d}.jsonl")
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o640)
        self.pos = self.allocated = 0
        dfd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dfd)  # the new file's name survives a crash too
        finally:
            os.close(dfd)

    def reserve(self, n: int) -> None:
        while self.pos + n > self.allocated:
            end = self.allocated + CHUNK
            while self.allocated < end:
                self.allocated += os.pwrite(self.fd, ZEROS, self.allocated)
            if self.flush:
                os.fdatasync(self.fd)

    def write(self, data: bytes) -> None:
        self.reserve(len(data))
        view = memoryview(data)
        while view:
            n = os.pwrite(self.fd, view, self.pos)
            self.pos += n
            view = view[n:]
        if self.flush:
            os.fdatasync(self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.ftruncate(self.fd, self.pos)
            os.close(self.fd)
            self.fd = -1


def _read_pending(inp: int) -> bytes:
    """What the pipe holds now (at least one read, blocking): all of it goes into one flush."""
    data = os.read(inp, 1 << 16)
    if len(data) < 1 << 16:
        return data
    parts = [data]
    os.set_blocking(inp, False)
    try:
        while len(parts[-1]) == 1 << 16:
            parts.append(os.read(inp, 1 << 16))
    except BlockingIOError:
        pass
    os.set_blocking(inp, True)
    return b"".join(parts)


def main(argv: list[str]) -> int:
    """Serve one log file until stdin closes; returns the exit status."""
    directory, prefix, rotate, flush = argv[0], argv[1], int(argv[2]), argv[3] == "1"
    inp, out = sys.stdin.fileno(), sys.stdout.fileno()
    f = _File(directory, prefix, flush)
    total = 0
    try:
        f.open_next()
        os.write(out, struct.pack("<Q", 0))  # ready: the first file exists
        while True:
            data = _read_pending(inp)
            if not data:
                break
            f.write(data)
            total += len(data)
            os.write(out, struct.pack("<Q", total))
            if f.pos >= rotate and data.endswith(b"\n"):
                f.open_next()
        f.close()
    except BaseException as exc:
        sys.stderr.write(f"strataml prediction log writer failed: {exc!r}\n")
        with contextlib.suppress(OSError):
            os.write(out, struct.pack("<Q", FAILED))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
