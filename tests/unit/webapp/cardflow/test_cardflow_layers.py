"""cardflow's services, errors and messages stay plain Python (no Flask)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CARDFLOW = Path(__file__).resolve().parents[4] / "webapp" / "cardflow"


@pytest.mark.parametrize("module", ["services.py", "errors.py", "messages.py"])
def test_no_flask_in_cardflow_services(module: str) -> None:
    tree = ast.parse((CARDFLOW / module).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert not imported & {"flask", "flask_babel", "flask_wtf", "werkzeug", "flask_sock"}
