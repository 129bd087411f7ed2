"""Many files at once (envelope.batch): results per file, one failure that loses nothing else, keys
that never leave the process by pickle, and the durability contract of docs/SDK.md, "Many files at
once" (each output synced before it is named; each output folder synced once, after every file).
What a kill leaves is tests/test_crash_safety.py's."""

from __future__ import annotations

import os
import pickle
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import envelope
import envelope.batch as batch
from envelope import FileResult, open_files, seal_files, verify_files


def make_inputs(folder: Path, sizes: list[int]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, size in enumerate(sizes):
        path = folder / f"part-{index:03d}.bin"
        path.write_bytes(os.urandom(size))
        paths.append(path)
    return paths


def sealed_pairs(inputs: list[Path], out: Path) -> dict[Path, Path]:
    out.mkdir(exist_ok=True)
    return {path: out / (path.name + ".env") for path in inputs}


@pytest.mark.parametrize("workers", [1, 2])
def test_seal_open_verify_many_files(alice, tmp_path, workers):
    inputs = make_inputs(tmp_path / "in", [0, 1, 100, 70_000, 3 << 20, 5, *([64 << 10] * 40)])
    pairs = sealed_pairs(inputs, tmp_path / "sealed")
    finished: list[int] = []
    results = seal_files(
        pairs, alice.public_key(), metadata={"set": "demo"}, chunk_size=1 << 20, workers=workers,
        progress=finished.append,
    )  # fmt: skip
    assert [r.path for r in results] == [str(p) for p in inputs]
    assert all(r.ok and r.error is None for r in results), [str(r) for r in results if not r.ok]
    assert sorted(finished) == sorted(p.stat().st_size for p in inputs)
    for source, output in pairs.items():
        assert envelope.open(output.read_bytes(), alice) == source.read_bytes()
    back = tmp_path / "back"
    back.mkdir()
    opened = open_files({o: back / s.name for s, o in pairs.items()}, alice, workers=workers)
    assert all(r.ok for r in opened)
    for result, source in zip(opened, inputs):
        assert result.output == str(back / source.name)
        assert result.result is not None and result.result.metadata["set"] == "demo"
        assert Path(result.output).read_bytes() == source.read_bytes()
        assert stat.S_IMODE(os.stat(result.output).st_mode) == 0o600
    checked = verify_files(list(pairs.values()), alice, workers=workers)
    assert [r.ok for r in checked] == [True] * len(inputs)
    assert [r.result.plaintext_len for r in checked if r.result] == [p.stat().st_size for p in inputs]
    assert all(r.output is None for r in checked)


@pytest.mark.parametrize("workers", [1, 2])
def test_one_bad_file_loses_nothing_else(alice, stranger, tmp_path, workers):
    inputs = make_inputs(tmp_path / "in", [1000] * 40)
    pairs = sealed_pairs(inputs, tmp_path / "sealed")
    missing = tmp_path / "in" / "missing.bin"
    pairs_with_missing = {**pairs, missing: tmp_path / "sealed" / "missing.bin.env"}
    results = seal_files(pairs_with_missing, alice.public_key(), workers=workers)
    assert [r.ok for r in results] == [True] * 40 + [False]
    assert isinstance(results[-1].error, FileNotFoundError)
    assert str(results[-1]).startswith(f"{missing}: ")
    assert not (tmp_path / "sealed" / "missing.bin.env").exists()
    # One damaged file, one for another key, one that exists already: each fails alone.
    outputs = list(pairs.values())
    damaged = bytearray(outputs[3].read_bytes())
    damaged[-40] ^= 1
    outputs[3].write_bytes(bytes(damaged))
    envelope.seal_file(inputs[5], outputs[5], stranger.public_key(), overwrite=True)
    back = tmp_path / "back"
    back.mkdir()
    (back / "part-007.bin").write_bytes(b"kept")
    opened = open_files([(o, back / s.name) for s, o in pairs.items()], alice, workers=workers)
    failed = {r.path: r.error for r in opened if not r.ok}
    assert set(failed) == {str(outputs[3]), str(outputs[5]), str(outputs[7])}
    assert isinstance(failed[str(outputs[3])], envelope.AuthenticationError)
    assert isinstance(failed[str(outputs[5])], envelope.NoMatchingKeyError)
    assert isinstance(failed[str(outputs[7])], envelope.OutputExistsError)
    assert (back / "part-007.bin").read_bytes() == b"kept"
    assert not (back / "part-003.bin").exists() and not (back / "part-005.bin").exists()
    for index, source in enumerate(inputs):
        if index not in (3, 5, 7):
            assert (back / source.name).read_bytes() == source.read_bytes()
    assert sorted(os.listdir(back)) == sorted(s.name for i, s in enumerate(inputs) if i not in (3, 5))
    checked = verify_files(outputs, alice, workers=workers)
    assert [r.path for r in checked if not r.ok] == [str(outputs[3]), str(outputs[5])]


def test_overwrite(alice, tmp_path):
    inputs = make_inputs(tmp_path / "in", [10, 20])
    pairs = sealed_pairs(inputs, tmp_path / "sealed")
    assert all(r.ok for r in seal_files(pairs, alice.public_key(), workers=1))
    again = seal_files(pairs, alice.public_key(), workers=1)
    assert all(isinstance(r.error, envelope.OutputExistsError) for r in again)
    assert all(r.ok for r in seal_files(pairs, alice.public_key(), overwrite=True, workers=1))


def test_signed_batch(alice, tmp_path):
    signing_key = envelope.generate_signing_key()
    inputs = make_inputs(tmp_path / "in", [100, 2000])
    pairs = sealed_pairs(inputs, tmp_path / "sealed")
    assert all(r.ok for r in seal_files(pairs, alice.public_key(), sign_with=signing_key, workers=2))
    pinned = verify_files(list(pairs.values()), alice, signed_by=signing_key.public_key(), workers=2)
    assert all(r.ok and r.result and r.result.signer and r.result.signer.verified for r in pinned)
    other = envelope.generate_signing_key().public_key()
    refused = verify_files(list(pairs.values()), alice, signed_by=other, workers=2)
    assert all(isinstance(r.error, envelope.SignerError) for r in refused)


def test_arguments_no_file_could_use_fail_the_call(alice, tmp_path):
    inputs = make_inputs(tmp_path / "in", [1, 2])
    with pytest.raises(envelope.UsageError, match="two inputs for one output"):
        seal_files([(inputs[0], tmp_path / "x.env"), (inputs[1], tmp_path / "x.env")], alice.public_key())
    with pytest.raises(envelope.UsageError, match="local paths"):
        seal_files({inputs[0]: "s3://bucket/x.env"}, alice.public_key())
    with pytest.raises(envelope.UsageError, match="pairs"):
        seal_files([str(inputs[0])], alice.public_key())  # type: ignore[list-item]
    with pytest.raises(envelope.UsageError, match="workers"):
        seal_files({inputs[0]: tmp_path / "x.env"}, alice.public_key(), workers=0)
    with pytest.raises(envelope.UsageError):
        seal_files({inputs[0]: tmp_path / "x.env"}, [])
    with pytest.raises(envelope.UsageError):
        seal_files({inputs[0]: tmp_path / "x.env"}, alice.public_key(), metadata={1: "x"})  # type: ignore[dict-item]
    assert not (tmp_path / "x.env").exists()


def test_same_file_and_sealed_folder_are_refused_per_file(alice, tmp_path):
    inputs = make_inputs(tmp_path / "in", [10])
    results = seal_files({inputs[0]: inputs[0]}, alice.public_key(), overwrite=True, workers=1)
    assert isinstance(results[0].error, envelope.UsageError)
    folder = tmp_path / "tree"
    make_inputs(folder, [5])
    envelope.seal_folder(folder, tmp_path / "tree.env", alice.public_key())
    opened = open_files({tmp_path / "tree.env": tmp_path / "tree.out"}, alice, workers=1)
    assert isinstance(opened[0].error, envelope.UsageError) and "open_folder" in str(opened[0])
    assert not (tmp_path / "tree.out").exists()
    assert verify_files([tmp_path / "tree.env"], alice, workers=1)[0].ok


def test_keys_reach_the_workers_without_pickle(alice, tmp_path):
    """RSA key objects cannot be pickled at all, so a batch on two processes that opens with one
    proves that the key reached them by fork, not through a pipe."""
    with pytest.raises(TypeError):
        pickle.dumps(alice)
    inputs = make_inputs(tmp_path / "in", [10] * 70)
    pairs = sealed_pairs(inputs, tmp_path / "sealed")
    assert batch._processes(2, len(pairs)) == 2
    assert all(r.ok for r in seal_files(pairs, alice.public_key(), workers=2))
    assert all(r.ok for r in verify_files(list(pairs.values()), envelope.RsaIdentity(alice), workers=2))


def test_a_key_unlocked_on_first_use_is_asked_once_on_the_calling_process(alice, tmp_path):
    """A passphrase (or a key file's passphrase) given by a function, such as a terminal prompt: the
    first file unlocks it on the calling process before the workers start, which inherit it; asked
    in each worker instead, the prompts would race for one terminal."""
    from cryptography.hazmat.primitives import serialization

    asked = tmp_path / "asked"

    def ask() -> str:
        with asked.open("a") as log:  # a file: the workers are other processes
            log.write(f"{os.getpid()}\n")
        return "correct horse"

    inputs = make_inputs(tmp_path / "in", [100] * 70)
    pairs = sealed_pairs(inputs, tmp_path / "sealed")
    assert batch._processes(2, len(pairs)) == 2
    cheap = {"work_factor": 10}
    assert all(r.ok for r in seal_files(pairs, envelope.Passphrase(ask, **cheap), workers=2))
    assert asked.read_text().split() == [str(os.getpid())]
    asked.unlink()
    back = tmp_path / "back"
    back.mkdir()
    results = open_files({o: back / s.name for s, o in pairs.items()}, envelope.Passphrase(ask), workers=2)
    assert all(r.ok for r in results) and asked.read_text().split() == [str(os.getpid())]
    asked.unlink()
    key_file = tmp_path / "alice.pem"
    key_file.write_bytes(alice.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.BestAvailableEncryption(b"correct horse")))  # fmt: skip
    sealed = sealed_pairs(inputs, tmp_path / "for-alice")
    assert all(r.ok for r in seal_files(sealed, alice.public_key(), workers=2))
    locked = envelope.RsaKeyFileIdentity(key_file, ask)
    assert all(r.ok for r in verify_files(list(sealed.values()), locked, workers=2))
    assert asked.read_text().split() == [str(os.getpid())]


