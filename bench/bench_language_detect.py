"""Language detection on real code no one here wrote: held-out accuracy (issue 6).

    .venv/bin/python bench/bench_language_detect.py [--per-language 80] [--seed 7]

The detector's features were tuned on the labelled samples of
tests/unit/domain/test_aiwfe_language_detect.py; this measures it on code it has never seen. The
samples are source files found on this machine (the Python standard library, the system's
C headers and sources, JavaScript and CSS and HTML under /usr, PostgreSQL's SQL scripts,
shell scripts, PHP, YAML and JSON files, and whatever Go, Rust, Java or Ruby there is),
labelled by their file extension. From each file one random window of 6-30 non-blank lines
is taken, as a chat code block without its info string would be. Per language it prints how
many the detector named correctly, how many it named wrongly (the costly error: a wrong tag
on an asset) and how many it left unlabelled (None: the asset keeps no language).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import sysconfig
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from pieces_integration.domain.language_detect import detect_language

EXTENSIONS = {
    ".py": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".ts": "typescript",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".rb": "ruby",
    ".php": "php",
    ".c": "c",
    ".cpp": "cpp",
    ".cc": "cpp",
    ".hpp": "cpp",
    ".sh": "bash",
    ".sql": "sql",
    ".html": "html",
    ".css": "css",
    ".json": "json",
    ".yaml": "yaml",
    ".yml": "yaml",
}
ROOTS = [
    Path(sysconfig.get_paths()["stdlib"]),
    Path("/usr/include"),
    Path("/usr/share"),
    Path("/usr/lib"),
    Path("/usr/src"),
    Path("/etc"),
    Path("/opt"),
    Path.home() / ".cargo",
    Path.home() / ".rustup",
]
SKIP_DIRS = {"test", "tests", "__pycache__", "locale", "i18n", "man", "doc-base"}
MIN_BYTES, MAX_BYTES = 300, 2_000_000


def find_files(limit_per_language: int, rng: random.Random) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for root in ROOTS:
        if not root.is_dir():
            continue
        for folder, dirs, files in os.walk(root, followlinks=False):
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith(".")]
            for name in files:
                language = EXTENSIONS.get(Path(name).suffix.lower())
                if language is None or name.endswith((".min.js", ".d.ts")):
                    continue
                path = Path(folder) / name
                try:
                    size = path.stat().st_size
                except OSError:
                    continue
                if MIN_BYTES <= size <= MAX_BYTES and not path.is_symlink():
                    found.setdefault(language, []).append(path)
    # A fixed-size random sample per language, the same for a given seed and machine.
    return {
        language: rng.sample(sorted(paths), min(limit_per_language, len(paths)))
        for language, paths in sorted(found.items())
    }


def window(path: Path, rng: random.Random) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    lines = text.splitlines()
    if len([line for line in lines if line.strip()]) < 6:
        return None
    size = rng.randint(6, 30)
    start = rng.randrange(0, max(1, len(lines) - size))
    chunk = lines[start : start + size]
    if sum(1 for line in chunk if line.strip()) < 6:
        chunk = lines[:size]
    return "\n".join(chunk).strip("\n") + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-language", type=int, default=80)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    samples = find_files(args.per_language, rng)
    totals: Counter[str] = Counter()
    confusions: Counter[tuple[str, str]] = Counter()
    print(f"{'language':<11} {'samples':>7} {'correct':>8} {'wrong':>6} {'none':>6}  precision")
    for language, paths in samples.items():
        counts: Counter[str] = Counter()
        for path in paths:
            block = window(path, rng)
            if block is None:
                continue
            guess = detect_language(block)
            counts["samples"] += 1
            if guess is None:
                counts["none"] += 1
            elif guess == language:
                counts["correct"] += 1
            else:
                counts["wrong"] += 1
                confusions[(language, guess)] += 1
        named = counts["correct"] + counts["wrong"]
        precision = f"{counts['correct'] / named:.2f}" if named else "-"
        print(
            f"{language:<11} {counts['samples']:>7} {counts['correct']:>8} "
            f"{counts['wrong']:>6} {counts['none']:>6}  {precision}"
        )
        totals.update(counts)
    named = totals["correct"] + totals["wrong"]
    print(
        f"{'all':<11} {totals['samples']:>7} {totals['correct']:>8} {totals['wrong']:>6} "
        f"{totals['none']:>6}  {totals['correct'] / max(1, named):.2f}"
    )
    print(
        f"accuracy {totals['correct'] / max(1, totals['samples']):.3f}, "
        f"wrong label {totals['wrong'] / max(1, totals['samples']):.3f}, "
        f"no label {totals['none'] / max(1, totals['samples']):.3f}"
    )
    if confusions:
        worst = ", ".join(f"{a}->{b} {n}" for (a, b), n in confusions.most_common(8))
        print(f"most frequent wrong labels: {worst}")


if __name__ == "__main__":
    main()
