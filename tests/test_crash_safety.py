"""Crash safety of the command line: ``envelope seal`` and ``envelope open`` killed with SIGKILL.

A SIGKILL runs no cleanup, so this checks what the atomic-output design (temporary file in the
destination folder, fsync, rename) guarantees when the process dies at any moment of a large job:

- the destination is either absent or complete and valid (seal: opens to the exact input;
  open: equals the plaintext): it never appears partial;
- the source is untouched (same SHA-256);
- nothing is left behind: where the destination folder supports ``O_TMPFILE`` (Linux), the data
  go to an unnamed file and a kill leaves nothing at all; elsewhere the only possible leftover is the
  hidden temporary file ``.NAME.XXXXXXXX.partial`` in the destination folder (never anything in the
  source folder, the working folder or TMPDIR). For ``open`` that fallback file holds an authentic
  *prefix of the plaintext* at mode 0600: ``test_killed_open_fallback_leaves_no_plaintext`` pins
  this as a known finding (an expected failure while it stands), forcing the fallback path.
- replacing an existing output (``-f``): the destination is the old output, the complete new one,
  or (``open`` only, for the instant between removing the old file and naming the new one) absent;
  ``open`` never leaves plaintext under another name. ``seal`` replaces atomically: a kill in the
  instant between naming the new file ``.NAME.XXXXXXXX.partial`` and renaming it leaves that
  hidden copy of the complete new output. A test wrapper kills after each naming step, so these
  instants are hit deterministically.

- a batch (``envelope seal|open -o OUTDIR FILE...``, docs/CLI.md "Many files at once") killed at
  any moment leaves in OUTDIR only complete outputs, nothing partial and no plaintext under another
  name, and no worker process goes on after the command died; killed right after its Nth output
  was named, the outputs named so far are all there.

Kill points are spread across the whole run (start-up, header, payload, fsync, rename, exit).
Run with ``-s`` to see the per-command tallies.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import envelope

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")

BIN = Path(sys.executable).parent
KEYS = Path(__file__).resolve().parent.parent / "spec" / "vectors" / "keys"
SIZE = 128 << 20  # large enough that a run lasts long enough to be killed in every phase
KILL_POINTS = 20  # per command
SEED = 20260101


@dataclass
class Workspace:
    root: Path
    source_dir: Path
    plaintext: Path
    plaintext_sha: str
    sealed: Path
    sealed_sha: str
    public_key: Path
    private_key: Path


def sha256_of(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    if not (BIN / "envelope").exists():
        pytest.skip("the envelope console script is not installed in this environment")
    root = tmp_path_factory.mktemp("crash")
    source_dir = root / "in"
    source_dir.mkdir()
    plaintext = source_dir / "model.bin"
    with plaintext.open("wb") as f:
        rng = random.Random(SEED)
        for _ in range(SIZE >> 24):
            f.write(rng.randbytes(1 << 24))
    private_key = source_dir / "key.pem"
    shutil.copyfile(KEYS / "rsa2048-a.pem", private_key)
    private_key.chmod(0o600)
    public_key = source_dir / "key.pub.pem"
    shutil.copyfile(KEYS / "rsa2048-a.pub.pem", public_key)
    sealed = source_dir / "model.env"
    envelope.seal_file(plaintext, sealed, public_key.read_bytes())
    return Workspace(
        root, source_dir, plaintext, sha256_of(plaintext), sealed, sha256_of(sealed), public_key, private_key
    )


def supports_unnamed_files(folder: Path) -> bool:
    """Whether ``folder`` takes O_TMPFILE files, which envelope's atomic outputs then use."""
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None:
        return False
    try:
        os.close(os.open(folder, flag | os.O_WRONLY, 0o600))
    except OSError:
        return False
    return True


