"""Several files in one command (docs/CLI.md, "Many files at once"): ``envelope seal|open -o OUTDIR
FILE...`` and ``envelope verify FILE...``: the grammar that tells a batch from one file or a folder,
the output names, one failure that stops nothing else, the summary and exit code, one progress bar."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cli_support import ENVELOPE, Keys, assert_error, needs_console_scripts, ok, run, run_in_pty

import envelope

pytestmark = needs_console_scripts


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return Keys(tmp_path_factory.mktemp("keys"))


def inputs(folder: Path, count: int, size: int = 3000) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for index in range(count):
        path = folder / f"shard-{index:02d}.bin"
        path.write_bytes(os.urandom(size))
        made.append(path)
    return made


def error_lines(result) -> list[str]:  # type: ignore[no-untyped-def]
    lines = result.stderr.decode().splitlines()
    assert "Traceback" not in result.stderr.decode()
    return lines


@pytest.mark.parametrize("jobs", [[], ["--jobs", "1"], ["-j", "2"]], ids=["default", "jobs1", "jobs2"])
def test_seal_and_open_many_files_into_folders(keys: Keys, tmp_path: Path, jobs: list[str]) -> None:
    files = inputs(tmp_path / "in", 12)
    sealed, back = tmp_path / "sealed", tmp_path / "back"
    sealed.mkdir()
    back.mkdir()
    result = ok(run(ENVELOPE, "seal", "-r", keys["alice.pub"], "--meta", "set=train", *jobs, "-o", sealed, *files))
    assert result.stdout == b"" and result.stderr == b""  # silent on success, as for one file
    assert sorted(os.listdir(sealed)) == sorted(f"{f.name}.env" for f in files)
    ok(run(ENVELOPE, "open", "-i", keys["alice.pem"], *jobs, "-o", back, *sorted(sealed.iterdir())))
    assert sorted(os.listdir(back)) == sorted(f.name for f in files)
    for source in files:
        assert (back / source.name).read_bytes() == source.read_bytes()
        assert stat.S_IMODE((back / source.name).stat().st_mode) == 0o600
        assert envelope.inspect(sealed / f"{source.name}.env").unverified_metadata == {"set": "train"}
    verified = ok(run(ENVELOPE, "verify", "-i", keys["alice.pem"], "-q", *jobs, *sorted(sealed.iterdir())))
    lines = verified.stdout.decode().splitlines()
    assert lines == [f"OK {sealed / f.name}.env (3000 bytes of plaintext)" for f in sorted(files)]


def test_one_file_into_an_existing_folder_is_a_batch_of_one(keys: Keys, tmp_path: Path) -> None:
    (source,) = inputs(tmp_path / "in", 1)
    out = tmp_path / "out"
    out.mkdir()
    ok(run(ENVELOPE, "seal", "-r", keys["alice.pub"], "-o", out, source))
    assert os.listdir(out) == [f"{source.name}.env"]
    back = tmp_path / "back"
    back.mkdir()
    ok(run(ENVELOPE, "open", "-i", keys["alice.pem"], "-o", back, out / f"{source.name}.env"))
    assert (back / source.name).read_bytes() == source.read_bytes()


def test_a_failed_file_stops_nothing_else(keys: Keys, tmp_path: Path) -> None:
    files = inputs(tmp_path / "in", 6)
    sealed, back = tmp_path / "sealed", tmp_path / "back"
    sealed.mkdir()
    back.mkdir()
    ok(run(ENVELOPE, "seal", "-r", keys["alice.pub"], "-o", sealed, *files))
    damaged = sealed / "shard-02.bin.env"
    data = bytearray(damaged.read_bytes())
    data[-50] ^= 1
    damaged.write_bytes(bytes(data))
    for_bob = sealed / "shard-04.bin.env"
    envelope.seal_file(files[4], for_bob, envelope.load_public_key(keys["bob.pub"]), overwrite=True)
    result = run(ENVELOPE, "open", "-i", keys["alice.pem"], "-o", back, *sorted(sealed.iterdir()))
    assert result.returncode == 1  # the first failure's code: authentication
    lines = error_lines(result)
    assert len(lines) == 3, lines
    assert lines[0].startswith(f"envelope: error: {damaged}: ")
    assert lines[1].startswith(f"envelope: error: {for_bob}: ")
    assert lines[2] == f"envelope: error: 2 of 6 files failed (opening): {damaged}, {for_bob}; the others succeeded"
    assert sorted(os.listdir(back)) == sorted(f.name for i, f in enumerate(files) if i not in (2, 4))
    checked = run(ENVELOPE, "verify", "-i", keys["alice.pem"], "-q", "-j", "2", *sorted(sealed.iterdir()))
    assert checked.returncode == 1
    assert [line.split()[1] for line in checked.stdout.decode().splitlines()] == [
        str(sealed / f"{f.name}.env") for i, f in enumerate(files) if i not in (2, 4)
    ]
    assert [line.split(":")[2].strip() for line in error_lines(checked)] == [str(damaged), str(for_bob)]
    again = run(ENVELOPE, "seal", "-r", keys["alice.pub"], "-o", sealed, files[0], files[1])
    assert again.returncode == 5
    assert error_lines(again)[-1].startswith("envelope: error: 2 of 2 files failed (sealing): ")
    ok(run(ENVELOPE, "seal", "-r", keys["alice.pub"], "--force", "-o", sealed, files[0], files[1]))


def test_what_cannot_join_a_batch_is_refused_before_anything_is_written(keys: Keys, tmp_path: Path) -> None:
    files = inputs(tmp_path / "in", 2)
    out = tmp_path / "out"
    out.mkdir()
    seal = (ENVELOPE, "seal", "-r", keys["alice.pub"])
    assert_error(run(*seal, *files), 2, "give -o OUTDIR")
    assert_error(run(*seal, "-o", tmp_path / "missing", *files), 2, "not an existing folder")
    assert_error(run(*seal, "-o", out, files[0], tmp_path / "in"), 2, "is a folder, which is sealed alone")
    other = tmp_path / "other"
    other.mkdir()
    (other / files[0].name).write_bytes(b"x")
    assert_error(run(*seal, "-o", out, files[0], other / files[0].name), 2, "would both be written to")
    assert_error(run(*seal, "-o", out, files[0], "-"), 2, "not stdin")
    assert_error(run(*seal, "-o", out, "--jobs", "0", *files), 2, "positive number")
    assert_error(run(*seal, "-o", tmp_path / "one.env", "--jobs", "2", files[0]), 2, "--jobs does nothing here")
    assert_error(
        run(ENVELOPE, "open", "-i", keys["alice.pem"], "-o", out, files[0], files[1]), 2, "does not end in .env"
    )
    assert os.listdir(out) == []


def test_a_sealed_folder_opens_alone(keys: Keys, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    inputs(tree, 2)
    (single,) = inputs(tmp_path / "in", 1)
    sealed = tmp_path / "sealed"
    sealed.mkdir()
    ok(run(ENVELOPE, "seal", "-r", keys["alice.pub"], "-o", sealed / "tree.env", tree))
    ok(run(ENVELOPE, "seal", "-r", keys["alice.pub"], "-o", sealed, single))
    back = tmp_path / "back"
    back.mkdir()
    both = (sealed / "tree.env", sealed / f"{single.name}.env")
    result = run(ENVELOPE, "open", "-i", keys["alice.pem"], "-o", back, *both)
    assert result.returncode == 2
    assert "sealed folder: it opens alone" in error_lines(result)[0]
    assert os.listdir(back) == [single.name]
    ok(run(ENVELOPE, "open", "-i", keys["alice.pem"], "-o", back / "tree", sealed / "tree.env"))  # alone: a folder
    assert sorted(os.listdir(back / "tree")) == ["shard-00.bin", "shard-01.bin"]


def test_one_progress_bar_for_the_batch(keys: Keys, tmp_path: Path) -> None:
    files = inputs(tmp_path / "in", 3, size=4 << 20)
    out = tmp_path / "out"
    out.mkdir()
    code, output = run_in_pty(ENVELOPE, "seal", "-r", keys["alice.pub"], "-o", out, *files)
    assert code == 0, output
    assert "sealing [" in output and "12.0 MiB" in output  # the whole batch's size, one bar
    assert output.count("sealing [") >= 1 and "opening" not in output
    code, output = run_in_pty(ENVELOPE, "seal", "-q", "-r", keys["alice.pub"], "-f", "-o", out, *files)
    assert (code, output) == (0, "")


def test_help_teaches_the_rule() -> None:
    for command in ("seal", "open"):
        text = ok(run(ENVELOPE, command, "--help")).stdout.decode()
        assert "--jobs" in text and "OUT/NAME" in text
    assert "--jobs" in ok(run(ENVELOPE, "verify", "--help")).stdout.decode()
