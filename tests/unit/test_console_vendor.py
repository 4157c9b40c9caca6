"""The vendored front-end files are exactly the pinned releases (htmx for the console,
axe-core for the accessibility scan), and ship inside the package."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pieces_integration.entrypoints.console as console

ROOT = Path(__file__).resolve().parents[2]
PINNED = {
    Path(console.__file__).parent / "static" / "htmx.min.js": (
        "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"
    ),
    ROOT / "tests" / "browser" / "vendor" / "axe.min.js": (
        "e9e5863c33a874f09bc01acd9234b7e3c871479f5eef8802fa582544465e6d01"
    ),
}


def test_vendored_files_match_their_pinned_sha256() -> None:
    for path, digest in PINNED.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, path


def test_versions_and_licenses_are_noted() -> None:
    static = Path(console.__file__).parent / "static"
    assert "2.0.11" in (static / "VENDOR.md").read_text()
    assert "Zero-Clause BSD" in (static / "htmx.LICENSE.txt").read_text()
    vendor = ROOT / "tests" / "browser" / "vendor"
    assert "4.11.0" in (vendor / "README.md").read_text()
    assert "Mozilla Public License" in (vendor / "axe.LICENSE.txt").read_text()


def test_templates_have_no_inline_script_or_style() -> None:
    for template in (Path(console.__file__).parent / "templates").rglob("*.html"):
        text = template.read_text()
        assert "<script>" not in text and " style=" not in text and "<style" not in text, template
