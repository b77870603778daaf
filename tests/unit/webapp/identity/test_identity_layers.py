"""Services stay plain Python: no Flask import in the service and model modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

WEBAPP = Path(__file__).resolve().parents[4] / "webapp"
PLAIN = [
    "identity/models.py",
    "identity/services.py",
    "identity/errors.py",
    "providers/numbers.py",
    "providers/services.py",
    "staff/models.py",
    "staff/services.py",
    "staff/throttle.py",
    "terminals/throttle.py",
    "throttle.py",
]


@pytest.mark.parametrize("module", PLAIN)
def test_no_flask_in_services(module: str) -> None:
    tree = ast.parse((WEBAPP / module).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert not imported & {"flask", "flask_babel", "flask_wtf", "werkzeug"}


def test_no_my_number_or_raw_card_data_columns() -> None:
    from webapp.db import Base
    from webapp.identity import models  # noqa: F401

    columns = {column.name for table in Base.metadata.tables.values() for column in table.columns}
    for forbidden in ("my_number", "mynumber", "individual_number", "serial", "certificate"):
        assert not any(forbidden in name for name in columns), forbidden
