"""The backend registry: a URL's scheme picks the implementation, third-party packages add schemes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from strataml.errors import ConfigError, MissingExtra
from strataml.features import SQLiteOnlineStore, open_online_store
from strataml.serving._cache import MemoryCache, open_cache
from strataml.serving._ratelimit import MemoryBuckets, SQLiteBuckets, open_buckets
from strataml.spine import Backend, BackendKind, scheme_of


def test_the_scheme_picks_the_implementation(tmp_path: Path) -> None:
    store = open_online_store(f"sqlite:///{tmp_path / 'online.db'}")
    assert isinstance(store, SQLiteOnlineStore)
    store.close()
    assert isinstance(open_cache(None), MemoryCache)
    assert isinstance(open_cache("memory://"), MemoryCache)
    assert isinstance(open_buckets("memory://"), MemoryBuckets)
    assert isinstance(open_buckets(f"sqlite:///{tmp_path / 'rl.db'}"), SQLiteBuckets)
    assert scheme_of("REDIS://h:1/0") == "redis" and scheme_of("no-scheme") == ""


def test_an_unknown_scheme_names_the_known_ones_and_hides_credentials() -> None:
    with pytest.raises(ConfigError, match="unknown scheme 'memcached'") as info:
        open_cache("memcached://user:secret@host:11211")
    assert "secret" not in info.value.message
    assert "memory://" in (info.value.hint or "") and "redis://" in (info.value.hint or "")


def test_a_missing_optional_dependency_is_named_with_its_pip_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "strata_probe_backend.py").write_text("import strata_probe_absent_lib\nclass Store: ...\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    kind = BackendKind("online_store", "setting 'online'", {"probe": Backend("strata_probe_backend:Store", ("strata_probe_absent_lib", "probe"))})
    with pytest.raises(MissingExtra, match="strata_probe_absent_lib") as info:
        kind.resolve("probe://x")
    assert info.value.hint == "pip install 'strataml[probe]'"


def test_a_third_party_package_adds_a_scheme_through_entry_points(tmp_path: Path, cli_env: dict[str, str]) -> None:
    # an installed distribution, as pip lays it out: a module and its dist-info with entry points
    (tmp_path / "kvstore.py").write_text(
        "from strataml.features import SQLiteOnlineStore\n"
        "class KVStore(SQLiteOnlineStore):\n"
        "    def __init__(self, url):\n"
        "        super().__init__(url.replace('kv://', 'sqlite://', 1))\n"
    )
    info = tmp_path / "kvstore-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: kvstore\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[strataml.backends]\nonline_store:kv = kvstore:KVStore\n")
    code = (
        "import sys; from strataml.features import open_online_store; "
        f"s = open_online_store('kv:///{tmp_path / 'kv.db'}'); print(type(s).__name__); s.close()"
    )
    env = dict(cli_env, PYTHONPATH=f"{tmp_path}:{cli_env['PYTHONPATH']}")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "KVStore"
