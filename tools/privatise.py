"""Make every implementation module of the layers private (``name.py`` → ``_name.py``) and
rewrite every reference to it, so that each layer's ``__init__.py`` is its only public door.

What is renamed: every ``.py`` module under ``src/strataml/<layer>/`` (sub-packages
included) for the layers in :data:`LAYERS`, except package doors (``__init__.py``),
``__main__.py``, modules already private, catalog migrations (``m<NNNN>_*.py``: their
module name is the id recorded in existing catalogs) and the public modules in
:data:`KEEP` (the CLI's entry point). Top-level modules (``strataml.errors``,
``strataml.testing``, ``strataml.demo``…) are doors themselves and stay as they are.
Sub-package directories keep their names; their modules are renamed inside them.

What is rewritten, in ``src/``, ``tests/``, ``bench/``, ``tools/``, ``README.md``,
``pyproject.toml`` and ``docs/``:

- absolute dotted references wherever they appear: imports, ``"pkg.mod:attr"`` backend
  registry strings, monkeypatch and ``import_module`` strings, entry points, ``:mod:``
  references in docs (``strataml.serving.audit`` → ``strataml.serving._audit``);
- ``from strataml.pkg import mod`` (a module imported as a package attribute) becomes
  ``from strataml.pkg import _mod as mod``, so the code using ``mod`` is unchanged;
- relative imports (``from .mod import x``, ``from . import mod``) in ``src/``;
- the module part of each door's lazy ``_EXPORTS`` table (``"audit:query"`` →
  ``"_audit:query"``);
- file names: ``strataml/pkg/mod.py`` paths, and ``"mod.py"`` strings in modules of the
  same directory (e.g. ``Path(__file__).with_name("audit_writer.py")``).

A door may export a name equal to a module's (``strataml.data.ingest`` is the function
the data door exports, and was also its module): such a dotted name is rewritten only
where it can only mean the module (followed by ``.`` or ``:``, a whole quoted string, or
an ``import`` statement), never in prose like ``:func:`strataml.data.ingest```.

Idempotent and re-runnable: a second run finds nothing to rename and nothing to rewrite.
On a tree that gained modules or code written against the old names (a merged branch),
it renames the new public modules and rewrites stale references to any private module
``_x.py`` whose ``x.py`` no longer exists.

Usage (from the repository root, on a clean work tree; review ``git diff`` afterwards)::

    python tools/privatise.py --dry-run   # print the renames and the files it would change
    python tools/privatise.py             # git mv the modules and rewrite the references
    python tools/privatise.py --no-git    # plain renames (a tree that is not a git checkout)

Then run ``ruff check --fix`` (import order), ``mypy src``, the import structure check
and the tests.
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: the packages whose implementation modules become private
LAYERS = (
    "spine",
    "data",
    "features",
    "models",
    "serving",
    "monitoring",
    "pipelines",
    "cli",
    "dashboard",
)
#: public modules inside those packages that stay as they are (doors and entry points)
KEEP = frozenset({"strataml.cli.main"})
MIGRATION = re.compile(r"^m\d{4}_")
#: where references are rewritten, relative to the repository root
TEXT = (
    "src/**/*.py",
    "tests/**/*.py",
    "bench/**/*.py",
    "tools/**/*.py",
    "README.md",
    "pyproject.toml",
    "docs/**/*.md",
    "docs/**/*.rst",
)


@dataclass(frozen=True)
class Module:
    """One module whose public name becomes private."""

    old: str  # strataml.serving.audit
    new: str  # strataml.serving._audit
    path: Path  # its file now (old or new name)
    pending: bool  # True: still to be renamed; False: already private (references may be stale)

    @property
    def package(self) -> str:
        return self.old.rsplit(".", 1)[0]

    @property
    def stem(self) -> str:
        return self.old.rsplit(".", 1)[1]


def _dotted(src: Path, path: Path) -> str:
    return ".".join(path.relative_to(src).with_suffix("").parts)


def find_modules(root: Path) -> list[Module]:
    """The modules to rename, and the already private ones whose public name no longer exists."""
    src = root / "src"
    out: list[Module] = []
    for layer in LAYERS:
        base = src / "strataml" / layer
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.py")):
            if "__pycache__" in path.parts or not (path.parent / "__init__.py").is_file():
                continue
            name = path.stem
            if (
                name in ("__init__", "__main__")
                or MIGRATION.match(name)
                or "migrations" in path.parent.name
            ):
                continue
            if name.startswith("_"):
                public = path.with_name(name[1:] + ".py")
                if (
                    not name.startswith("__")
                    and not public.exists()
                    and not path.with_name(name[1:]).is_dir()
                ):
                    pkg = _dotted(src, path.parent)
                    out.append(Module(f"{pkg}.{name[1:]}", f"{pkg}.{name}", path, pending=False))
                continue
            dotted = _dotted(src, path)
            if dotted in KEEP:
                continue
            out.append(Module(dotted, dotted.rsplit(".", 1)[0] + "._" + name, path, pending=True))
    return out


def door_names(src: Path, package: str) -> set[str]:
    """The names a package's door exports (its ``_EXPORTS`` keys and ``__all__``)."""
    init = src.joinpath(*package.split(".")) / "__init__.py"
    if not init.is_file():
        return set()
    names: set[str] = set()
    for node in ast.walk(ast.parse(init.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id in ("_EXPORTS", "__all__") for t in node.targets
        ):
            if isinstance(node.value, ast.Dict):
                names |= {
                    k.value
                    for k in node.value.keys
                    if isinstance(k, ast.Constant) and isinstance(k.value, str)
                }
            elif isinstance(node.value, ast.List | ast.Tuple):
                names |= {
                    e.value
                    for e in node.value.elts
                    if isinstance(e, ast.Constant) and isinstance(e.value, str)
                }
    return names


# --- rewriting -------------------------------------------------------------------------


class Rewriter:
    """Rewrites references to the old module names in one text."""

    def __init__(self, root: Path, modules: list[Module]) -> None:
        self.src = root / "src"
        self._doors: dict[str, set[str]] = {}
        self.by_old = {m.old: m for m in modules}
        self.clashes = {m.old for m in modules if m.stem in door_names(self.src, m.package)}
        olds = sorted(self.by_old, key=len, reverse=True)
        self.dotted = (
            re.compile(r"(?<![\w.])(" + "|".join(re.escape(o) for o in olds) + r")(?![\w])")
            if olds
            else None
        )
        self.paths = {
            "/".join(m.old.split(".")) + ".py": "/".join(m.new.split(".")) + ".py" for m in modules
        }
        paths = sorted(self.paths, key=len, reverse=True)
        self.path_re = (
            re.compile(r"(?<![\w])(" + "|".join(re.escape(p) for p in paths) + r")")
            if paths
            else None
        )

    # python-aware edits: from-imports of modules as attributes, relative imports, _EXPORTS

    def python(self, text: str, path: Path) -> str:
        try:
            tree = ast.parse(text)
        except SyntaxError:
            return text
        lines = text.splitlines(keepends=True)
        starts = [0]
        for line in lines:
            starts.append(starts[-1] + len(line))

        def offset(lineno: int, col: int) -> int:
            # ast columns are utf-8 byte offsets
            return starts[lineno - 1] + len(lines[lineno - 1].encode("utf-8")[:col].decode("utf-8"))

        edits: list[tuple[int, int, str]] = []
        package = self._package_of(path)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = self._absolute(node, package)
                if base is None:
                    continue
                if node.level and base in self.by_old:  # from .mod import x
                    seg_start = offset(node.lineno, node.col_offset)
                    m = re.match(r"from\s+(\.+)([\w.]*)\s+import", text[seg_start:])
                    if m:
                        rel = (
                            self.by_old[base].new.removeprefix(
                                self._base_package(node, package) + "."
                            )
                            if node.module
                            else ""
                        )
                        edits.append(
                            (seg_start + m.start(2), seg_start + m.end(2), rel or m.group(2))
                        )
                exported = self._doors.setdefault(base, door_names(self.src, base))
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    if (
                        full in self.by_old
                        and alias.name not in exported
                        and alias.lineno is not None
                    ):
                        new = self.by_old[full].new.rsplit(".", 1)[1]
                        s, e = (
                            offset(alias.lineno, alias.col_offset),
                            offset(alias.end_lineno or alias.lineno, alias.end_col_offset or 0),
                        )
                        edits.append((s, e, f"{new} as {alias.asname or alias.name}"))
            elif (
                path.name == "__init__.py"
                and package
                and isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Dict)
            ):
                if not any(isinstance(t, ast.Name) and t.id == "_EXPORTS" for t in node.targets):
                    continue
                for v in node.value.values:
                    if not (isinstance(v, ast.Constant) and isinstance(v.value, str)):
                        continue
                    module, sep, attr = v.value.partition(":")
                    full = f"{package}.{module}"
                    if full in self.by_old:
                        rel = self.by_old[full].new.removeprefix(package + ".")
                        s, e = (
                            offset(v.lineno, v.col_offset),
                            offset(v.end_lineno or v.lineno, v.end_col_offset or 0),
                        )
                        quote = text[s]
                        edits.append((s, e, f"{quote}{rel}{sep}{attr}{quote}"))
        for s, e, new in sorted(edits, reverse=True):
            text = text[:s] + new + text[e:]
        # "mod.py" names of modules in this file's own directory
        for mod in self.by_old.values():
            if mod.pending and mod.path.parent == path.parent:
                text = re.sub(
                    rf"(['\"]){re.escape(mod.stem)}\.py\1", rf"\g<1>_{mod.stem}.py\g<1>", text
                )
        return text

    def _package_of(self, path: Path) -> str:
        try:
            rel = path.resolve().relative_to(self.src.resolve())
        except ValueError:
            return ""
        return ".".join(rel.parent.parts)

    @staticmethod
    def _base_package(node: ast.ImportFrom, package: str) -> str:
        parts = package.split(".")
        return ".".join(parts[: len(parts) - node.level + 1])

    def _absolute(self, node: ast.ImportFrom, package: str) -> str | None:
        if not node.level:
            return node.module
        if not package:
            return None
        base = self._base_package(node, package)
        return f"{base}.{node.module}" if node.module else base

    # text edits: dotted names and file paths, in any file

    def dotted_names(self, text: str) -> str:
        if self.dotted is None:
            return text

        def replace(m: re.Match[str]) -> str:
            old = m.group(1)
            new = self.by_old[old].new
            if old not in self.clashes:
                return new
            after = text[m.end() : m.end() + 1]
            before = text[m.start() - 1 : m.start()] if m.start() else ""
            line_start = text.rfind("\n", 0, m.start()) + 1
            stmt = text[line_start : m.start()].strip()
            if (
                after in (".", ":")
                or (before in ("'", '"') and after == before)
                or stmt in ("import", "from")
            ):
                return new
            return old  # the door's function or class of the same name

        return self.dotted.sub(replace, text)

    def file_paths(self, text: str) -> str:
        if self.path_re is None:
            return text
        return self.path_re.sub(lambda m: self.paths[m.group(1)], text)

    def rewrite(self, path: Path) -> str:
        text = path.read_text(encoding="utf-8")
        out = self.python(text, path) if path.suffix == ".py" else text
        return self.file_paths(self.dotted_names(out))


