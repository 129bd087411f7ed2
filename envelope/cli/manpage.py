"""Manual pages (roff, section 1) for ``envelope`` and ``envelope-info``, generated from their
argparse parsers: what ``--help`` says, every command and option, the exit codes and the
environment. ``tools/make_man.py`` writes them to ``man/``; a test checks they are current.
Imported only by that tool and the tests."""

from __future__ import annotations

import argparse
import re

from .completion import Command, Option, Positional, program

_SECTIONS_OF_HELP = re.compile(r"^(examples|exit codes):$", re.MULTILINE)


def pages() -> dict[str, str]:
    """The file name and roff source of each manual page."""
    from . import info, main

    return {
        "envelope.1": page(main.build_parser(), "hybrid envelope encryption for ML models and data"),
        "envelope-info.1": page(
            info.build_parser(), "show what envelope files say about themselves", {"JSON OUTPUT": info.JSON_FIELDS}
        ),
    }


def page(
    parser: argparse.ArgumentParser, summary: str, extra: dict[str, tuple[tuple[str, str], ...]] | None = None
) -> str:
    """The roff source of the manual page of ``parser``'s program. ``extra``: more sections
    (title -> (term, text) items), after the exit codes."""
    from envelope import __version__

    from .errors import EXIT_CODES_HELP

    top = program(parser)
    name = top.name
    lines = [
        f'.\\" Generated from the argument parser of {name} by tools/make_man.py: do not edit.',
        f'.TH {name.upper()} 1 "" "envelope-ml {__version__}" "User Commands"',
        ".SH NAME",
        f"{_text(name)} \\- {_text(summary)}",
        ".SH SYNOPSIS",
        _synopsis(name, top),
    ]
    for sub in top.subcommands:
        lines += [".br", _synopsis(f"{name} {sub.name}", sub)]
    lines += [".SH DESCRIPTION", *_paragraphs(top.description)]
    if top.options or top.positionals:
        lines += [".SH OPTIONS", *_positionals(top.positionals), *_options(top.options)]
    if top.subcommands:
        lines.append(".SH COMMANDS")
        for sub in top.subcommands:
            lines += [f".SS {name} {sub.name}", *_paragraphs(sub.description)]
            lines += _positionals(sub.positionals) + _options(sub.options)
            lines += _examples(sub.epilog, [".PP", "Examples:"])
    lines += _examples(top.epilog, [".SH EXAMPLES"])
    lines += [".SH EXIT STATUS", *_exit_codes(EXIT_CODES_HELP)]
    for title, items in (extra or {}).items():
        lines.append(f".SH {title.upper()}")
        for term, text in items:
            lines += [".TP", f"\\fB{_text(term)}\\fR", _text(text)] if term else [".PP", _text(text)]
    lines += [
        ".SH ENVIRONMENT",
        ".TP",
        ".B ENVELOPE_DEBUG",
        "When set, an error also prints its Python traceback.",
        ".SH SEE ALSO",
        ", ".join(f"\\fB{_text(other)}\\fR(1)" for other in _see_also(name)),
    ]
    return "\n".join(lines) + "\n"


def _see_also(name: str) -> list[str]:
    return [other for other in ("envelope", "envelope-info") if other != name] + ["age", "openssl"]


def _text(text: str) -> str:
    """Plain text for roff: backslashes and hyphens escaped, no line starting with a control
    character."""
    escaped = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + line if line.startswith((".", "'")) else line for line in escaped.split("\n"))


def _synopsis(name: str, command: Command) -> str:
    parts = [f"\\fB{_text(name)}\\fR"]
    for option in command.options:
        flag = f"\\fB{_text(option.names[0])}\\fR"
        word = f"{flag} \\fI{_text(option.metavar)}\\fR" if option.metavar else flag
        parts.append(f"{word} ..." if option.required else f"[{word}]")
    for positional in command.positionals:
        word = f"\\fI{_text(positional.metavar)}\\fR"
        parts.append({"?": f"[{word}]", "+": f"{word} ...", "*": f"[{word} ...]"}.get(str(positional.nargs), word))
    if command.subcommands:
        parts.append("\\fICOMMAND\\fR ...")
    return " ".join(parts)


def _paragraphs(text: str) -> list[str]:
    """Help text in paragraphs (blank-line separated), each filled by roff; the examples and
    exit codes sections of an epilog are left out (they have their own sections)."""
    text = _SECTIONS_OF_HELP.split(text)[0]
    lines = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        if paragraph.strip():
            lines += [".PP", _text(" ".join(paragraph.split()))]
    return lines


def _options(options: list[Option]) -> list[str]:
    lines = []
    for option in options:
        names = ", ".join(f"\\fB{_text(n)}\\fR" for n in option.names)
        value = f" \\fI{_text(option.metavar)}\\fR" if option.metavar else ""
        lines += [".TP", names + value, _text(" ".join(option.help.split()))]
    return lines


def _positionals(positionals: list[Positional]) -> list[str]:
    lines = []
    for positional in positionals:
        lines += [".TP", f"\\fI{_text(positional.metavar)}\\fR", _text(" ".join(positional.help.split()))]
    return lines


def _examples(epilog: str, heading: list[str]) -> list[str]:
    """The ``examples:`` block of an epilog, verbatim, and what follows it before the exit codes."""
    match = re.search(r"^examples:\n(.*?)(?:^exit codes:|\Z)", epilog, re.MULTILINE | re.DOTALL)
    if not match:
        return []
    block = match.group(1).rstrip()
    code, _, notes = block.partition("\n\n")
    lines = [*heading, ".PP", ".RS", ".nf", *_text(code).split("\n"), ".fi", ".RE"]
    if notes.strip():
        lines += _paragraphs(notes)
    return lines


def _exit_codes(help_text: str) -> list[str]:
    """The exit-code table of ``--help`` (``  CODE  meaning``, continuation lines indented)."""
    lines: list[str] = []
    for row in help_text.splitlines()[1:]:
        match = re.match(r"\s+(\d+)\s+(.*)", row)
        if match and not row.startswith(" " * 5):
            lines += [".TP", f"\\fB{match.group(1)}\\fR", _text(match.group(2))]
        else:
            lines[-1] += " " + _text(row.strip())
    return lines
