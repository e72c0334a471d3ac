"""Rare-token claims harness: subjects, zoo, measurements, statistics and reports."""

__version__ = "0.1.0"
