import hashlib
import os
from pathlib import Path

import pytest

from strataml.errors import IntegrityError, NotFound, UnsafePath
from strataml.spine import ArtifactStore, confine, confine_key, open_artifact_store


def test_put_and_read_are_content_addressed(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "a"))
    sha = store.put_bytes(b"hello")
    assert sha == hashlib.sha256(b"hello").hexdigest()
    assert store.read_bytes(sha) == b"hello"
    assert store.put_bytes(b"hello") == sha  # written once
    f = tmp_path / "f.bin"
    f.write_bytes(b"x" * 3_000_000)
    sha2 = store.put_file(f, move=True)
    assert not f.exists()
    assert store.local_path(sha2).read_bytes() == b"x" * 3_000_000
    assert not list((tmp_path / "a" / "tmp").iterdir())  # no temp files left


def test_tampered_file_is_refused(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "a"))
    sha = store.put_bytes(b"model weights")
    path = Path(store.uri(sha))
    os.chmod(path, 0o644)
    path.write_bytes(b"model weightz")
    with pytest.raises(IntegrityError, match="does not match its sha256"):
        store.read_bytes(sha)
    with pytest.raises(IntegrityError):
        store.local_path(sha)


def test_missing_object_is_not_found(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "a"))
    with pytest.raises(NotFound):
        store.read_bytes("0" * 64)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "/etc/passwd", "a/../../b", "..", "x" * 63, "A" * 64])
def test_keys_must_be_digests(tmp_path: Path, bad: str) -> None:
    store = ArtifactStore(str(tmp_path / "a"))
    with pytest.raises(UnsafePath):
        store.read_bytes(bad)


def test_confine_refuses_escapes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside").mkdir()
    (root / "link").symlink_to(tmp_path / "outside")
    assert confine(root, "a/b.txt") == (root / "a" / "b.txt").resolve()
    for bad in ("../x", "/etc/passwd", "a/../../x", "link/secret", "~/x", "a\x00b"):
        with pytest.raises(UnsafePath):
            confine(root, bad)
    for bad in ("../x", "/x", "a/./b", "C:/x", ""):
        with pytest.raises(UnsafePath):
            confine_key(bad)
    assert confine_key("a//b/c") == "a/b/c"


@pytest.mark.s3
def test_s3_store_against_local_server(s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket="artifacts")
    monkeypatch.setenv("STRATA_S3_ENDPOINT", s3_endpoint)
    store = ArtifactStore("s3://artifacts/strata", cache_dir=tmp_path / "cache")
    sha = store.put_bytes(b"remote bytes")
    assert store.exists(sha)
    assert store.read_bytes(sha) == b"remote bytes"
    assert store.local_path(sha).read_bytes() == b"remote bytes"
    # tamper with the remote object: reads are refused
    boto3.client("s3", endpoint_url=s3_endpoint).put_object(
        Bucket="artifacts", Key=f"strata/objects/{sha[:2]}/{sha}", Body=b"evil"
    )
    with pytest.raises(IntegrityError):
        store.read_bytes(sha)
    (tmp_path / "cache" / sha[:2] / sha).unlink()
    with pytest.raises(IntegrityError):
        store.local_path(sha)


def test_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from strataml.errors import MissingExtra

    monkeypatch.setitem(sys.modules, "s3fs", None)  # as if the package were not installed
    with pytest.raises(MissingExtra) as err:
        open_artifact_store("s3://bucket/prefix")
    assert "pip install 'strataml[s3]'" in str(err.value)
