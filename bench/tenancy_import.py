"""Measure the providers' CSV import (webapp/tenancy/importer.py) at national scale: a file
of 5,000 providers (the size of Japan's public and university libraries and museums) in
47 prefectures, checked, then checked and added in one transaction, on a scratch
PostgreSQL database. Not part of `make bench` (no baseline: a figure for docs/tenancy.md).

Prints one JSON line. Run:
    .venv/bin/python -m bench.tenancy_import [POSTGRESQL_SERVER_URL]
"""

from __future__ import annotations

import json
import sys
import time

from webapp import create_app, db
from webapp.places import codes
from webapp.scaled import PG_SERVER, scratch_database
from webapp.tenancy import importer

ROWS = 5000


def national_file(rows: int = ROWS) -> bytes:
    """`rows` libraries, about 107 per prefecture, each in its own municipality."""
    lines = ["isil,name,kana,prefecture,municipality_code,kind,municipality"]
    for n in range(rows):
        prefecture = n % 47 + 1
        code = codes.with_check_digit(f"{prefecture:02d}{100 + n // 47:03d}")
        lines.append(
            f"JP-{1000000 + n:07d},図書館{n},としょかん{n % 10},{prefecture:02d},{code},"
            f"library,町{n // 47}"
        )
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def main(server: str = PG_SERVER) -> dict[str, object]:
    data = national_file()
    with scratch_database(server) as url:
        app = create_app(
            {"DATABASE_URL": url, "SECRET_KEY": "bench", "TESTING": True, "BUS_URL": "memory://"}
        )
        db.create_all(app)
        try:
            with app.app_context(), db.new_session() as s:
                start = time.perf_counter()
                _rows, errors = importer.parse(s, data)
                checked = time.perf_counter() - start
                assert not errors, errors[:3]
                s.rollback()
                start = time.perf_counter()
                result = importer.import_file(s, data)
                s.commit()
                added = time.perf_counter() - start
                assert len(result.providers) == ROWS
        finally:
            app.extensions["db_engine"].dispose()
    return {
        "bench": "tenancy_import_5000_providers_s",
        "value": round(added, 2),
        "unit": "s",
        "checked_only_s": round(checked, 2),
        "rows": ROWS,
        "bytes": len(data),
    }


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:2])))
