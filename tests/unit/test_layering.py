"""The domain core stays free of I/O libraries (STYLE.md section 2)."""

from __future__ import annotations

import subprocess
import sys


def test_domain_imports_no_framework_or_driver() -> None:
    code = (
        "import sys, pkgutil, importlib, pieces_integration.domain as d\n"
        "for m in pkgutil.iter_modules(d.__path__):\n"
        "    importlib.import_module('pieces_integration.domain.' + m.name)\n"
        "bad = {'fastapi','starlette','sqlalchemy','httpx','redis','asyncpg','qdrant_client',"
        "'uvicorn','websockets'} & {n.split('.')[0] for n in sys.modules}\n"
        "print(sorted(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
