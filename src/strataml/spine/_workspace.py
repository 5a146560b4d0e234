"""A workspace: a folder with ``strata.toml`` and ``definitions.py``, state in ``.strata/``.

:class:`Workspace` is the handle every layer receives: it resolves settings, opens
the catalog and the artifact store lazily, and loads the user's definitions.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from strataml.errors import ConfigError, NotFound, StrataError, UserCodeError, WorkspaceNotFound
from strataml.spine._artifacts import ArtifactStore, open_artifact_store
from strataml.spine._catalog import Catalog, open_catalog
from strataml.spine._settings import CONFIG_FILE, Settings, load_settings

DEFINITIONS_FILE = "definitions.py"

STRATA_TOML = """\
# strataml workspace settings. Every key can be overridden by a STRATA_<KEY>
# environment variable (STRATA_CATALOG, STRATA_ARTIFACTS, ...). Paths are relative
# to this folder; {state} is the state directory.
[strata]
state_dir = ".strata"
catalog = "sqlite:///{state}/catalog.db"      # or postgresql://user@host/db
artifacts = "{state}/artifacts"               # or s3://bucket/prefix
online = "sqlite:///{state}/online.db"        # or redis://host:6379/0
memory_limit = "1GB"                          # offline engine memory before spilling
"""

DEFINITIONS_PY = '''\
"""What this workspace declares: contracts, entities, feature views, models.

strataml reads every module-level object of its own types from this file.
"""

import strataml as st

# A contract describes one kind of incoming data and the rules each row must keep.
transactions = st.Contract(
    "transactions",
    key="tx_id",
    timestamp="ts",
    columns=[
        st.Column("tx_id", "string", unique=True),
        st.Column("user_id", "string"),
        st.Column("amount", "float", min=0),
        st.Column("refund", "float", nullable=True, min=0),
        st.Column("country", "string", allowed=["US", "DE", "FR", "GB"]),
        st.Column("merchant", "string", nullable=True, max_null_rate=0.05),
        st.Column("ts", "timestamp"),
    ],
    rules={"refund_le_amount": "refund IS NULL OR refund <= amount"},
)
'''


def find_workspace(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` holding ``strata.toml``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    raise WorkspaceNotFound(
        f"no {CONFIG_FILE} found in {here} or any folder above it",
        hint="run 'strata init' to create a workspace, or pass --workspace DIR (or set STRATA_WORKSPACE)",
    )


class Definitions:
    """The strataml objects a workspace's ``definitions.py`` declares, by kind and name."""

    def __init__(self, objects: list[Any], origin: str = "<code>") -> None:
        self.origin = origin
        self._by_kind: dict[str, dict[str, Any]] = {}
        for obj in objects:
            kind = getattr(type(obj), "__strata_kind__", None)
            if kind is None:
                continue
            bucket = self._by_kind.setdefault(kind, {})
            name = obj.name
            if name in bucket and bucket[name] is not obj:
                raise ConfigError(f"{origin} declares two {kind}s named {name!r}", hint="give each a unique name")
            bucket[name] = obj

    def all(self, kind: str) -> list[Any]:
        """Every declared object of ``kind`` (``contract``, ``entity``, ``feature_view``, ``model``…)."""
        return list(self._by_kind.get(kind, {}).values())

    def get(self, kind: str, name: str) -> Any:
        """One declared object; a clear error lists what exists when it is missing."""
        bucket = self._by_kind.get(kind, {})
        if name not in bucket:
            known = ", ".join(sorted(bucket)) or "none"
            raise NotFound(
                f"no {kind.replace('_', ' ')} named {name!r} in {self.origin} (declared: {known})",
                hint=f"declare it in {DEFINITIONS_FILE}",
            )
        return bucket[name]

    def add(self, obj: Any) -> None:
        """Declare one more object (for use from Python without a definitions file)."""
        kind = type(obj).__strata_kind__
        self._by_kind.setdefault(kind, {})[obj.name] = obj


def _where(exc: BaseException, path: Path | None) -> str:
    """``file:line`` of the innermost frame in ``path`` (or, without one, outside strataml)."""
    package = Path(__file__).resolve().parent.parent
    frames = traceback.extract_tb(exc.__traceback__)
    if path is not None:
        mine = [f for f in frames if Path(f.filename) == path]
    else:
        mine = [f for f in frames if package not in Path(f.filename).resolve().parents]
    return f"{mine[-1].filename}:{mine[-1].lineno}" if mine else (str(path) if path else "")


