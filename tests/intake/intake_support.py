"""Paths and helpers shared by the intake tests."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FILES = Path(__file__).resolve().parent / "files"
POLICIES = ROOT / "policies"
HC_ALL = "9fbde396-1a24-4c79-8edf-9254a0f35055"
CONF_ALL = "e0b4c6a8-2f1d-4e3b-a5c7-8d9f0b1c2d3e"
