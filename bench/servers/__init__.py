"""The servers :mod:`bench.roundtrip` compares evbus with, each run as its own process."""
