"""Realistic snippets for seeding an emulated Pieces library: varied languages, real code."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sample:
    ext: str
    name: str
    code: str
    tags: tuple[str, ...]
    description: str
    website: tuple[str, str] | None = None


_SAMPLES: tuple[Sample, ...] = (
    Sample(
        "py",
        "Retry with exponential backoff",
        "import random\nimport time\n\n\ndef retry(fn, attempts=5, base=0.5):\n"
        "    for attempt in range(attempts):\n        try:\n            return fn()\n"
        "        except ConnectionError:\n            if attempt == attempts - 1:\n"
        "                raise\n            time.sleep(base * 2**attempt + random.random() / 10)\n",
        ("python", "resilience"),
        "Calls fn until it succeeds, sleeping exponentially longer between attempts.",
        ("Python docs: time", "https://docs.python.org/3/library/time.html"),
    ),
    Sample(
        "py",
        "FastAPI health endpoint",
        "from fastapi import FastAPI\n\napp = FastAPI()\n\n\n@app.get('/healthz')\n"
        "async def healthz() -> dict[str, str]:\n    return {'status': 'ok'}\n",
        ("python", "fastapi", "api"),
        "Minimal liveness probe for a FastAPI service.",
        ("FastAPI", "https://fastapi.tiangolo.com/"),
    ),
    Sample(
        "ts",
        "Debounce hook",
        "import { useEffect, useState } from 'react';\n\n"
        "export function useDebounce<T>(value: T, delay = 300): T {\n"
        "  const [debounced, setDebounced] = useState(value);\n  useEffect(() => {\n"
        "    const id = setTimeout(() => setDebounced(value), delay);\n"
        "    return () => clearTimeout(id);\n  }, [value, delay]);\n  return debounced;\n}\n",
        ("typescript", "react", "hooks"),
        "React hook that delays updates until the value stops changing.",
        ("React docs", "https://react.dev/reference/react/useEffect"),
    ),
    Sample(
        "js",
        "Fetch JSON with timeout",
        "export async function fetchJson(url, ms = 5000) {\n"
        "  const ctrl = new AbortController();\n"
        "  const timer = setTimeout(() => ctrl.abort(), ms);\n"
        "  try {\n    const res = await fetch(url, { signal: ctrl.signal });\n"
        "    if (!res.ok) throw new Error(`HTTP ${res.status}`);\n    return await res.json();\n"
        "  } finally {\n    clearTimeout(timer);\n  }\n}\n",
        ("javascript", "fetch", "http"),
        "fetch() wrapper that aborts after a timeout and rejects on HTTP errors.",
        ("MDN AbortController", "https://developer.mozilla.org/en-US/docs/Web/API/AbortController"),
    ),
    Sample(
        "go",
        "Graceful HTTP shutdown",
        'package main\n\nimport (\n\t"context"\n\t"net/http"\n\t"os"\n\t"os/signal"\n'
        '\t"time"\n)\n\nfunc main() {\n\tsrv := &http.Server{Addr: ":8080"}\n'
        "\tgo srv.ListenAndServe()\n\tstop := make(chan os.Signal, 1)\n"
        "\tsignal.Notify(stop, os.Interrupt)\n\t<-stop\n"
        "\tctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)\n"
        "\tdefer cancel()\n\tsrv.Shutdown(ctx)\n}\n",
        ("go", "http", "shutdown"),
        "Stops an HTTP server cleanly on Ctrl-C, waiting up to 10 s for requests.",
        None,
    ),
    Sample(
        "rs",
        "Read lines from a file",
        "use std::fs::File;\nuse std::io::{self, BufRead, BufReader};\n\n"
        "fn read_lines(path: &str) -> io::Result<Vec<String>> {\n"
        "    let file = File::open(path)?;\n    BufReader::new(file).lines().collect()\n}\n",
        ("rust", "io"),
        "Reads a text file into a vector of lines.",
        (
            "Rust by Example",
            "https://doc.rust-lang.org/rust-by-example/std_misc/file/read_lines.html",
        ),
    ),
    Sample(
        "sql",
        "Top customers by revenue",
        "SELECT c.id, c.name, SUM(o.total) AS revenue\nFROM customers c\n"
        "JOIN orders o ON o.customer_id = c.id\nWHERE o.created_at >= now() - interval '30 days'\n"
        "GROUP BY c.id, c.name\nORDER BY revenue DESC\nLIMIT 10;\n",
        ("sql", "postgres", "reporting"),
        "Ten customers with the highest order total over the last 30 days.",
        None,
    ),
    Sample(
        "sh",
        "Find large files",
        "#!/usr/bin/env bash\nset -euo pipefail\n"
        'find "${1:-.}" -type f -size +100M -printf "%s\\t%p\\n" | sort -rn | head -20\n',
        ("bash", "shell", "disk"),
        "Lists the 20 largest files over 100 MB under a directory.",
        None,
    ),
    Sample(
        "java",
        "Thread-safe singleton",
        "public final class Registry {\n    private Registry() {}\n\n"
        "    private static class Holder {\n"
        "        static final Registry INSTANCE = new Registry();\n"
        "    }\n\n    public static Registry getInstance() {\n        return Holder.INSTANCE;\n"
        "    }\n}\n",
        ("java", "patterns"),
        "Lazy, thread-safe singleton using the holder idiom.",
        None,
    ),
    Sample(
        "yml",
        "GitHub Actions Python CI",
        "name: ci\non: [push, pull_request]\njobs:\n  test:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - uses: actions/checkout@v4\n      - uses: actions/setup-python@v5\n"
        "        with:\n          python-version: '3.11'\n      - run: pip install -e '.[dev]'\n"
        "      - run: pytest -q\n",
        ("ci", "github-actions", "yaml"),
        "Runs the test suite on every push and pull request.",
        ("GitHub Actions docs", "https://docs.github.com/actions"),
    ),
    Sample(
        "md",
        "Release checklist",
        "# Release checklist\n\n- [ ] Update CHANGELOG\n- [ ] Bump version\n"
        "- [ ] Tag `vX.Y.Z`\n- [ ] Publish package\n- [ ] Announce\n",
        ("docs", "release"),
        "Steps to cut a release.",
        None,
    ),
    Sample(
        "json",
        "tsconfig strict base",
        '{\n  "compilerOptions": {\n    "target": "ES2022",\n    "module": "NodeNext",\n'
        '    "strict": true,\n    "noUncheckedIndexedAccess": true\n  }\n}\n',
        ("typescript", "config"),
        "A strict TypeScript compiler configuration.",
        None,
    ),
)

_VARIANTS = ("", " (v2)", " – draft", " for the API", " helper", " example")


def sample_library(count: int, seed: int) -> list[Sample]:
    """`count` samples drawn deterministically from `seed`, with names varied so they differ."""
    # bandit B311: seeded sample data of the emulator, not a secret.
    rng = random.Random(seed)  # nosec B311
    out: list[Sample] = []
    for index in range(count):
        base = rng.choice(_SAMPLES)
        suffix = rng.choice(_VARIANTS)
        marker = (
            f"# snippet {index}\n" if base.ext in {"py", "sh", "yml"} else f"// snippet {index}\n"
        )
        if base.ext in {"md", "json", "sql"}:
            marker = ""
        out.append(
            Sample(
                ext=base.ext,
                name=f"{base.name}{suffix} #{index}",
                code=marker + base.code,
                tags=base.tags,
                description=base.description,
                website=base.website,
            )
        )
    return out
