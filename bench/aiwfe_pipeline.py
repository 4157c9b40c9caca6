"""CPU cost of the AIWFE pipeline steps: signature check, code-block extraction, code analysis.

Run: .venv/bin/python bench/aiwfe_pipeline.py
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

from pieces_integration.adapters.code_analysis import TreeSitterCodeAnalyzer
from pieces_integration.domain.code_blocks import extract_code_blocks
from pieces_integration.domain.webhook_events import parse_webhook_event
from pieces_integration.domain.webhook_signature import sign, verify

MESSAGE = (
    "Here is the plan.\n\n1. Install:\n\n   ```bash\n   pip install httpx\n   ```\n\n"
    "2. Client:\n\n```python\nimport httpx\n\nasync def get(url: str) -> str:\n"
    "    async with httpx.AsyncClient() as c:\n        return (await c.get(url)).text\n```\n\n"
    "And unlabeled:\n\n```\nconst x = require('x');\nconsole.log(x);\n```\n" + "Prose. " * 200
)
PYTHON_FILE = "\n".join(
    f"def f{i}(a, b=None):\n    # TODO: item {i}\n    if a == None:\n        return b\n"
    f"    try:\n        return a / b\n    except:\n        pass\n"
    for i in range(25)
)  # 200 lines
BODY = json.dumps(
    {
        "id": "evt_1",
        "type": "chat_message_created",
        "created_at": "2026-11-25T10:00:00Z",
        "user_id": "u",
        "data": {
            "chat_id": "c",
            "message": {
                "id": "m",
                "role": "assistant",
                "content": MESSAGE,
                "created_at": "2026-11-25T10:00:00Z",
            },
        },
    }  # fmt: skip
).encode()
HEADER = sign(BODY, "secret", timestamp=1_000)


def measure(name: str, fn: Callable[[], object], runs: int) -> None:
    fn()  # warm-up: parsers and grammars load once
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    samples.sort()
    median = statistics.median(samples) * 1000
    p95 = samples[int(len(samples) * 0.95) - 1] * 1000
    p99 = samples[int(len(samples) * 0.99) - 1] * 1000
    throughput = len(samples) / sum(samples)
    print(f"{name:<44} {median:>9.3f} {p95:>9.3f} {p99:>9.3f} {throughput:>10.0f}")


def main() -> None:
    analyzer = TreeSitterCodeAnalyzer()
    print(f"{'step':<44} {'median ms':>9} {'p95 ms':>9} {'p99 ms':>9} {'per sec':>10}")
    measure(
        f"verify signature ({len(BODY)} B body)",
        lambda: verify(HEADER, BODY, ["secret"], now=1_000),
        5000,
    )
    measure("parse webhook envelope", lambda: parse_webhook_event(BODY), 5000)
    measure(
        "extract code blocks (3 blocks, 1 detected)", lambda: extract_code_blocks(MESSAGE), 2000
    )
    measure(
        "analyze 200-line Python (tree-sitter)",
        lambda: analyzer.analyze(PYTHON_FILE, "python"),
        500,
    )


if __name__ == "__main__":
    main()
