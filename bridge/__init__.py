"""Ichimai bridge: card reader relay and pure card knowledge."""