@contextlib.contextmanager
def user_code(what: str, path: Path | None = None, *, hint: str | None = None) -> Iterator[None]:
    """The boundary around code the user wrote: whatever it raises, ``SystemExit`` and
    ``GeneratorExit`` included, becomes a :class:`UserCodeError` naming the file and line
    (only Ctrl-C passes through as itself). ``what`` names the code for the message;
    ``path`` is its file, when it is one file."""
    try:
        yield
    except KeyboardInterrupt:
        raise
    except StrataError as exc:
        if path is None:
            raise _wrapped(exc, what, path, hint) from exc
        # a declaration strataml refused: its message and the line that made it, not our internals
        where = _where(exc, path) or what
        raise UserCodeError(f"{where}: {exc.message}", hint=exc.hint or hint) from exc
    except BaseException as exc:
        raise _wrapped(exc, what, path, hint) from exc


def _wrapped(exc: BaseException, what: str, path: Path | None, hint: str | None) -> UserCodeError:
    where = _where(exc, path) or what
    tb = "\n" + "".join(traceback.format_exception(exc)) if path is not None else ""
    return UserCodeError(f"{where}: {what} raised {type(exc).__name__}: {exc}{tb}", hint=hint or f"fix the error in {what}")


def load_definitions(path: Path) -> Definitions:
    """Execute a definitions file and collect the strataml objects it declares."""
    if not path.is_file():
        return Definitions([], str(path))
    module_name = f"_strata_definitions_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    try:
        with user_code(path.name, path, hint=f"fix the error in {path}"):
            spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return Definitions(list(vars(module).values()), str(path))


class Workspace:
    """The handle to a workspace's settings, catalog, artifacts and definitions."""

    def __init__(self, root: Path, settings: Settings | None = None, **overrides: Any) -> None:
        self.root = root.resolve()
        self.settings = settings or load_settings(self.root / CONFIG_FILE, **overrides)
        self._catalog: Catalog | None = None
        self._artifacts: ArtifactStore | None = None
        self._definitions: Definitions | None = None

    # --- construction ----------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path | None = None, **overrides: Any) -> Workspace:
        """Open the workspace at ``path``, or the one found from the current folder upward."""
        if path is None and os.environ.get("STRATA_WORKSPACE"):
            path = os.environ["STRATA_WORKSPACE"]
        root = Path(path) if path is not None else find_workspace()
        if not (root / CONFIG_FILE).is_file():
            raise WorkspaceNotFound(f"{root} is not a workspace (no {CONFIG_FILE})", hint=f"run 'strata init {root}'")
        return cls(root, **overrides)

    @classmethod
    def init(cls, path: str | Path = ".", *, example: bool = True) -> Workspace:
        """Create a workspace (``strata.toml``, ``definitions.py``, ``.strata/``) if absent."""
        root = Path(path)
        root.mkdir(parents=True, exist_ok=True)
        if not (root / CONFIG_FILE).exists():
            (root / CONFIG_FILE).write_text(STRATA_TOML)
        if example and not (root / DEFINITIONS_FILE).exists():
            (root / DEFINITIONS_FILE).write_text(DEFINITIONS_PY)
        ws = cls(root)
        ws.state_dir.mkdir(parents=True, exist_ok=True)
        gitignore = ws.state_dir / ".gitignore"
        if not gitignore.exists():
            gitignore.write_text("*\n")
        ws.catalog  # noqa: B018 - creates and migrates the catalog
        return ws

    # --- resolved locations ----------------------------------------------------------

    @property
    def state_dir(self) -> Path:
        """Where local state lives."""
        return (self.root / self.settings.state_dir).resolve()

    def resolve_url(self, url: str) -> str:
        """Expand ``{state}`` and make relative SQLite and file paths absolute."""
        url = url.replace("{state}", str(self.state_dir))
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            db = make_url(url).database or ""
            if db and db != ":memory:" and not Path(db).is_absolute():
                url = "sqlite:///" + str((self.root / db).resolve())
        elif "://" not in url:
            url = str((self.root / url).resolve())
        elif url.startswith("file://"):
            url = str((self.root / url[len("file://") :]).resolve())
        return url

    # --- services --------------------------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        """The catalog, opened and migrated on first use."""
        if self._catalog is None:
            self._catalog = open_catalog(self.resolve_url(self.settings.catalog))
        return self._catalog

    @property
    def artifacts(self) -> ArtifactStore:
        """The artifact store, opened on first use."""
        if self._artifacts is None:
            self._artifacts = open_artifact_store(
                self.resolve_url(self.settings.artifacts), cache_dir=self.state_dir / "cache"
            )
        return self._artifacts

    @property
    def definitions(self) -> Definitions:
        """The objects declared in ``definitions.py`` (loaded once)."""
        if self._definitions is None:
            self._definitions = load_definitions(self.root / DEFINITIONS_FILE)
        return self._definitions

    def reload_definitions(self) -> Definitions:
        """Read ``definitions.py`` again (after it changed) and return what it declares now."""
        self._definitions = None
        return self.definitions

    def scratch_dir(self) -> Path:
        """A local folder for temporary engine files (spills, staging)."""
        path = self.state_dir / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def close(self) -> None:
        """Release connections."""
        if self._catalog is not None:
            self._catalog.close()
            self._catalog = None

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
