"""Test helpers shared across test folders (not fixtures: plain code)."""
