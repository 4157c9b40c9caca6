"""A Pieces OS emulator speaking the real local API (reference §8), with fault injection."""
