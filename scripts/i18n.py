"""The Japanese catalogue, kept by hand-sized steps (webapp/translations/ja).

    python scripts/i18n.py missing          marked strings (webapp/**.py, templates/**.html)
                                            with no Japanese yet, as a JSON list
    python scripts/i18n.py add < new.json   append {"English msgid": "日本語", ...} to the .po
                                            (msgids it has are left as they are, and listed)
                                            and compile the .mo
    python scripts/i18n.py compile          compile the .mo (after merging .po files)

Run from the project root. `missing` printing `[]` is what the i18n tests check.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import escape, read_po

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "webapp" / "translations" / "ja" / "LC_MESSAGES"
KEYWORDS = {"_": None, "gettext": None, "_l": None, "lazy_gettext": None}
METHODS = [("webapp/**.py", "python"), ("templates/**.html", "jinja2")]


def _catalog():  # type: ignore[no-untyped-def]
    with open(CATALOG / "messages.po", "rb") as f:
        return read_po(f, locale="ja")


def missing() -> list[str]:
    catalog = _catalog()
    known = {m.id for m in catalog if m.id and m.string}
    found = {
        msgid
        for _file, _line, msgid, _comments, _ctx in extract_from_dir(
            str(ROOT), METHODS, keywords=KEYWORDS
        )
        if isinstance(msgid, str)
    }
    return sorted(found - known)


def add(pairs: dict[str, str]) -> None:
    """Append (never rewrite: branches that each add strings then merge cleanly)."""
    known = {m.id for m in _catalog() if m.id}
    kept = [msgid for msgid in pairs if msgid in known]
    entries = [
        f"\nmsgid {escape(msgid)}\nmsgstr {escape(msgstr)}\n"
        for msgid, msgstr in pairs.items()
        if msgid not in known
    ]
    if any(not msgstr for msgstr in pairs.values()):
        raise SystemExit("every msgid needs its Japanese")
    with open(CATALOG / "messages.po", "a", encoding="utf-8") as f:
        f.writelines(entries)
    compile_mo()
    if kept:
        print("already in the catalogue, left as they are:", *kept, sep="\n  ")


def compile_mo() -> None:
    with open(CATALOG / "messages.mo", "wb") as f:
        write_mo(f, _catalog())


def main(argv: list[str]) -> None:
    if argv[1:] == ["missing"]:
        print(json.dumps(missing(), ensure_ascii=False, indent=1))
    elif argv[1:] == ["add"]:
        add(json.load(sys.stdin))
    elif argv[1:] == ["compile"]:
        compile_mo()
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
