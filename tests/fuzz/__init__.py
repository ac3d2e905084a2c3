"""Fuzz targets for the parsers of untrusted input (see targets.py)."""