def text_files(root: Path) -> Iterator[Path]:
    seen: set[Path] = set()
    for pattern in TEXT:
        for path in sorted(root.glob(pattern)):
            if (
                path.is_file()
                and "__pycache__" not in path.parts
                and path not in seen
                and path.resolve() != Path(__file__).resolve()
            ):
                seen.add(path)
                yield path


def rename(path: Path, target: Path, use_git: bool) -> None:
    """``git mv`` for a tracked file (history follows it), a plain rename for any other."""
    tracked = (
        use_git
        and subprocess.run(
            ["git", "ls-files", "--error-unmatch", path.name], cwd=path.parent, capture_output=True
        ).returncode
        == 0
    )
    if tracked:
        subprocess.run(["git", "mv", path.name, target.name], check=True, cwd=path.parent)
    else:
        path.rename(target)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--root",
        type=Path,
        default=Path.cwd(),
        help="the repository root (default: the current directory)",
    )
    ap.add_argument(
        "--dry-run", action="store_true", help="print what would change; change nothing"
    )
    ap.add_argument("--no-git", action="store_true", help="rename files without git mv")
    args = ap.parse_args(argv)
    root = args.root.resolve()
    if not (root / "src" / "strataml" / "__init__.py").is_file():
        print(f"{root} is not a strataml checkout (no src/strataml)", file=sys.stderr)
        return 2
    modules = find_modules(root)
    pending = [m for m in modules if m.pending]
    clashing = [m for m in pending if m.path.with_name(f"_{m.stem}.py").exists()]
    if clashing:
        for m in clashing:
            print(
                f"refused: {m.path} and its private name _{m.stem}.py both exist; merge them first",
                file=sys.stderr,
            )
        return 1
    rewriter = Rewriter(root, modules)
    changed: dict[Path, str] = {}
    for path in text_files(root):
        new = rewriter.rewrite(path)
        if new != path.read_text(encoding="utf-8"):
            changed[path] = new
    for m in pending:
        print(f"rename {m.old} -> {m.new}")
    for path in changed:
        print(f"rewrite {path.relative_to(root)}")
    if not pending and not changed:
        print("nothing to do: every layer module is private and no reference uses an old name")
    if args.dry_run:
        return 0
    for path, text in changed.items():
        path.write_text(text, encoding="utf-8")
    for m in pending:
        rename(m.path, m.path.with_name(f"_{m.stem}.py"), use_git=not args.no_git)
    return 0


if __name__ == "__main__":
    sys.exit(main())
