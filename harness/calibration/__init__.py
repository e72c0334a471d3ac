"""Calibration: the measured size and power of every claim procedure on null and planted data."""
