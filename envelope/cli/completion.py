"""Shell completion scripts for bash, zsh and fish, generated from the programs' argparse parsers,
so that every command and option the parser knows is completed, and nothing else.

``envelope --completion SHELL`` and ``envelope-info --completion SHELL`` print them; the man pages
(``manpage``) read the parsers through the same :func:`program`. Imported only for those: not on the
start-up path. shtab, the usual package for this, writes bash, zsh and tcsh scripts, not fish ones.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

# What an option's value is, from its metavar: these complete as listed, every other as a file name.
_NOT_FILES = {"KEY=VALUE": "none", "N": "none", "BITS": "none", "VAR": "variable"}


@dataclass(frozen=True)
class Option:
    names: tuple[str, ...]  # "-o", "--output"
    help: str
    metavar: str | None  # None: a flag, which takes no value
    choices: tuple[str, ...] = ()
    required: bool = False

    @property
    def value(self) -> str:
        """How to complete the value: "none" (a flag or free text), "choices", "variable", "file"."""
        if self.metavar is None:
            return "none"
        if self.choices:
            return "choices"
        return _NOT_FILES.get(self.metavar, "file")


@dataclass(frozen=True)
class Positional:
    metavar: str
    help: str
    nargs: str | int | None


@dataclass
class Command:
    name: str
    help: str
    description: str
    epilog: str
    options: list[Option] = field(default_factory=list)
    positionals: list[Positional] = field(default_factory=list)
    subcommands: list[Command] = field(default_factory=list)
    parser: argparse.ArgumentParser | None = None


def program(parser: argparse.ArgumentParser, help_text: str = "") -> Command:
    """The commands, options and arguments a parser accepts (hidden ones left out)."""
    command = Command(
        name=parser.prog.split()[-1],
        help=help_text,
        description=parser.description or "",
        epilog=parser.epilog or "",
        parser=parser,
    )
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, subparser in action.choices.items():
                command.subcommands.append(program(subparser, helps.get(name, "")))
        elif action.help == argparse.SUPPRESS:
            continue
        elif action.option_strings:
            takes_value = action.nargs != 0
            metavar = str(action.metavar or action.dest.upper()) if takes_value else None
            choices = tuple(map(str, action.choices)) if action.choices else ()
            names = tuple(action.option_strings)
            command.options.append(Option(names, action.help or "", metavar, choices, action.required))
        else:
            command.positionals.append(Positional(str(action.metavar or action.dest), action.help or "", action.nargs))
    return command


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script of ``parser``'s program for ``shell`` (bash, zsh or fish)."""
    top = program(parser)
    return {"bash": _bash, "zsh": _zsh, "fish": _fish}[shell](top)


def _summary(text: str) -> str:
    """The first sentence of a help text, on one line: what a completion menu shows."""
    line = " ".join(text.split())
    for stop in ("; ", ". "):
        line = line.split(stop, 1)[0]
    clause = line.split(" (", 1)[0]
    return clause if len(clause.split()) >= 3 else line  # "rsa (recipients...)" keeps its parenthesis


def _levels(top: Command) -> list[Command]:
    """The top-level command and each subcommand: where options apply."""
    return [top, *top.subcommands]


def _function(name: str) -> str:
    return "_" + name.replace("-", "_")


# --- bash ------------------------------------------------------------------------------------


def _bash(top: Command) -> str:
    function = _function(top.name)
    names = " ".join(c.name for c in top.subcommands)
    lines = [
        f"# bash completion for {top.name}, generated from its argument parser: {top.name} --completion bash",
        f"{function}() {{",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" command="" i',
    ]
    if top.subcommands:
        lines += [
            "    for ((i = 1; i < COMP_CWORD; i++)); do",
            f'        case "${{COMP_WORDS[i]}}" in {"|".join(c.name for c in top.subcommands)}) '
            'command="${COMP_WORDS[i]}"; break ;; esac',
            "    done",
        ]
    lines.append('    case "$command:$prev" in')
    for level in _levels(top):
        key = "" if level is top else level.name
        for option in level.options:
            action = {
                "choices": f'COMPREPLY=($(compgen -W "{" ".join(option.choices)}" -- "$cur"))',
                "variable": 'COMPREPLY=($(compgen -v -- "$cur"))',
                "file": 'COMPREPLY=($(compgen -f -- "$cur"))',
                "none": "COMPREPLY=()",
            }[option.value]
            if option.metavar is not None:
                patterns = "|".join(f"{key}:{name}" for name in option.names)
                lines.append(f"        {patterns}) {action}; return ;;")
    lines.append("    esac")
    lines.append('    case "$command" in')
    for level in _levels(top):
        key = '""' if level is top else level.name
        words = " ".join(name for option in level.options for name in option.names)
        if level.positionals or level is not top or not top.subcommands:
            rest = 'COMPREPLY=($(compgen -f -- "$cur"))' if level.positionals else "COMPREPLY=()"
        else:
            rest = f'COMPREPLY=($(compgen -W "{names}" -- "$cur"))'
        options = f'COMPREPLY=($(compgen -W "{words}" -- "$cur"))'
        lines.append(f"        {key}) if [[ $cur == -* ]]; then {options}; else {rest}; fi ;;")
    lines += ["    esac", "}", f"complete -o filenames -F {function} {top.name}", ""]
    return "\n".join(lines)


