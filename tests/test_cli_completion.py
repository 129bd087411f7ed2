"""Shell completion (bash, zsh, fish) and the manual pages, both generated from the argument
parsers: every command and option is in each, and the scripts work in the shells that are here."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cli_support import ENVELOPE, INFO, TIMEOUT, needs_console_scripts, ok, run

from envelope.cli import info, main, manpage

pytestmark = needs_console_scripts

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = {"envelope": (ENVELOPE, main.build_parser), "envelope-info": (INFO, info.build_parser)}


def words(parser: argparse.ArgumentParser) -> tuple[list[str], list[str]]:
    """Every subcommand and every option string a parser (and its subparsers) accepts, help aside."""
    commands, options = [], []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                commands.append(name)
                options += words(sub)[1]
        elif action.help != argparse.SUPPRESS:
            options += action.option_strings
    return commands, options


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
@pytest.mark.parametrize("program", PROGRAMS)
def test_completion_lists_every_command_and_option(program: str, shell: str) -> None:
    tool, build = PROGRAMS[program]
    script = ok(run(tool, "--completion", shell)).stdout.decode()
    commands, options = words(build())
    assert len(options) > 10
    if program == "envelope":
        assert commands == ["keygen", "seal", "open", "rewrap", "verify", "migrate-fernet"]
    for word in commands + options:
        if shell == "fish" and word.startswith("-"):  # fish names options without dashes: -s o -l output
            flag = f"-s {word[1:]}" if word[1] != "-" else f"-l {word[2:]}"
            assert flag in script, (word, shell)
        else:
            assert word in script, (word, shell)


def _bash_complete(program: str, line: list[str]) -> list[str]:
    """What the bash completion offers for the last word of ``line``."""
    tool, _ = PROGRAMS[program]
    function = "_" + program.replace("-", "_")
    quoted = " ".join(f"'{word}'" for word in line)
    test = (
        f'eval "$({tool} --completion bash)"; COMP_WORDS=({quoted}); COMP_CWORD={len(line) - 1}; '
        f'{function}; printf "%s\\n" "${{COMPREPLY[@]}}"'
    )
    result = subprocess.run(["bash", "--norc", "-c", test], capture_output=True, timeout=TIMEOUT, check=True)
    return result.stdout.decode().split()


def test_bash_completes_commands_options_and_values() -> None:
    assert _bash_complete("envelope", ["envelope", "se"]) == ["seal"]
    assert _bash_complete("envelope", ["envelope", "seal", "--si"]) == ["--sign"]
    assert _bash_complete("envelope", ["envelope", "open", "--signed"]) == ["--signed-by"]
    assert _bash_complete("envelope", ["envelope", "keygen", "--type", "ml-"]) == ["ml-dsa-65"]
    assert _bash_complete("envelope", ["envelope", "keygen", "--type", "mlk"]) == ["mlkem768x25519"]
    assert _bash_complete("envelope", ["envelope", "--completion", "f"]) == ["fish"]
    assert _bash_complete("envelope-info", ["envelope-info", "--js"]) == ["--json"]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
@pytest.mark.parametrize("program", PROGRAMS)
def test_zsh_script_parses(program: str, tmp_path: Path) -> None:
    script = tmp_path / f"_{program}"
    script.write_bytes(ok(run(PROGRAMS[program][0], "--completion", "zsh")).stdout)
    subprocess.run(["zsh", "-n", script], timeout=TIMEOUT, check=True)


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_completes_commands_and_options(tmp_path: Path) -> None:
    for program, (tool, _) in PROGRAMS.items():
        (tmp_path / f"{program}.fish").write_bytes(ok(run(tool, "--completion", "fish")).stdout)

    def complete(line: str) -> list[str]:
        scripts = f"source {tmp_path}/envelope.fish; source {tmp_path}/envelope-info.fish"
        command = ["fish", "--no-config", "-c", f"{scripts}; complete -C {json.dumps(line)}"]
        result = subprocess.run(command, capture_output=True, timeout=TIMEOUT, check=True)
        return [row.split("\t")[0] for row in result.stdout.decode().splitlines()]

    assert complete("envelope se") == ["seal"]
    assert "--sign" in complete("envelope seal --si")
    assert complete("envelope keygen --type ml-") == ["ml-dsa-65"]
    assert "--signed-by" in complete("envelope-info --sig")


# --- manual pages ----------------------------------------------------------------------------


def test_the_manual_pages_are_current() -> None:
    """man/*.1 are generated (tools/make_man.py): a changed option or help text must regenerate them."""
    for name, text in manpage.pages().items():
        assert (ROOT / "man" / name).read_text() == text, f"man/{name} is stale: run tools/make_man.py"


@pytest.mark.parametrize("program", PROGRAMS)
def test_the_manual_page_has_every_command_and_option(program: str) -> None:
    text = manpage.pages()[f"{program}.1"].replace("\\-", "-")
    commands, options = words(PROGRAMS[program][1]())
    for word in commands + options:
        assert word in text, word
    assert ".SH EXIT STATUS" in text and "141" in text


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed")
@pytest.mark.parametrize("page", ["envelope.1", "envelope-info.1"])
def test_the_manual_pages_render_without_warnings(page: str) -> None:
    result = subprocess.run(
        ["groff", "-man", "-ww", "-z", ROOT / "man" / page], capture_output=True, timeout=TIMEOUT, check=True
    )
    assert result.stderr == b""


def test_the_json_fields_of_the_manual_page_are_the_records_fields(tmp_path: Path) -> None:
    """envelope-info's man page describes the --json record from info.JSON_FIELDS: the same fields."""
    import envelope

    key = envelope.generate_private_key(2048)
    path = tmp_path / "f.env"
    path.write_bytes(envelope.seal(b"x", key.public_key()))
    (record,) = json.loads(ok(run(INFO, "--json", path)).stdout)["files"]
    documented = {name.strip() for names, _ in info.JSON_FIELDS if names for name in names.split(",")}
    assert documented == set(record)
