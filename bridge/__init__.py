"""Ichimai bridge: card reader relay and pure card knowledge."""

# The version of the `ichimai-bridge` wheel (bridge/pyproject.toml reads it from here).
__version__ = "0.1.0"
