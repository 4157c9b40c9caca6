"""The setup wizard's steps, in order (spec 7.1)."""

from __future__ import annotations

STEPS = [
    ("detect", "Detect Pieces OS"),
    ("connect", "Connect"),
    ("sync", "Initial sync"),
    ("aiwfe", "AIWFE"),
    ("preferences", "Preferences"),
    ("done", "Done"),
]
STEP_NAMES = [name for name, _ in STEPS]
