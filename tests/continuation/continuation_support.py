"""Shared constants of the continuation tests."""

MODEL = "sim-60"
"""One model name served by both APIs: a continuation on the other API yields the same reply's rest."""
WORDS = 60
