"""The content-addressed artifact store on fsspec.

Every file is stored once under its sha256 (``objects/ab/abcd…``), written
atomically (temp + rename locally; a single PUT or multipart commit on object
stores), never overwritten, and verified against its hash on every read: a file
whose bytes changed is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import socket
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, BinaryIO

from strataml.errors import IntegrityError, NotFound, StrataError, UnsafePath
from strataml.spine._backends import Backend, BackendKind, scheme_of
from strataml.spine._processes import process_alive

_SHA = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20

_STORE = "strataml.spine._artifacts:ArtifactStore"
#: the artifact-store backends, by URL scheme (a path without a scheme is a local folder)
BACKENDS = BackendKind(
    "artifact_store",
    "setting 'artifacts' / STRATA_ARTIFACTS",
    {
        "": Backend(_STORE),
        "file": Backend(_STORE),
        "local": Backend(_STORE),
        "memory": Backend(_STORE),
        "s3": Backend(_STORE, ("s3fs", "s3")),
        "s3a": Backend(_STORE, ("s3fs", "s3")),
        "gs": Backend(_STORE, ("gcsfs", "gcs")),
        "gcs": Backend(_STORE, ("gcsfs", "gcs")),
        "az": Backend(_STORE, ("adlfs", "azure")),
        "abfs": Backend(_STORE, ("adlfs", "azure")),
    },
)


#: an untagged staging entry (written before entries named their owner) is an orphan after this
LEGACY_AGE = 24 * 3600
_SWEEP_EVERY = 60.0


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname()) or "host"


def owner_tag() -> str:
    """The prefix of a temporary entry this process owns: ``<host>~<pid>~``."""
    return f"{_host()}~{os.getpid()}~"


def owner_alive(name: str) -> bool | None:
    """Whether the process that made a temporary entry lives (None: not this host's, or untagged)."""
    parts = name.split("~")
    if len(parts) < 3 or not parts[1].isdigit():
        return None
    if parts[0] != _host():
        return None
    return process_alive(int(parts[1]))


def orphans(folder: Path, prefix: str = "", *, legacy_age: float = LEGACY_AGE) -> list[Path]:
    """Entries of a temporary folder no live process owns: their owner died, or they are
    untagged and older than ``legacy_age`` seconds."""
    found = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    now = time.time()
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        alive = owner_alive(entry.name[len(prefix):])
        if alive is False:
            found.append(Path(entry.path))
        elif alive is None and "~" not in entry.name[len(prefix):]:
            try:
                old = now - entry.stat(follow_symlinks=False).st_mtime > legacy_age
            except OSError:
                continue
            if old:
                found.append(Path(entry.path))
    return sorted(found)


def remove(path: Path) -> int:
    """Delete a file or folder; the bytes it freed."""
    size = 0
    try:
        if path.is_dir() and not path.is_symlink():
            for root, _, files in os.walk(path):
                for f in files:
                    with contextlib.suppress(OSError):
                        size += os.lstat(os.path.join(root, f)).st_size
            shutil.rmtree(path, ignore_errors=True)
        else:
            size = os.lstat(path).st_size
            path.unlink(missing_ok=True)
    except OSError:
        pass
    return size


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The sha256 of a local file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _sha256_stream(fh: BinaryIO) -> str:
    h = hashlib.sha256()
    while chunk := fh.read(_CHUNK):
        h.update(chunk)
    return h.hexdigest()


def check_sha(sha: str) -> str:
    """Refuse anything that is not a lowercase hex sha256 (it becomes part of a path)."""
    if not isinstance(sha, str) or not _SHA.fullmatch(sha):
        raise UnsafePath(f"{sha!r} is not a sha256 digest")
    return sha


def open_artifact_store(url: str, *, cache_dir: Path | None = None, storage_options: dict[str, Any] | None = None) -> ArtifactStore:
    """The artifact store a path or URL names (``s3://…`` and the others of :data:`BACKENDS`)."""
    store: ArtifactStore = BACKENDS.resolve(url)(url, cache_dir=cache_dir, storage_options=storage_options)
    return store


class ArtifactStore:
    """Write-once, hash-verified file storage at a local path or fsspec URL.

    Open one with :func:`open_artifact_store`, which checks the scheme's extra is installed.
    """

    def __init__(self, url: str, *, cache_dir: Path | None = None, storage_options: dict[str, Any] | None = None) -> None:
        import fsspec

        self.url = url.rstrip("/")
        scheme = scheme_of(url) or "file"
        options = dict(storage_options or {})
        if scheme in ("s3", "s3a") and "endpoint_url" not in options and os.environ.get("STRATA_S3_ENDPOINT"):
            options["endpoint_url"] = os.environ["STRATA_S3_ENDPOINT"]
        self.fs, self.root = fsspec.core.url_to_fs(self.url, **options)
        self.is_local = scheme in ("file", "local")
        if self.is_local:
            self.root = str(Path(self.root).resolve())
            Path(self.root, "objects").mkdir(parents=True, exist_ok=True)
            Path(self.root, "tmp").mkdir(parents=True, exist_ok=True)
        self.cache_dir = cache_dir
        self._swept = -_SWEEP_EVERY

    # --- keys ------------------------------------------------------------------------

    def _key(self, sha: str) -> str:
        check_sha(sha)
        return f"{self.root}/objects/{sha[:2]}/{sha}"

    def uri(self, sha: str) -> str:
        """The full URI of an object (for display)."""
        key = self._key(sha)
        return key if self.is_local else f"{self.url.split('://', 1)[0]}://{key}"

    def exists(self, sha: str) -> bool:
        """Whether the object is stored (its content is not checked)."""
        return bool(self.fs.exists(self._key(sha)))

    # --- writes ----------------------------------------------------------------------

    @property
    def tmp_dirs(self) -> list[tuple[Path, str]]:
        """The folders (and name prefixes) where this store's writers stage files."""
        dirs = [(Path(tempfile.gettempdir()), "strata-stage-"), (Path(tempfile.gettempdir()), "strata-http-")]
        return [(Path(self.root, "tmp"), ""), *dirs] if self.is_local else dirs

    def sweep(self) -> None:
        """Remove what killed writers left in the staging folders (at most once a minute)."""
        now = time.monotonic()
        if now - self._swept < _SWEEP_EVERY:
            return
        self._swept = now
        for folder, prefix in self.tmp_dirs:
            for path in orphans(folder, prefix):
                remove(path)

    def staging_dir(self) -> Path:
        """A fresh local directory for files about to be stored (same disk as a local store).

        Its name says which process owns it, so that the next write (or ``strata gc``)
        removes it once that process is gone, however it ended."""
        self.sweep()
        if self.is_local:
            path = Path(self.root, "tmp", owner_tag() + uuid.uuid4().hex)
            path.mkdir(parents=True)
            return path
        return Path(tempfile.mkdtemp(prefix="strata-stage-" + owner_tag()))

    def put_file(self, path: str | os.PathLike[str], *, move: bool = False, sha: str | None = None) -> str:
        """Store a local file; returns its sha256. With ``move`` the file may be consumed."""
        digest = sha or sha256_file(path)
        key = self._key(digest)
        if self.fs.exists(key):
            if move:
                os.unlink(path)
            return digest
        if self.is_local:
            Path(key).parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(self.root, "tmp", f"{owner_tag()}{uuid.uuid4().hex}.part")
            if move:
                os.replace(path, tmp)
            else:
                shutil.copyfile(path, tmp)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o444)
            os.replace(tmp, key)
            _fsync_dir(Path(key).parent)
        else:
            try:
                self.fs.put_file(os.fspath(path), key)
            except Exception as exc:
                raise StrataError(f"could not write {self.uri(digest)}: {exc}") from exc
            if move:
                os.unlink(path)
        return digest

    def put_bytes(self, data: bytes) -> str:
        """Store bytes; returns their sha256."""
        digest = hashlib.sha256(data).hexdigest()
        if self.exists(digest):
            return digest
        stage = self.staging_dir()
        try:
            tmp = stage / "blob"
            tmp.write_bytes(data)
            return self.put_file(tmp, move=True, sha=digest)
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    # --- reads -----------------------------------------------------------------------

    def _missing(self, sha: str) -> NotFound:
        return NotFound(f"artifact {sha} is missing from {self.url}", hint="the store was changed by hand; restore it from a backup")

    def read_bytes(self, sha: str) -> bytes:
        """The object's bytes, verified against its hash."""
        key = self._key(sha)
        try:
            with self.fs.open(key, "rb") as fh:
                data: bytes = fh.read()
        except FileNotFoundError:
            raise self._missing(sha) from None
        if hashlib.sha256(data).hexdigest() != sha:
            raise self._tampered(sha)
        return data

    def _tampered(self, sha: str) -> IntegrityError:
        return IntegrityError(
            f"artifact {self.uri(sha)} does not match its sha256 {sha}: it was modified or corrupted, so it is refused",
            hint="restore the file from a backup or re-create the version that produced it",
        )

    def verify(self, sha: str) -> None:
        """Raise :class:`IntegrityError` unless the stored bytes hash to ``sha``."""
        key = self._key(sha)
        try:
            with self.fs.open(key, "rb") as fh:
                actual = _sha256_stream(fh)
        except FileNotFoundError:
            raise self._missing(sha) from None
        if actual != sha:
            raise self._tampered(sha)

    def local_path(self, sha: str) -> Path:
        """A verified local path to the object (downloaded into the cache for remote stores)."""
        if self.is_local:
            self.verify(sha)
            return Path(self._key(sha))
        if self.cache_dir is None:
            self.cache_dir = Path(tempfile.gettempdir()) / "strata-cache"
        target = self.cache_dir / sha[:2] / sha
        if target.exists():
            if sha256_file(target) == sha:
                return target
            target.unlink()
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{uuid.uuid4().hex}.part")
        try:
            self.fs.get_file(self._key(sha), str(tmp))
        except FileNotFoundError:
            raise self._missing(sha) from None
        if sha256_file(tmp) != sha:
            tmp.unlink(missing_ok=True)
            raise self._tampered(sha)
        os.replace(tmp, target)
        return target


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