@dataclass
class Campaign:
    """One command killed at many points, and what each kill left behind."""

    name: str
    command: list[str]
    destination: Path
    check_destination: Callable[[Path], None]
    check_leftover: Callable[[Path], None]
    tally: Counter[str]
    leftovers_allowed: bool = True
    existing: bytes | None = None  # an output already there before each run (replaced with -f)
    kill_points: int = KILL_POINTS

    def run(self, workspace: Workspace, work: Path, tmpdir: Path) -> None:
        environment = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONDONTWRITEBYTECODE": "1"}
        started = time.monotonic()
        self.prepare()
        subprocess.run(self.command, cwd=work, env=environment, check=True, capture_output=True)
        full_run = time.monotonic() - started
        self.inspect_after(workspace, work, tmpdir, expect_complete=True)
        rng = random.Random(SEED)
        # Stratified delays from 0 to 110% of a full run: every phase gets kill points, and a few
        # land after the process finished (those check the complete output).
        delays = [full_run * 1.1 * (i + rng.random()) / self.kill_points for i in range(self.kill_points)]
        for delay in delays:
            self.prepare()
            process = subprocess.Popen(
                self.command, cwd=work, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            time.sleep(delay)
            alive = process.poll() is None
            process.send_signal(signal.SIGKILL)
            process.wait()
            self.tally["killed while running" if alive else "finished before the kill"] += 1
            self.inspect_after(workspace, work, tmpdir, expect_complete=not alive)

    def prepare(self) -> None:
        if self.existing is not None:
            self.destination.write_bytes(self.existing)

    def inspect_after(self, workspace: Workspace, work: Path, tmpdir: Path, *, expect_complete: bool) -> None:
        assert sha256_of(workspace.plaintext) == workspace.plaintext_sha, "the plaintext source changed"
        assert sha256_of(workspace.sealed) == workspace.sealed_sha, "the sealed source changed"
        assert sorted(p.name for p in workspace.source_dir.iterdir()) == sorted(
            ["model.bin", "model.env", "key.pem", "key.pub.pem"]
        ), "something was left in the source folder"
        assert not any(work.iterdir()), "something was left in the working folder"
        assert not any(tmpdir.iterdir()), "something was left in TMPDIR"
        temp_name = re.compile(rf"^\.{re.escape(self.destination.name)}\.[A-Za-z0-9_]+\.partial$")
        for entry in self.destination.parent.iterdir():
            if entry == self.destination and self.existing is not None and entry.read_bytes() == self.existing:
                assert not expect_complete, "the command finished but the old output is still there"
                self.tally["destination unchanged (the old one)"] += 1
            elif entry == self.destination:
                self.check_destination(entry)  # complete and valid, never partial
                self.tally["destination complete"] += 1
            else:
                assert temp_name.match(entry.name), f"unexpected leftover {entry.name}"
                assert self.leftovers_allowed, f"{entry.name} left although the output file was unnamed (O_TMPFILE)"
                self.check_leftover(entry)
                self.tally["temporary file left"] += 1
                self.tally["temporary bytes left (total)"] += entry.stat().st_size
                entry.unlink()
        if expect_complete:
            assert self.destination.exists(), "the command finished but its output is missing"
        if not self.destination.exists():
            self.tally["destination absent"] += 1
        self.destination.unlink(missing_ok=True)


def is_plaintext_prefix(candidate: Path, plaintext: Path) -> bool:
    size = candidate.stat().st_size
    with candidate.open("rb") as left, plaintext.open("rb") as right:
        while block := left.read(1 << 22):
            if right.read(len(block)) != block:
                return False
    return size <= plaintext.stat().st_size


def folders(workspace: Workspace, name: str) -> tuple[Path, Path, Path]:
    out, work, tmpdir = (workspace.root / f"{name}-{part}" for part in ("out", "cwd", "tmp"))
    for folder in (out, work, tmpdir):
        folder.mkdir()
    return out, work, tmpdir


def report(campaign: Campaign) -> None:
    tally = ", ".join(f"{key}: {value}" for key, value in sorted(campaign.tally.items()))
    print(f"\n[crash safety] envelope {campaign.name}: {campaign.kill_points} kill points ({tally})")


def test_seal_killed_at_any_point_leaves_no_partial_output(workspace: Workspace) -> None:
    out, work, tmpdir = folders(workspace, "seal")
    destination = out / "model.env"

    def check_destination(path: Path) -> None:
        with path.open("rb") as f, envelope.EnvelopeReader(f, workspace.private_key.read_bytes()) as reader:
            digest = hashlib.sha256()
            while block := reader.read(1 << 22):
                digest.update(block)
        assert digest.hexdigest() == workspace.plaintext_sha, "the sealed output does not open to the input"

    def check_leftover(path: Path) -> None:
        # Ciphertext only; it never carries the destination's name, so nothing mistakes it for output.
        assert path.stat().st_size <= destination_size_bound(workspace)

    campaign = Campaign(
        "seal",
        [str(BIN / "envelope"), "seal", "-q", "-r", str(workspace.public_key), "-o", str(destination),
         str(workspace.plaintext)],
        destination, check_destination, check_leftover, Counter(), not supports_unnamed_files(out),
    )  # fmt: skip
    campaign.run(workspace, work, tmpdir)
    report(campaign)
    assert campaign.tally["killed while running"] >= KILL_POINTS // 2


def test_open_force_over_an_existing_output_killed_at_any_point(workspace: Workspace) -> None:
    """`open -f` replacing an output: the old one, the complete new one or (for the instant
    between removing the old and naming the new) none; never plaintext under another name."""
    out, work, tmpdir = folders(workspace, "open-force")
    destination = out / "model.bin"

    def check_destination(path: Path) -> None:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert sha256_of(path) == workspace.plaintext_sha, "the opened output differs from the plaintext"

    def check_leftover(path: Path) -> None:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert is_plaintext_prefix(path, workspace.plaintext)

    campaign = Campaign(
        "open -f",
        [str(BIN / "envelope"), "open", "-q", "-f", "-i", str(workspace.private_key), "-o", str(destination),
         str(workspace.sealed)],
        destination, check_destination, check_leftover, Counter(), not supports_unnamed_files(out),
        existing=b"the previous output\n" * 100, kill_points=KILL_POINTS // 2,
    )  # fmt: skip
    campaign.run(workspace, work, tmpdir)
    report(campaign)
    assert campaign.tally["killed while running"] >= campaign.kill_points // 2


def destination_size_bound(workspace: Workspace) -> int:
    return workspace.sealed.stat().st_size + (1 << 16)


def test_open_killed_at_any_point_leaves_no_partial_output(workspace: Workspace) -> None:
    out, work, tmpdir = folders(workspace, "open")
    destination = out / "model.bin"

    def check_destination(path: Path) -> None:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert sha256_of(path) == workspace.plaintext_sha, "the opened output differs from the plaintext"

    def check_leftover(path: Path) -> None:
        # What a killed open leaves today: a private (0600) prefix of the authentic plaintext.
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert is_plaintext_prefix(path, workspace.plaintext)
        if path.stat().st_size:
            campaign.tally["temporary file holding plaintext"] += 1

    campaign = Campaign(
        "open",
        [str(BIN / "envelope"), "open", "-q", "-i", str(workspace.private_key), "-o", str(destination),
         str(workspace.sealed)],
        destination, check_destination, check_leftover, Counter(), not supports_unnamed_files(out),
    )  # fmt: skip
    campaign.run(workspace, work, tmpdir)
    report(campaign)
    assert campaign.tally["killed while running"] >= KILL_POINTS // 2


def test_killed_open_leaves_nothing_where_unnamed_files_work(workspace: Workspace) -> None:
    out, work, _tmpdir = folders(workspace, "open-unnamed")
    if not supports_unnamed_files(out):
        pytest.skip("the temporary folder does not support O_TMPFILE")
    destination = out / "model.bin"
    command = [str(BIN / "envelope"), "open", "-q", "-i", str(workspace.private_key), "-o", str(destination),
               str(workspace.sealed)]  # fmt: skip
    process = subprocess.Popen(command, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # mid-payload (a full run takes about a second)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert [p.name for p in out.iterdir() if p != destination] == []
    if destination.exists():
        assert sha256_of(destination) == workspace.plaintext_sha


# Runs `envelope` with O_TMPFILE unavailable, and SIGKILLs it as soon as its named temporary
# output holds data: a thread watches the new file's size. Deterministic, where killing from outside
# at a guessed moment could miss the write (a run that had ended, or a slow start).
KILLED_ONCE_WRITING_WITHOUT_UNNAMED_FILES = """
import os, signal, sys, threading, time
import envelope.atomic as atomic
atomic._open_unnamed = lambda directory, mode: None
create = atomic._create
def watch(fd):
    while os.fstat(fd).st_size == 0:
        time.sleep(0.0002)
    os.kill(os.getpid(), signal.SIGKILL)
def watched_create(*args, **kwargs):
    fd, temp = create(*args, **kwargs)
    threading.Thread(target=watch, args=(fd,), daemon=True).start()
    return fd, temp
atomic._create = watched_create
from envelope.cli.main import main
sys.exit(main())
"""

FALLBACK_FINDING = (
    "FINDING: without O_TMPFILE (macOS, some file systems) atomic_output falls back to a named "
    "'.OUT.XXXXXXXX.partial' file; a SIGKILLed `envelope open -o OUT` leaves it in the destination "
    "folder holding a verified plaintext prefix (mode 0600): envelope/atomic.py atomic_output fallback"
)


def test_killed_open_fallback_leaves_no_plaintext(workspace: Workspace) -> None:
    """The fallback's known finding, reported as an expected failure while it stands: the kill is
    checked to have landed mid-write (a real failure otherwise), and the test passes once a fix
    leaves no plaintext behind."""
    out, work, _tmpdir = folders(workspace, "open-fallback")
    destination = out / "model.bin"
    result = subprocess.run(
        [sys.executable, "-c", KILLED_ONCE_WRITING_WITHOUT_UNNAMED_FILES, "open", "-q", "-i",
         str(workspace.private_key), "-o", str(destination), str(workspace.sealed)],
        cwd=work, capture_output=True, check=False,
    )  # fmt: skip
    assert result.returncode == -signal.SIGKILL, f"not killed mid-write: {result.stderr.decode()!r}"
    assert not destination.exists(), "the output was named before any data was written"
    leftovers = [p for p in out.iterdir() if p != destination]
    holding_plaintext = [p for p in leftovers if p.stat().st_size and is_plaintext_prefix(p, workspace.plaintext)]
    for path in holding_plaintext:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, "the leftover plaintext is readable by others"
    if holding_plaintext:
        pytest.xfail(FALLBACK_FINDING)


# Runs `envelope` and SIGKILLs it right after the Nth call, in envelope.atomic, that changes a
# name in a folder (link, unlink, rename, replace): N = $ENVELOPE_TEST_KILL_AFTER. This lands a
# kill in each step of putting an output in place, deterministically.
KILLED_AFTER_NAMING_STEP = """
import os, signal, sys, types
import envelope.atomic as atomic
step, steps = int(os.environ["ENVELOPE_TEST_KILL_AFTER"]), []
def counted(call):
    def wrapper(*args, **kwargs):
        result = call(*args, **kwargs)
        steps.append(call.__name__)
        if len(steps) == step:
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    return wrapper
proxy = types.SimpleNamespace(**vars(os))
for name in ("link", "unlink", "rename", "replace"):
    setattr(proxy, name, counted(getattr(os, name)))
atomic.os = proxy
from envelope.cli.main import main
sys.exit(main())
"""


@pytest.mark.parametrize("command", ["open", "seal"])
def test_replacing_an_output_killed_after_each_naming_step(workspace: Workspace, tmp_path: Path, command: str) -> None:
    """`-f` over an existing output, killed after each step that names a file. `open` (plaintext,
    private): the old output, the new one or none, and nothing else ever. `seal` (ciphertext):
    the old output or the new one, never none; the only possible leftover is the hidden
    `.NAME.*.partial`, holding the complete new output (the instant before its rename)."""
    if not supports_unnamed_files(tmp_path):
        pytest.skip("the temporary folder does not support O_TMPFILE")
    plaintext = tmp_path / "small.bin"
    plaintext.write_bytes(os.urandom(1 << 20))
    sealed = tmp_path / "small.env"
    envelope.seal_file(plaintext, sealed, workspace.public_key.read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    destination = out / ("model.bin" if command == "open" else "model.env")
    if command == "open":
        args = ["open", "-q", "-f", "-i", str(workspace.private_key), "-o", str(destination), str(sealed)]
    else:
        args = ["seal", "-q", "-f", "-r", str(workspace.public_key), "-o", str(destination), str(plaintext)]
    key = workspace.private_key.read_bytes()
    old = b"the previous output\n" * 100
    hidden = re.compile(rf"^\.{re.escape(destination.name)}\.[0-9a-f]+\.partial$")
    outcomes = []
    for step in range(1, 6):
        destination.write_bytes(old)
        result = subprocess.run(
            [sys.executable, "-c", KILLED_AFTER_NAMING_STEP, *args],
            env={**os.environ, "ENVELOPE_TEST_KILL_AFTER": str(step)},
            capture_output=True,
            check=False,
        )
        assert result.returncode in (0, -signal.SIGKILL), result.stderr.decode()
        others = [p for p in out.iterdir() if p != destination]
        if not destination.exists():
            state = "absent"
        elif destination.read_bytes() == old:
            state = "old"
        elif command == "open":
            assert destination.read_bytes() == plaintext.read_bytes()
            state = "new"
        else:
            assert envelope.open(destination.read_bytes(), workspace.private_key.read_bytes()) == plaintext.read_bytes()
            state = "new"
        if command == "open":
            assert others == [], f"kill after step {step} left {[p.name for p in others]} beside the output"
        else:
            assert state != "absent", f"kill after step {step} left no output: the replacement was not atomic"
            for leftover in others:
                assert hidden.match(leftover.name), f"unexpected leftover {leftover.name}"
                assert envelope.open(leftover.read_bytes(), key) == plaintext.read_bytes(), "not the complete output"
                leftover.unlink()
        outcomes.append((step, "killed" if result.returncode else "finished", state, len(others)))
        destination.unlink(missing_ok=True)
        if result.returncode == 0:
            break
    print(f"\n[crash safety] envelope {command} -f, killed after each naming step: {outcomes}")
    assert outcomes[0][1] == "killed" and outcomes[-1][1:3] == ("finished", "new"), outcomes


# --- batches: many files in one command (docs/CLI.md, "Many files at once") ----------------------

BATCH_FILES = 120
BATCH_FILE_SIZE = 256 << 10


@dataclass
class BatchWorkspace:
    inputs: Path  # the plaintext files
    sealed: Path  # the same files, sealed (NAME.env)
    digests: dict[str, str]  # plaintext name -> SHA-256
    sealed_digests: dict[str, str]


@pytest.fixture(scope="module")
def batch_workspace(workspace: Workspace) -> BatchWorkspace:
    inputs = workspace.root / "batch-in"
    sealed = workspace.root / "batch-sealed"
    inputs.mkdir()
    sealed.mkdir()
    rng = random.Random(SEED)
    for index in range(BATCH_FILES):
        (inputs / f"shard-{index:03d}.bin").write_bytes(rng.randbytes(BATCH_FILE_SIZE))
    key = workspace.public_key.read_bytes()
    results = envelope.seal_files({p: sealed / f"{p.name}.env" for p in inputs.iterdir()}, key)
    assert all(r.ok for r in results)
    return BatchWorkspace(
        inputs,
        sealed,
        {p.name: sha256_of(p) for p in inputs.iterdir()},
        {p.name: sha256_of(p) for p in sealed.iterdir()},
    )


def children_of(pid: int) -> list[int]:
    """The processes ``pid`` started (its batch workers), from /proc."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(n) for n in f.read().split()]
    return found


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie did stop
    except OSError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads the workers from /proc (Linux)")
@pytest.mark.parametrize("command", ["seal", "open"])
def test_batch_killed_at_any_point(
    workspace: Workspace, batch_workspace: BatchWorkspace, tmp_path: Path, command: str
) -> None:
    """A batch killed at any moment (SIGKILL to the command; its workers die with it): each output
    there is complete (seal: opens to its input; open: the plaintext, mode 0600), nothing else is
    in the output folder (no partial file, no plaintext under another name), the inputs are
    untouched, nothing is left in the working folder or TMPDIR, and no worker process goes on."""
    out, work, tmpdir = tmp_path / "out", tmp_path / "cwd", tmp_path / "tmp"
    for folder in (out, work, tmpdir):
        folder.mkdir()
    unnamed = supports_unnamed_files(out)
    key = workspace.private_key.read_bytes()
    if command == "seal":
        sources, source_digests = batch_workspace.inputs, batch_workspace.digests
        args = ["seal", "-q", "-j", "2", "-r", str(workspace.public_key), "-o", str(out)]
    else:
        sources, source_digests = batch_workspace.sealed, batch_workspace.sealed_digests
        args = ["open", "-q", "-j", "2", "-i", str(workspace.private_key), "-o", str(out)]
    names = sorted(p.name for p in sources.iterdir())
    full = [str(BIN / "envelope"), *args, *(str(sources / n) for n in names)]
    environment = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONDONTWRITEBYTECODE": "1"}
    tally: Counter[str] = Counter()

    def check_after(*, expect_all: bool) -> None:
        assert {p.name: sha256_of(p) for p in sources.iterdir()} == source_digests, "an input changed"
        assert not any(work.iterdir()) and not any(tmpdir.iterdir()), "something was left outside the output folder"
        present = 0
        for entry in out.iterdir():
            if entry.name.startswith(".") and entry.name.endswith(".partial"):
                assert not unnamed, f"{entry.name} left although outputs are unnamed until complete (O_TMPFILE)"
                tally["hidden temporary file left"] += 1
                entry.unlink()
                continue
            if command == "seal":
                assert entry.name.endswith(".env") and entry.name[:-4] in batch_workspace.digests, entry.name
                with entry.open("rb") as f, envelope.EnvelopeReader(f, key) as reader:
                    digest = hashlib.sha256(reader.read()).hexdigest()
                assert digest == batch_workspace.digests[entry.name[:-4]], f"{entry.name} is not its complete input"
            else:
                assert entry.name in batch_workspace.digests, f"unexpected file {entry.name}"
                assert stat.S_IMODE(entry.stat().st_mode) == 0o600
                assert sha256_of(entry) == batch_workspace.digests[entry.name], f"{entry.name} is not the plaintext"
            present += 1
            entry.unlink()
        if expect_all:
            assert present == BATCH_FILES
        tally["outputs complete"] += present

    started = time.monotonic()
    subprocess.run(full, cwd=work, env=environment, check=True, capture_output=True)
    full_run = time.monotonic() - started
    check_after(expect_all=True)
    rng = random.Random(SEED)
    kill_points = 10
    for i in range(kill_points):
        delay = full_run * 1.1 * (i + rng.random()) / kill_points
        process = subprocess.Popen(
            full, cwd=work, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(delay)
        workers = children_of(process.pid)
        alive = process.poll() is None
        process.send_signal(signal.SIGKILL)
        process.wait()
        deadline = time.monotonic() + 10
        while any(running(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not any(running(pid) for pid in workers), "a worker went on after the command was killed"
        tally["killed while running" if alive else "finished before the kill"] += 1
        tally["workers seen"] += len(workers)
        check_after(expect_all=not alive)
    print(f"\n[crash safety] envelope {command} of {BATCH_FILES} files: {kill_points} kill points ({dict(tally)})")
    assert tally["killed while running"] >= kill_points // 2
    assert tally["workers seen"] > 0


@pytest.mark.parametrize("command", ["open", "seal"])
def test_batch_killed_after_each_naming_step(
    workspace: Workspace, batch_workspace: BatchWorkspace, tmp_path: Path, command: str
) -> None:
    """A batch on the command's own process (-j 1), killed right after its Nth output got its
    name: the outputs named so far are there (N, or a few more that other threads named in that
    instant), each complete; the files in flight leave nothing (where O_TMPFILE works)."""
    if not supports_unnamed_files(tmp_path):
        pytest.skip("the temporary folder does not support O_TMPFILE")
    names = sorted(p.name for p in batch_workspace.inputs.iterdir())[:12]
    if command == "seal":
        args = ["seal", "-q", "-j", "1", "-r", str(workspace.public_key)]
        sources = [str(batch_workspace.inputs / n) for n in names]
    else:
        args = ["open", "-q", "-j", "1", "-i", str(workspace.private_key)]
        sources = [str(batch_workspace.sealed / f"{n}.env") for n in names]
    key = workspace.private_key.read_bytes()
    for step in (1, 5, 12):
        out = tmp_path / f"out-{step}"
        out.mkdir()
        result = subprocess.run(
            [sys.executable, "-c", KILLED_AFTER_NAMING_STEP, *args, "-o", str(out), *sources],
            env={**os.environ, "ENVELOPE_TEST_KILL_AFTER": str(step)},
            capture_output=True,
            check=False,
        )
        assert result.returncode == -signal.SIGKILL, result.stderr.decode()
        present = sorted(p.name for p in out.iterdir())
        assert step <= len(present) <= len(names), present
        for name in present:
            if command == "seal":
                plain = envelope.open((out / name).read_bytes(), key)
                assert hashlib.sha256(plain).hexdigest() == batch_workspace.digests[name[:-4]]
            else:
                assert sha256_of(out / name) == batch_workspace.digests[name]
