"""Faithful stand-ins for the systems at our edge (Pieces OS), for demos, development and tests."""
