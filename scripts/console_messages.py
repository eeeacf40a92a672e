"""Refresh the console's English catalog from the templates and the Python code.

    python scripts/console_messages.py          # update app/console/locale/en/.../messages.po
    python scripts/console_messages.py --check  # exit 1 when a message has no translation

Message ids are the Vietnamese text (see app/console/i18n.py). New messages are added with
an empty translation for a person to write; messages no longer used are dropped. The .po is
compiled in memory at startup: nothing binary is committed.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

CONSOLE = Path(__file__).resolve().parent.parent / "app" / "console"
PO = CONSOLE / "locale" / "en" / "LC_MESSAGES" / "messages.po"
METHODS = [("templates/**.html", "jinja2"), ("**.py", "python")]
OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}


def extract() -> Catalog:
    """Every message the console can show, with where it is used."""
    template = Catalog(project="loaxa console", locale="vi")
    for filename, lineno, message, comments, context in extract_from_dir(
        str(CONSOLE), METHODS, OPTIONS
    ):
        template.add(
            message, locations=[(filename, lineno)], auto_comments=comments, context=context
        )
    return template


def untranslated(catalog: Catalog) -> list[str]:
    missing = []
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy or not all(strings):
            missing.append(str(message.id))
    return missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only report missing translations")
    args = parser.parse_args()
    template = extract()
    with PO.open("rb") as fh:
        catalog = read_po(fh, locale="en")
    catalog.update(template, no_fuzzy_matching=True)
    catalog.obsolete.clear()
    missing = untranslated(catalog)
    if args.check:
        for message in missing:
            print(f"untranslated: {message!r}")
        return 1 if missing else 0
    with PO.open("wb") as fh:
        # Fixed dates and no line numbers: the file changes only when a message does.
        catalog.creation_date = catalog.revision_date = datetime(2024, 1, 1, tzinfo=UTC)
        write_po(fh, catalog, width=100, include_lineno=False)
    print(f"{PO}: {len(catalog)} messages, {len(missing)} without English")
    return 0


if __name__ == "__main__":
    sys.exit(main())