# --- zsh -------------------------------------------------------------------------------------


def _zsh_quote(text: str) -> str:
    """Text for an _arguments spec inside single quotes: brackets and colons escaped."""
    return text.replace("\\", "\\\\").replace("'", "'\\''").replace("[", "\\[").replace("]", "\\]").replace(":", "\\:")


def _zsh_specs(level: Command) -> list[str]:
    specs = []
    for option in level.options:
        exclusive = "(- *)" if option.names[-1] in ("--help", "--version", "--completion") else ""
        names = option.names[0] if len(option.names) == 1 else "{" + ",".join(option.names) + "}"
        value = ""
        if option.metavar is not None:
            action = {
                "choices": f"({' '.join(option.choices)})",
                "variable": "_parameters",
                "file": "_files",
                "none": " ",
            }[option.value]
            value = f":{_zsh_quote(option.metavar)}:{action}"
        repeat = "'*'" if "repeatable" in option.help else ""
        exclusive_quoted = f"'{exclusive}'" if exclusive else ""
        specs.append(f"{repeat}{exclusive_quoted}{names}'[{_zsh_quote(_summary(option.help))}]{value}'")
    for positional in level.positionals:
        many = "*" if positional.nargs in ("+", "*") else ""
        optional = ":" if positional.nargs == "?" else ""
        specs.append(f"'{many}:{optional}{_zsh_quote(positional.metavar)}:_files'")
    return specs


def _zsh(top: Command) -> str:
    function = _function(top.name)
    lines = [
        f"#compdef {top.name}",
        f"# zsh completion for {top.name}, generated from its argument parser: {top.name} --completion zsh",
        f"{function}() {{",
    ]
    specs = _zsh_specs(top)
    if top.subcommands:
        lines += [
            "    local context state state_descr line",
            "    typeset -A opt_args",
            "    _arguments -C \\",
            *[f"        {spec} \\" for spec in specs],
            "        '1:command:->command' \\",
            "        '*::argument:->argument'",
            "    case $state in",
            "        command)",
            "            local -a commands",
            "            commands=(",
            *[f"                '{_zsh_quote(c.name)}:{_zsh_quote(_summary(c.help))}'" for c in top.subcommands],
            "            )",
            "            _describe -t commands command commands ;;",
            "        argument)",
            "            case $line[1] in",
        ]
        for sub in top.subcommands:
            lines.append(f"                {sub.name}) _arguments \\")
            lines += [f"                    {spec} \\" for spec in _zsh_specs(sub)[:-1]]
            lines.append(f"                    {_zsh_specs(sub)[-1]} ;;")
        lines += ["            esac ;;", "    esac"]
    else:
        lines += ["    _arguments \\", *[f"        {spec} \\" for spec in specs[:-1]], f"        {specs[-1]}"]
    lines += ["}", f'{function} "$@"', ""]
    return "\n".join(lines)


# --- fish ------------------------------------------------------------------------------------


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish(top: Command) -> str:
    name = top.name
    lines = [
        f"# fish completion for {name}, generated from its argument parser: {name} --completion fish",
        f"complete -c {name} -f",
    ]
    subcommands = " ".join(c.name for c in top.subcommands)
    for level in _levels(top):
        if level is top:
            condition = f" -n 'not __fish_seen_subcommand_from {subcommands}'" if top.subcommands else ""
        else:
            condition = f" -n '__fish_seen_subcommand_from {level.name}'"
            lines.append(
                f"complete -c {name} -n 'not __fish_seen_subcommand_from {subcommands}' -a {level.name}"
                f" -d {_fish_quote(_summary(level.help))}"
            )
        for option in level.options:
            flags = "".join(f" -s {n[1:]}" if n[1] != "-" else f" -l {n[2:]}" for n in option.names)
            value = {
                "choices": f" -x -a {_fish_quote(' '.join(option.choices))}",
                "variable": " -x -a '(set --names)'",
                "file": " -r -F",
                "none": " -x" if option.metavar is not None else "",
            }[option.value]
            lines.append(f"complete -c {name}{condition}{flags}{value} -d {_fish_quote(_summary(option.help))}")
        if level.positionals and (level is not top or not top.subcommands):
            lines.append(f"complete -c {name}{condition} -F")
    return "\n".join([*lines, ""])
