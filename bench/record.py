"""Where every benchmark writes its figures: a section of BENCHMARKS.md, one per layer."""

from __future__ import annotations

from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
HEADER = """# Benchmarks

Figures are ratios against a baseline measured in the same run, on the same data, on a
2-core machine shared with other work; absolute times are given for context only and
vary with the machine's load. Each entry names the date, the machine (cores, DuckDB
version) and the exact command that reproduces it, run from the repository root.
"""


def record(section: str, entry: str, path: Path = BENCHMARKS) -> None:
    """Add ``entry`` at the end of ``## section`` (creating the file or the section)."""
    heading = f"## {section}"
    text = path.read_text() if path.exists() else HEADER
    lines = text.splitlines()
    if heading not in lines:
        lines += ["", heading]
    start = lines.index(heading)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    lines[end:end] = ["", *entry.strip("\n").splitlines(), ""]
    path.write_text("\n".join(lines).rstrip("\n") + "\n")
    print(f"\nrecorded in {path} under {heading}")