def test_keys_held_outside_the_process_are_used_from_the_calling_process(alice, tmp_path):
    """A token's session or a KMS client would be shared by forked workers (PKCS#11 forbids it;
    connection pools do not survive it): a batch with a KeyUnwrapper, or a Signer that is not a
    local key, stays on the calling process."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ed25519, padding

    used = tmp_path / "used"

    def log() -> None:
        with used.open("a") as f:
            f.write(f"{os.getpid()}\n")

    class HeldKey:  # a KeyUnwrapper, public names only
        public_key = alice.public_key()

        def unwrap_key(self, wrapped: bytes) -> bytes:
            log()
            oaep = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
            return alice.decrypt(wrapped, oaep)

    signing = ed25519.Ed25519PrivateKey.generate()

    class HeldSigner:  # a Signer, public names only
        algorithm = "ed25519"
        public_key_der = envelope.KeySigner(signing).public_key_der

        def sign(self, message: bytes) -> bytes:
            log()
            return signing.sign(message)

    inputs = make_inputs(tmp_path / "in", [100] * 70)
    pairs = sealed_pairs(inputs, tmp_path / "sealed")
    assert batch._processes(2, len(pairs)) == 2
    assert all(r.ok for r in seal_files(pairs, alice.public_key(), sign_with=HeldSigner(), workers=2))
    assert all(r.ok for r in verify_files(list(pairs.values()), HeldKey(), workers=2))
    assert set(used.read_text().split()) == {str(os.getpid())} and len(used.read_text().split()) == 140


def test_each_folder_is_synced_once_after_every_file(alice, tmp_path, monkeypatch):
    """The contract's order: every output's data synced (before its name), then each output
    folder synced once; a single seal_file syncs its folder itself."""
    events: list[tuple[str, str]] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            events.append(("folder", os.readlink(f"/proc/self/fd/{fd}")))
        else:
            events.append(("file", str(info.st_ino)))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    inputs = make_inputs(tmp_path / "in", [100] * 6)
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    pairs = {path: (first if i % 2 else second) / (path.name + ".env") for i, path in enumerate(inputs)}
    results = seal_files(pairs, alice.public_key(), workers=1)
    assert all(r.ok for r in results)
    files = [index for index, (kind, _) in enumerate(events) if kind == "file"]
    folders = [(index, name) for index, (kind, name) in enumerate(events) if kind == "folder"]
    assert len(files) == 6
    assert sorted(name for _, name in folders) == sorted([str(first), str(second)])
    assert max(files) < min(index for index, _ in folders)
    events.clear()
    envelope.seal_file(inputs[0], tmp_path / "single.env", alice.public_key())
    assert [kind for kind, _ in events] == ["file", "folder"]


def test_a_link_output_syncs_the_folder_of_the_file_it_points_to(alice, tmp_path, monkeypatch):
    inputs = make_inputs(tmp_path / "in", [100])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "real.env").write_bytes(b"old")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "link.env").symlink_to(elsewhere / "real.env")
    synced: list[str] = []
    monkeypatch.setattr(batch, "sync_folder", synced.append)
    results = seal_files({inputs[0]: tmp_path / "out" / "link.env"}, alice.public_key(), overwrite=True, workers=1)
    assert results[0].ok
    assert synced == [str(elsewhere)]
    assert envelope.open((elsewhere / "real.env").read_bytes(), alice) == inputs[0].read_bytes()


def test_a_failed_folder_sync_fails_that_folders_files(alice, tmp_path, monkeypatch):
    inputs = make_inputs(tmp_path / "in", [100, 100])
    pairs = sealed_pairs(inputs, tmp_path / "sealed")

    def failing(directory: str) -> None:
        raise OSError(5, "Input/output error", directory)

    monkeypatch.setattr(batch, "sync_folder", failing)
    results = seal_files(pairs, alice.public_key(), workers=1)
    assert all(isinstance(r.error, OSError) and r.error.errno == 5 for r in results)
    assert all(r.output is not None and Path(r.output).exists() for r in results)  # complete, not durable
    assert "syncing the folder" in str(results[0])


def test_result_type():
    done = FileResult("a.bin", "a.bin.env")
    assert done.ok and str(done) == "a.bin: ok"
    failed = FileResult("b.bin", None, envelope.AuthenticationError("a chunk failed authentication"))
    assert not failed.ok and str(failed) == "b.bin: a chunk failed authentication"


@given(sizes=st.lists(st.integers(0, 3000), min_size=1, max_size=12), chunk=st.sampled_from([16, 1000]))
def test_round_trip_property(alice, tmp_path_factory, sizes, chunk):
    root = tmp_path_factory.mktemp("prop")
    inputs = make_inputs(root / "in", sizes)
    pairs = sealed_pairs(inputs, root / "sealed")
    assert all(r.ok for r in seal_files(pairs, alice.public_key(), chunk_size=chunk, workers=1))
    (root / "back").mkdir()
    opened = open_files({o: root / "back" / s.name for s, o in pairs.items()}, alice, workers=1)
    assert all(r.ok for r in opened)
    for source in inputs:
        assert (root / "back" / source.name).read_bytes() == source.read_bytes()


def test_a_dying_worker_fails_the_call_after_the_finished_outputs_are_synced(alice, tmp_path, monkeypatch):
    """A worker process that dies (killed, out of memory) is not one file's failure: the call
    raises WorkerError, with the results known, and the outputs finished before are complete and
    their folder synced."""
    inputs = make_inputs(tmp_path / "in", [100] * 80)
    pairs = sealed_pairs(inputs, tmp_path / "sealed")
    real_seal_one = batch._seal_one

    def dying(options, source, output, threads):  # type: ignore[no-untyped-def]
        if source.endswith("part-070.bin"):
            os._exit(9)  # in the worker process that has this file
        return real_seal_one(options, source, output, threads)

    synced: list[str] = []
    monkeypatch.setattr(batch, "_seal_one", dying)
    monkeypatch.setattr(batch, "sync_folder", synced.append)
    with pytest.raises(envelope.WorkerError, match="a worker process died") as caught:
        seal_files(pairs, alice.public_key(), workers=2)
    written = sorted((tmp_path / "sealed").iterdir())
    assert written and len(written) < 80
    known = [r for r in caught.value.results if r is not None]
    assert len(caught.value.results) == 80 and known and all(r.ok for r in known)
    assert {Path(r.output) for r in known} <= set(written)
    assert f"{80 - len(known)} of 80 files unfinished" in str(caught.value)
    for output in written:
        source = tmp_path / "in" / output.name.removesuffix(".env")
        assert envelope.open(output.read_bytes(), alice) == source.read_bytes()
    assert synced == [str(tmp_path / "sealed")]


@pytest.mark.parametrize("workers", [1, 2])
def test_without_unnamed_files_nothing_is_left_but_the_outputs(alice, tmp_path, monkeypatch, workers):
    """Where O_TMPFILE is missing (macOS, some file systems) each output is written under a hidden
    .NAME.*.partial name first: a batch that ends, with failures or not, leaves none of them."""
    import envelope.atomic as atomic

    monkeypatch.setattr(atomic, "_open_unnamed", lambda directory, mode: None)
    inputs = make_inputs(tmp_path / "in", [5000] * 40)
    pairs = sealed_pairs(inputs, tmp_path / "sealed")
    assert all(r.ok for r in seal_files(pairs, alice.public_key(), workers=workers))
    outputs = list(pairs.values())
    damaged = bytearray(outputs[9].read_bytes())
    damaged[-40] ^= 1
    outputs[9].write_bytes(bytes(damaged))
    back = tmp_path / "back"
    back.mkdir()
    opened = open_files({o: back / s.name for s, o in pairs.items()}, alice, workers=workers)
    assert [r.ok for r in opened].count(False) == 1
    assert sorted(os.listdir(tmp_path / "sealed")) == sorted(o.name for o in outputs)
    assert sorted(os.listdir(back)) == sorted(s.name for i, s in enumerate(inputs) if i != 9)
