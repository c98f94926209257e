"""Assemble docs/benchmarks.md from the per-benchmark reports in docs/benchmarks/.

Each benchmark writes its own printed table and the command that produced it into
``docs/benchmarks/<name>.md``; this script puts them together, in a fixed order, under one index.

Run: ``.venv/bin/python benchmarks/collect.py``
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORDER = [
    "assignment",
    "stats",
    "refresh",
    "uplift",
    "strategy",
    "pacing_service",
    "ledger_cap",
    "scale",
    "spark_load",
]
INTRO = """# liftlab benchmarks

Every table compares liftlab with its peers in the same run (ratios), on this project's 2-core
development machine, which other jobs were sharing while most of these ran: read the ratios rather
than the absolute times. Each section names the exact command that produced it; the per-benchmark
files live in `docs/benchmarks/`, and `.venv/bin/python benchmarks/collect.py` rebuilds this page.
"""


def main() -> None:
    parts = sorted((ROOT / "docs" / "benchmarks").glob("*.md"))
    ranked = sorted(parts, key=lambda p: (ORDER.index(p.stem) if p.stem in ORDER else 99, p.stem))
    sections = [INTRO]
    for path in ranked:
        text = path.read_text().strip()
        # one level deeper: each file's title becomes a section of this page
        lines = [("#" + line) if line.startswith("#") else line for line in text.splitlines()]
        sections.append("\n".join(lines))
    (ROOT / "docs" / "benchmarks.md").write_text("\n\n".join(sections) + "\n")
    print(f"wrote docs/benchmarks.md from {len(ranked)} reports")


if __name__ == "__main__":
    main()
