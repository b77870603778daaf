"""cardflow's state machine, services, store and errors stay plain Python (no Flask)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CARDFLOW = Path(__file__).resolve().parents[4] / "webapp" / "cardflow"
WEB = {"flask", "flask_babel", "flask_wtf", "werkzeug", "flask_sock"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    return imported


@pytest.mark.parametrize(
    "module",
    ["machine.py", "card.py", "flows.py", "purposes.py", "errors.py", "store.py", "redis_store.py"],
)
def test_no_flask_in_cardflow_services(module: str) -> None:
    assert not _imports(CARDFLOW / module) & WEB


def test_the_machine_does_no_io() -> None:
    """machine.py imports nothing but the standard library and the flow's errors."""
    assert _imports(CARDFLOW / "machine.py") <= {"__future__", "enum", "dataclasses", "typing"}
