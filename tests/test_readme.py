"""Every code block of README.md runs as it is written, in order: the Python blocks in one folder
and one namespace (as a reader pasting them into one session would), each shell block with bash
(`set -e`) in a folder of its own (a reader trying the commands), the installed console scripts
first on PATH. A block preceded by a line `<!-- not run: REASON -->` is skipped, and only those."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"(?:<!-- not run: (?P<why>[^>]*) -->\n)?```(?P<lang>\w+)\n(?P<code>.*?)```\n", re.S)


def blocks() -> list[tuple[str, str, str | None]]:
    return [(m["lang"], m["code"], m["why"]) for m in BLOCK.finditer(README.read_text())]


@pytest.fixture
def s3_endpoint(monkeypatch):  # type: ignore[no-untyped-def]
    """The README's object-store examples run against a local S3 server (moto), found by the
    standard AWS settings, with its bucket "models"."""
    from remote_fixtures import MotoServer, need

    need("s3fs")
    server = MotoServer()
    try:
        for name, value in {
            "AWS_ENDPOINT_URL": server.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(name, value)
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()
        s3fs.S3FileSystem().mkdir("models")
        yield server
    finally:
        server.stop()


def test_every_block_runs_but_the_few_marked(monkeypatch, tmp_path, s3_endpoint):
    found = blocks()
    skipped = [why for _, _, why in found if why]
    assert len(found) >= 6 and len(skipped) <= 3, "run what the README shows"
    assert all(lang in ("python", "sh") for lang, _, why in found if not why)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("KERAS_BACKEND", os.environ.get("KERAS_BACKEND", "tensorflow"))
    namespace: dict[str, object] = {"__name__": "readme"}
    for number, (lang, code, why) in enumerate(found, 1):
        if why:
            continue
        if lang == "python":
            exec(compile(code, f"README.md block {number}", "exec"), namespace)
        else:
            folder = tmp_path / f"shell-{number}"
            folder.mkdir()
            command = ["bash", "-e", "-o", "pipefail", "-c", code]
            result = subprocess.run(command, capture_output=True, text=True, cwd=folder)
            assert result.returncode == 0, f"README.md block {number} failed:\n{result.stdout}\n{result.stderr}"


@pytest.mark.parametrize("name", ["alice.key", "producer.key"])
def test_the_readme_key_files_are_private(tmp_path, monkeypatch, name):
    """What the README promises of key files: mode 0600."""
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "readme"}
    for lang, code, why in blocks()[:4]:
        if lang == "python" and not why:
            exec(compile(code, "README.md", "exec"), namespace)
        if (tmp_path / name).exists():
            break
    assert (tmp_path / name).stat().st_mode & 0o777 == 0o600
