"""Write the manual pages, man/envelope.1 and man/envelope-info.1, from the programs' argument
parsers (envelope/cli/manpage.py). Run after changing an option or a help text; the test suite
fails while they are out of date (tests/test_cli_completion.py).

    .venv/bin/python tools/make_man.py
"""

from __future__ import annotations

from pathlib import Path

from envelope.cli.manpage import pages

FOLDER = Path(__file__).resolve().parent.parent / "man"

if __name__ == "__main__":
    FOLDER.mkdir(exist_ok=True)
    for name, text in pages().items():
        (FOLDER / name).write_text(text)
        print(FOLDER / name)
