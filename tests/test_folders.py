"""Spec section 11: folders sealed as one file. Round trips, lazy member reads, every MUST-reject
rule (R29-R34) on crafted payloads, swapped members, extraction safety, signatures, URLs, the CLI
and flat memory when sealing."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
import tracemalloc
from pathlib import Path
from typing import Any

import msgpack
import pytest
from cli_support import ENVELOPE, INFO, Keys, needs_console_scripts, ok, run
from hypothesis import given, settings
from hypothesis import strategies as st

import envelope
from envelope import _stream
from envelope._folder import FOLDER_V1, PAYLOAD_KEY

CS = 16  # the chunk size of crafted payloads
MARK = {PAYLOAD_KEY: FOLDER_V1}
Tree = tuple[Path, dict[str, bytes]]


def make_tree(root: Path) -> dict[str, bytes]:
    """A folder with nested paths, an empty file, binary data and non-ASCII names."""
    files = {
        "config.json": b'{"model_type": "gpt2"}',
        "empty.txt": b"",
        "tokenizer/vocab.json": '{"é": 1}'.encode(),
        "weights/model-00001-of-00002.safetensors": os.urandom(70_000),
        "weights/model-00002-of-00002.safetensors": bytes(range(256)) * 100,
        "naïve/日本語.bin": b"\x00\xff" * 9,
    }
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    root = tmp_path / "model"
    root.mkdir()
    return root, make_tree(root)


# --- crafted payloads --------------------------------------------------------------------------------


def align(x: int, size: int = CS) -> int:
    return -(-x // size) * size


def payload(members: list[tuple[str, bytes]], *, maps: list[Any] | None = None, index: bytes | None = None) -> bytes:
    """A folder payload laid out as section 11.2 says (members in the order given); ``maps`` or
    ``index`` replace what the index says, to break one rule."""
    if index is None:
        index_len = 0
        while True:
            at, entries = 4 + index_len, []
            for name, data in members:
                entries.append({"name": name, "offset": align(at), "size": len(data)})
                at = align(at) + len(data)
            index = msgpack.packb(maps if maps is not None else entries)
            if len(index) == index_len or maps is not None:
                break
            index_len = len(index)
    out = bytearray(struct.pack(">I", len(index)) + index)
    for name, data in members:
        out += bytes(align(len(out)) - len(out)) + data
    return bytes(out)


def sealed(key: Any, data: bytes, metadata: dict[str, Any] | None = None) -> bytes:
    return envelope.seal(data, key.public_key(), metadata=MARK if metadata is None else metadata, chunk_size=CS)


def refused(key: Any, data: bytes, error: type[Exception], rule: str, metadata: dict[str, Any] | None = None) -> None:
    with pytest.raises(error, match=rule):
        envelope.open_folder(sealed(key, data, metadata), key).close()


TWO = [("a.txt", b"hello"), ("b/c.bin", b"x" * 40)]


def test_a_crafted_payload_opens(alice: Any) -> None:
    with envelope.open_folder(sealed(alice, payload(TWO)), alice) as folder:
        assert folder.names() == ["a.txt", "b/c.bin"]
        assert folder.read("b/c.bin") == b"x" * 40
        folder.verify()


# R29: the marking


def test_r29_a_file_that_is_not_marked_is_not_a_folder(alice: Any) -> None:
    refused(alice, payload(TWO), envelope.MalformedError, "R29", metadata={})


def test_r29_a_marking_that_is_not_a_string(alice: Any) -> None:
    refused(alice, payload(TWO), envelope.MalformedError, "R29", metadata={PAYLOAD_KEY: 1})


def test_r29_another_payload_kind_is_unsupported(alice: Any) -> None:
    refused(alice, payload(TWO), envelope.UnsupportedError, "R29", metadata={PAYLOAD_KEY: "folder-v2"})


# R30: the index length


@pytest.mark.parametrize("data", [b"", b"\x00\x00\x01"], ids=["empty", "three-bytes"])
def test_r30_a_payload_shorter_than_its_index_length(alice: Any, data: bytes) -> None:
    refused(alice, data, envelope.MalformedError, "R30")


def test_r30_an_index_past_the_end(alice: Any) -> None:
    refused(alice, struct.pack(">I", 100) + b"\x90", envelope.MalformedError, "R30")


def test_r30_an_index_over_the_limit_is_refused_before_it_is_read(alice: Any) -> None:
    refused(alice, struct.pack(">I", (16 << 20) + 1) + b"\x90", envelope.LimitError, "R30")


# R31: the index


@pytest.mark.parametrize(
    "index",
    [
        msgpack.packb({"name": "a"}),  # not an array
        msgpack.packb([]) + b"\x90",  # does not consume index_len
        b"",  # nothing
        msgpack.packb(["a"]),  # a member that is not a map
        msgpack.packb([{"name": "a", "offset": 16}]),  # no size
        msgpack.packb([{"name": "a", "offset": 16, "size": 0, "mode": 0o755}]),  # another key
        msgpack.packb([{"name": b"a", "offset": 16, "size": 0}]),  # name not str
        msgpack.packb([{"name": "a", "offset": -16, "size": 0}]),  # negative
        msgpack.packb([{"name": "a", "offset": 16, "size": True}]),  # bool is not int
        msgpack.packb([{"name": "a", "offset": 16, "size": 0.0}]),  # float is not int
        msgpack.packb([{"name": "a", "offset": 16, "size": 0, "executable": 1}]),  # not bool
        b"\x91\x82\xa4name\xa1a\xa4name\xa1b",  # a key twice
    ],
    ids=["map", "trailing", "nothing", "not-map", "no-size", "other-key", "bin-name", "negative", "bool", "float",
         "executable-int", "duplicate-key"],
)  # fmt: skip
def test_r31_malformed_indexes(alice: Any, index: bytes) -> None:
    data = struct.pack(">I", len(index)) + index
    refused(alice, data + bytes(align(len(data)) - len(data)), envelope.MalformedError, "R31")


def test_r31_too_many_members_is_a_limit(alice: Any) -> None:
    index = msgpack.packb([{"name": "a", "offset": 0, "size": 0}] * 100_001)
    refused(alice, struct.pack(">I", len(index)) + index, envelope.LimitError, "R31")


# R32: names


@pytest.mark.parametrize(
    "name", ["", "/etc/passwd", "a//b", "a/", "./a", "a/./b", "../evil", "a/..", "a\\b", "a\x00b", "x" * 4097]
)
def test_r32_a_name_that_could_leave_the_folder_or_is_ambiguous(alice: Any, name: str) -> None:
    refused(alice, payload([(name, b"data")]), envelope.MalformedError, "R32")


def test_r32_a_name_at_the_limit_is_allowed(alice: Any) -> None:
    name = "/".join(["x" * 200] * 20)[:4096]
    with envelope.open_folder(sealed(alice, payload([(name, b"1")])), alice) as folder:
        assert folder.names() == [name]


@pytest.mark.parametrize(
    "members", [[("a", b"1"), ("a", b"2")], [("a", b"1"), ("a/b", b"2")], [("a/b/c", b"1"), ("a/b", b"2")]],
    ids=["twice", "folder-of-another", "folder-listed-later"],
)  # fmt: skip
def test_r32_names_that_collide(alice: Any, members: list[tuple[str, bytes]]) -> None:
    refused(alice, payload(members), envelope.MalformedError, "R32")


# R33: layout


def test_r33_a_member_not_at_its_chunk_boundary(alice: Any) -> None:
    good = payload(TWO)
    index = msgpack.unpackb(good[4 : 4 + struct.unpack(">I", good[:4])[0]])
    index[1]["offset"] += CS  # a gap of one chunk
    data = payload(TWO, maps=index)
    data = data[:-40] + bytes(CS) + b"x" * 40  # the data where the index says
    refused(alice, data, envelope.MalformedError, "R33")


def test_r33_bytes_after_the_last_member(alice: Any) -> None:
    refused(alice, payload(TWO) + b"\x00", envelope.MalformedError, "R33")


def test_r33_a_payload_that_ends_inside_the_last_member(alice: Any) -> None:
    refused(alice, payload(TWO)[:-1], envelope.MalformedError, "R33")


def test_r33_members_out_of_order(alice: Any) -> None:
    good = payload(TWO)
    index = msgpack.unpackb(good[4 : 4 + struct.unpack(">I", good[:4])[0]])
    refused(alice, payload(TWO, maps=index[::-1]), envelope.MalformedError, "R33")


# R34: padding


def test_r34_a_pad_byte_after_the_index_is_refused_on_open(alice: Any) -> None:
    data = bytearray(payload(TWO))
    index_end = 4 + struct.unpack(">I", data[:4])[0]
    assert align(index_end) > index_end
    data[index_end] = 1
    refused(alice, bytes(data), envelope.MalformedError, "R34")


def test_r34_a_pad_byte_after_a_member_fails_reading_it_and_verifying(alice: Any) -> None:
    data = bytearray(payload(TWO))
    first = 4 + struct.unpack(">I", data[:4])[0]
    at = align(first) + len(b"hello")  # right after member a.txt
    data[at] = 1
    with envelope.open_folder(sealed(alice, bytes(data)), alice) as folder:
        assert folder.read("b/c.bin") == b"x" * 40  # another member's chunks hold no bad pad
        with pytest.raises(envelope.MalformedError, match="R34"):
            folder.read("a.txt")
        with pytest.raises(envelope.MalformedError, match="R34"):
            folder.verify()


# --- round trips -------------------------------------------------------------------------------------


def test_round_trip_of_a_folder(alice: Any, tree: Tree, tmp_path: Path) -> None:
    root, files = tree
    target = tmp_path / "model.env"
    result = envelope.seal_folder(root, target, alice.public_key(), chunk_size=4096, metadata={"name": "demo"})
    assert result.metadata == {"name": "demo", **MARK}
    for name in files:  # names and sizes are not in the file's bytes
        assert name.encode() not in target.read_bytes()
    with envelope.open_folder(target, alice) as folder:
        assert folder.metadata["name"] == "demo"
        assert folder.names() == sorted(files, key=str.encode)
        for name, data in files.items():
            assert folder.size(name) == len(data)
            assert folder.read(name) == data
        folder.extract(tmp_path / "out")
    assert read_tree(tmp_path / "out") == files
    modes = {stat_mode(p) for p in (tmp_path / "out").rglob("*")}
    assert modes <= {0o600, 0o700}
    verified = envelope.verify_folder(target, alice)
    assert [m.name for m in verified.members] == sorted(files, key=str.encode)


def stat_mode(path: Path) -> int:
    return path.lstat().st_mode & 0o777


def test_an_empty_folder_round_trips(alice: Any, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    envelope.seal_folder(tmp_path / "empty", tmp_path / "e.env", alice.public_key())
    with envelope.open_folder(tmp_path / "e.env", alice) as folder:
        assert folder.names() == []
        folder.extract(tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_the_executable_bit_is_kept(alice: Any, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "run.sh").write_bytes(b"#!/bin/sh\n")
    (src / "run.sh").chmod(0o755)
    envelope.seal_folder(src, tmp_path / "x.env", alice.public_key())
    with envelope.open_folder(tmp_path / "x.env", alice) as folder:
        assert folder.members[0].executable
        folder.extract(tmp_path / "out")
    assert stat_mode(tmp_path / "out" / "run.sh") == 0o700


def test_a_member_reads_at_random(alice: Any, tree: Tree, tmp_path: Path) -> None:
    root, files = tree
    envelope.seal_folder(root, tmp_path / "m.env", alice.public_key(), chunk_size=1024)
    name = "weights/model-00001-of-00002.safetensors"
    with envelope.open_folder(tmp_path / "m.env", alice) as folder, folder.open(name) as f:
        assert f.seekable()
        f.seek(12_345)
        assert f.read(5000) == files[name][12_345:17_345]
        f.seek(-10, os.SEEK_END)
        assert f.read() == files[name][-10:]
        assert f.read(10) == b""


def test_members_read_in_parallel(alice: Any, tree: Tree, tmp_path: Path) -> None:
    root, files = tree
    envelope.seal_folder(root, tmp_path / "m.env", alice.public_key(), chunk_size=1024)
    got: dict[str, bytes] = {}
    with envelope.open_folder(tmp_path / "m.env", alice) as folder:
        threads = [threading.Thread(target=lambda n=n: got.__setitem__(n, folder.read(n))) for n in files]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert got == files


# --- lazy: a member opens only its chunks ---------------------------------------------------------------


def test_reading_one_member_opens_only_its_chunks(alice: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    size = 4096
    src = tmp_path / "src"
    src.mkdir()
    for name, chunks in (("a.bin", 10), ("b.bin", 7), ("c.bin", 10)):
        (src / name).write_bytes(os.urandom(chunks * size - 100))
    envelope.seal_folder(src, tmp_path / "f.env", alice.public_key(), chunk_size=size)
    opened: list[int] = []
    real = _stream.ChunkOpener.open_into

    def counting(self: Any, index: int, *rest: Any) -> Any:
        opened.append(index)
        return real(self, index, *rest)

    monkeypatch.setattr(_stream.ChunkOpener, "open_into", counting)
    with envelope.open_folder(tmp_path / "f.env", alice) as folder:
        at_open = list(opened)
        assert len(at_open) == 2  # the final chunk (7.4) and the index's
        opened.clear()
        assert folder.read("b.bin") == (src / "b.bin").read_bytes()
    first = 1 + 10  # the index's chunk, then a.bin's ten
    assert sorted(opened) == list(range(first, first + 7))


# --- a member cannot be swapped, dropped or added --------------------------------------------------------


def test_a_member_from_another_folder_fails_authentication(alice: Any, tmp_path: Path) -> None:
    for version in ("v1", "v2"):
        src = tmp_path / version
        src.mkdir()
        (src / "a.bin").write_bytes(version.encode() * 100)
        (src / "b.bin").write_bytes(b"same" * 100)
        envelope.seal_folder(src, tmp_path / f"{version}.env", alice.public_key(), chunk_size=64)
    old, new = (tmp_path / "v1.env").read_bytes(), bytearray((tmp_path / "v2.env").read_bytes())
    header = envelope.inspect(bytes(new)).header_size
    token = 57 + 16 * ((9 + 64) // 16 + 1)
    start = header + token  # the tokens of a.bin: right after the index's
    new[start : start + 3 * token] = old[start : start + 3 * token]  # same sizes, other folder's tokens
    with envelope.open_folder(bytes(new), alice) as folder, pytest.raises(envelope.AuthenticationError):
        folder.read("a.bin")


def test_members_swapped_within_a_folder_fail_authentication(alice: Any, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.bin").write_bytes(b"A" * 60)
    (src / "b.bin").write_bytes(b"B" * 60)
    envelope.seal_folder(src, tmp_path / "f.env", alice.public_key(), chunk_size=64)
    data = bytearray((tmp_path / "f.env").read_bytes())
    header = envelope.inspect(bytes(data)).header_size
    token = 57 + 16 * ((9 + 64) // 16 + 1)
    a, b = header + token, header + 2 * token
    data[a : a + token], data[b : b + token] = data[b : b + token], data[a : a + token]
    with pytest.raises(envelope.AuthenticationError):
        envelope.verify_folder(bytes(data), alice)


# --- extraction ------------------------------------------------------------------------------------------


def test_an_existing_destination_is_kept_without_overwrite(alice: Any, tmp_path: Path) -> None:
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / "mine").write_bytes(b"keep")
    with envelope.open_folder(sealed(alice, payload(TWO)), alice) as folder:
        with pytest.raises(envelope.OutputExistsError):
            folder.extract(tmp_path / "dest")
        assert (tmp_path / "dest" / "mine").read_bytes() == b"keep"
        folder.extract(tmp_path / "dest", overwrite=True)
    assert read_tree(tmp_path / "dest") == dict(TWO)


def test_a_link_at_the_destination_is_replaced_not_followed(alice: Any, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious").write_bytes(b"keep")
    (tmp_path / "dest").symlink_to(elsewhere)
    with envelope.open_folder(sealed(alice, payload(TWO)), alice) as folder:
        with pytest.raises(envelope.OutputExistsError):
            folder.extract(tmp_path / "dest")
        folder.extract(tmp_path / "dest", overwrite=True)
    assert not (tmp_path / "dest").is_symlink()
    assert read_tree(tmp_path / "dest") == dict(TWO)
    assert read_tree(elsewhere) == {"precious": b"keep"}


def test_a_name_leading_out_is_refused_before_anything_is_written(alice: Any, tmp_path: Path) -> None:
    (tmp_path / "dest").mkdir()
    with pytest.raises(envelope.MalformedError, match="R32"):
        envelope.open_folder(sealed(alice, payload([("../evil", b"x")])), alice)
    assert sorted(os.listdir(tmp_path)) == ["dest"]


def test_a_member_failing_halfway_leaves_nothing(alice: Any, tree: Tree, tmp_path: Path) -> None:
    root, _ = tree
    envelope.seal_folder(root, tmp_path / "m.env", alice.public_key(), chunk_size=1024)
    data = bytearray((tmp_path / "m.env").read_bytes())
    data[-200] ^= 1  # in the last member's last token
    (tmp_path / "bad.env").write_bytes(data)
    out = tmp_path / "out"
    out.mkdir()
    with envelope.open_folder(tmp_path / "bad.env", alice) as folder, pytest.raises(envelope.AuthenticationError):
        folder.extract(out / "model")
    assert os.listdir(out) == []


def test_sealing_refuses_links_and_special_files(alice: Any, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "link").symlink_to("/etc/passwd")
    with pytest.raises(envelope.UsageError, match="symbolic link"):
        envelope.seal_folder(src, tmp_path / "x.env", alice.public_key())
    (src / "link").unlink()
    os.mkfifo(src / "fifo")
    with pytest.raises(envelope.UsageError, match="not a regular file"):
        envelope.seal_folder(src, tmp_path / "x.env", alice.public_key())
    (src / "fifo").unlink()
    (src / "back\\slash").write_bytes(b"")
    with pytest.raises(envelope.UsageError, match="R32"):
        envelope.seal_folder(src, tmp_path / "x.env", alice.public_key())
    assert not (tmp_path / "x.env").exists()


def test_the_marking_is_the_formats(alice: Any, tmp_path: Path) -> None:
    with pytest.raises(envelope.UsageError, match=PAYLOAD_KEY):
        envelope.seal_folder(tmp_path, tmp_path / "x.env", alice.public_key(), metadata={PAYLOAD_KEY: "x"})


# --- signatures, rewrap, URLs -------------------------------------------------------------------------------


def test_a_signed_folder_opens_only_for_its_signer(alice: Any, tree: Tree, tmp_path: Path) -> None:
    root, files = tree
    signer, other = envelope.generate_signing_key(), envelope.generate_signing_key()
    envelope.seal_folder(root, tmp_path / "s.env", alice.public_key(), sign_with=signer)
    with envelope.open_folder(tmp_path / "s.env", alice, signed_by=signer.public_key()) as folder:
        assert folder.signer is not None
        assert folder.read("config.json") == files["config.json"]
    with pytest.raises(envelope.SignerError):
        envelope.open_folder(tmp_path / "s.env", alice, signed_by=other.public_key())


def test_rewrap_keeps_the_folder(alice: Any, bob: Any, tree: Tree, tmp_path: Path) -> None:
    root, files = tree
    envelope.seal_folder(root, tmp_path / "a.env", alice.public_key())
    envelope.rewrap_file(tmp_path / "a.env", tmp_path / "b.env", alice, add=bob.public_key())
    with envelope.open_folder(tmp_path / "b.env", bob) as folder:
        assert folder.read("tokenizer/vocab.json") == files["tokenizer/vocab.json"]


def test_a_folder_at_a_url(alice: Any, tree: Tree, tmp_path: Path) -> None:
    pytest.importorskip("fsspec")
    root, files = tree
    url = "memory://folders/model.env"
    envelope.seal_folder(root, url, alice.public_key(), chunk_size=4096)
    with envelope.open_folder(url, alice) as folder:
        name = "weights/model-00002-of-00002.safetensors"
        with folder.open(name) as f:
            f.seek(300)
            assert f.read(100) == files[name][300:400]
        folder.extract(tmp_path / "out")
    assert read_tree(tmp_path / "out") == files
    assert len(envelope.verify_folder(url, alice).members) == len(files)


# --- memory ----------------------------------------------------------------------------------------------------


def test_sealing_streams_the_files(alice: Any, tmp_path: Path) -> None:
    src = tmp_path / "big"
    src.mkdir()
    block = os.urandom(8 << 20)
    for i in range(6):
        (src / f"shard-{i}.bin").write_bytes(block)
    tracemalloc.start()
    try:
        envelope.seal_folder(src, tmp_path / "big.env", alice.public_key(), threads=2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # The sealing pipeline's chunk buffers (about 9 MiB with 1 MiB chunks), not the 48 MiB of files.
    assert peak < 16 << 20, peak


# --- the command line ------------------------------------------------------------------------------------------


@needs_console_scripts
def test_the_cli_seals_opens_verifies_and_inspects_a_folder(tree: Tree, tmp_path: Path) -> None:
    root, files = tree
    keys = Keys(tmp_path)
    out = tmp_path / "sealed.env"
    ok(run(ENVELOPE, "seal", "-r", keys["alice.pub"], "-o", out, root))
    ok(run(ENVELOPE, "open", "-i", keys["alice.pem"], out))  # into sealed/: INPUT less .env
    assert read_tree(tmp_path / "sealed") == files
    opened = tmp_path / "opened"
    ok(run(ENVELOPE, "open", "-i", keys["alice.pem"], "-o", opened, out))
    assert read_tree(opened) == files
    again = run(ENVELOPE, "open", "-i", keys["alice.pem"], "-o", opened, out)
    assert again.returncode != 0 and b"--force" in again.stderr
    verified = ok(run(ENVELOPE, "verify", "-i", keys["alice.pem"], out)).stdout.decode()
    assert f"a folder of {len(files)} members" in verified
    shown = ok(run(INFO, out)).stdout.decode()
    assert "a folder" in shown and "config.json" not in shown
    record = json.loads(ok(run(INFO, "--json", "--verify", keys["alice.pem"], out)).stdout)["files"][0]
    assert record["folder"] == {"members": len(files)}
    ok(run(ENVELOPE, "rewrap", "-i", keys["alice.pem"], "--add", keys["bob.pub"], "-o", tmp_path / "b.env", out))
    ok(run(ENVELOPE, "open", "-i", keys["bob.pem"], "-o", tmp_path / "bob", tmp_path / "b.env"))
    assert read_tree(tmp_path / "bob") == files
    assert hashlib.sha256(out.read_bytes()).digest()  # the sealed file is one ordinary file


@needs_console_scripts
def test_the_cli_escapes_member_names_it_never_shows(tmp_path: Path) -> None:
    keys = Keys(tmp_path)
    src = tmp_path / "src"
    src.mkdir()
    (src / "\x1b[31mred").write_bytes(b"x")
    ok(run(ENVELOPE, "seal", "-r", keys["alice.pub"], "-o", tmp_path / "x.env", src))
    shown = ok(run(INFO, "--verify", keys["alice.pem"], tmp_path / "x.env")).stdout
    assert b"\x1b" not in shown


@needs_console_scripts
def test_the_cli_says_how_a_folder_is_sealed(tmp_path: Path) -> None:
    keys = Keys(tmp_path)
    (tmp_path / "src").mkdir()
    result = run(ENVELOPE, "seal", "-r", keys["alice.pub"], tmp_path / "src")
    assert result.returncode == 2 and b"give -o OUT" in result.stderr


# --- what a security review of the folders found (this session) -------------------------------------------


def test_an_index_of_millions_of_empty_arrays_is_refused_from_its_header(alice: Any) -> None:
    """A 16 MiB index of one-byte empty arrays made open_folder build 16.7 million objects (1.2 GB)
    before the member limit was checked; the count is now read from the array's header."""
    import tracemalloc

    count = 4_000_000
    index = b"\xdd" + struct.pack(">I", count) + b"\x90" * count
    data = envelope.seal(struct.pack(">I", len(index)) + index, alice.public_key(), metadata=MARK)
    tracemalloc.start()
    try:
        with pytest.raises(envelope.LimitError, match="R31"):
            envelope.open_folder(data, alice).close()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < len(data) + (16 << 20), f"{peak >> 20} MiB"


@pytest.mark.parametrize("value", [[1] * 1000, {"x": 1}, [[]]])
def test_a_member_holding_a_container_is_refused_before_it_is_built(alice: Any, value: Any) -> None:
    refused(alice, payload([("a", b"x")], maps=[{"name": "a", "offset": 0, "size": 1, "executable": value}]),
            envelope.MalformedError, "R31")  # fmt: skip


def test_a_name_nested_2000_folders_deep_extracts_and_failures_leave_nothing(alice: Any, tmp_path: Path) -> None:
    """A valid name may have 2048 components: extraction held one open folder per level (EMFILE at
    1024) and the clean-up recursed (RecursionError), leaving the hidden folder and its plaintext."""
    import resource

    deep = "d/" * 2000 + "secret.txt"
    members = [(deep, b"TOP SECRET" * 100), ("z.bin", b"z" * 3000)]
    data = sealed(alice, payload(members))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
    try:
        with envelope.open_folder(data, alice) as folder:
            folder.extract(tmp_path / "ok")
        fd = os.open(tmp_path / "ok", os.O_RDONLY)
        for part in deep.split("/")[:-1]:  # the whole path is longer than PATH_MAX: walk it
            below = os.open(part, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = below
        with open(os.open("secret.txt", os.O_RDONLY, dir_fd=fd), "rb") as secret:
            assert secret.read() == b"TOP SECRET" * 100
        os.close(fd)
        envelope.folders.remove_tree(str(tmp_path / "ok"))  # also what a failure runs
        assert not (tmp_path / "ok").exists()
        damaged = bytearray(data)
        damaged[-100] ^= 1  # in z.bin, extracted after the deep member
        out = tmp_path / "out"
        out.mkdir()
        with envelope.open_folder(bytes(damaged), alice) as folder, pytest.raises(envelope.AuthenticationError):
            folder.extract(out / "model", threads=1)
        assert os.listdir(out) == []
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_link_swapped_in_while_sealing_is_not_followed(alice: Any, tmp_path: Path) -> None:
    """The listing refused links, but the files were then opened by path: a link planted after the
    listing (by another user of the folder) had its target sealed."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.bin").write_bytes(b"A" * 10)
    (src / "b.bin").write_bytes(b"B" * 18)
    (tmp_path / "victim").write_bytes(b"victim-private-key")
    swapped = []

    def progress(count: int) -> None:
        if not swapped:
            (src / "b.bin").unlink()
            (src / "b.bin").symlink_to(tmp_path / "victim")
            swapped.append(True)

    with pytest.raises(envelope.UsageError, match="symbolic link"):
        envelope.seal_folder(src, tmp_path / "f.env", alice.public_key(), progress=progress)
    assert not (tmp_path / "f.env").exists()


# --- folders sealed from memory, members read into the caller's buffer ----------------------------


def _entries(files: dict[str, bytes]) -> list[envelope.FolderEntry]:
    return [
        envelope.FolderEntry(name, len(data), lambda out, data=data: out.write(data)) for name, data in files.items()
    ]


def test_a_folder_sealed_from_memory_is_the_folder_sealed_from_disk(alice: Any, tree: Tree, tmp_path: Path) -> None:
    root, files = tree
    envelope.seal_entries(_entries(files), tmp_path / "memory.env", alice.public_key(), chunk_size=64)
    envelope.seal_folder(root, tmp_path / "disk.env", alice.public_key(), chunk_size=64)
    opened = [envelope.open_folder(tmp_path / name, alice) for name in ("memory.env", "disk.env")]
    try:
        assert opened[0].members == opened[1].members
        assert {name: opened[0].read(name) for name in opened[0].names()} == files
        assert opened[0].metadata[PAYLOAD_KEY] == FOLDER_V1
    finally:
        for folder in opened:
            folder.close()


@pytest.mark.parametrize("written", [b"", b"abc", b"abcdef"])
def test_an_entry_that_writes_other_than_its_size_leaves_no_output(alice: Any, tmp_path: Path, written: bytes) -> None:
    entry = envelope.FolderEntry("a.bin", 4, lambda out: out.write(written))
    with pytest.raises(envelope.UsageError, match=r"a\.bin"):
        envelope.seal_entries([entry], tmp_path / "out.env", alice.public_key())
    assert list(tmp_path.iterdir()) == []


def test_seal_entries_refuses_what_seal_folder_refuses(alice: Any, tmp_path: Path) -> None:
    with pytest.raises(envelope.UsageError, match="R32"):
        envelope.seal_entries(_entries({"../x": b"1"}), tmp_path / "out.env", alice.public_key())
    with pytest.raises(envelope.UsageError, match=r"envelope\.payload"):
        envelope.seal_entries([], tmp_path / "out.env", alice.public_key(), metadata={PAYLOAD_KEY: "x"})
    with pytest.raises(envelope.UsageError, match="FolderEntry"):
        envelope.seal_entries([("a", 1, print)], tmp_path / "out.env", alice.public_key())  # type: ignore[list-item]


@pytest.mark.parametrize("source", ["path", "bytes"])
def test_read_into_reads_any_range_of_a_member_in_place(alice: Any, tree: Tree, tmp_path: Path, source: str) -> None:
    root, files = tree
    target = tmp_path / "model.env"
    envelope.seal_folder(root, target, alice.public_key(), chunk_size=1024)
    name = "weights/model-00001-of-00002.safetensors"
    data = files[name]
    with envelope.open_folder(target if source == "path" else target.read_bytes(), alice) as folder:
        for offset, size in [(0, len(data)), (1000, 5000), (len(data) - 7, 7), (3, 0)]:
            out = bytearray(size)
            folder.read_into(name, out, offset, threads=2)
            assert bytes(out) == data[offset : offset + size]
        with pytest.raises(envelope.UsageError, match="outside"):
            folder.read_into(name, bytearray(2), len(data) - 1)


def test_read_into_to_a_members_end_checks_its_pad(alice: Any) -> None:
    data = bytearray(payload(TWO))
    first = 4 + struct.unpack(">I", data[:4])[0]
    data[align(first) + len(b"hello")] = 1  # the pad right after member a.txt
    with envelope.open_folder(sealed(alice, bytes(data)), alice) as folder:
        head = bytearray(3)
        folder.read_into("a.txt", head)  # does not reach the end: the pad is not read
        assert bytes(head) == b"hel"
        with pytest.raises(envelope.MalformedError, match="R34"):
            folder.read_into("a.txt", bytearray(5))
        whole = bytearray(40)
        folder.read_into("b/c.bin", whole)
        assert bytes(whole) == b"x" * 40


@given(
    sizes=st.lists(st.integers(0, 300), min_size=1, max_size=5),
    chunk_size=st.sampled_from([16, 64, 100]),
    data=st.data(),
)
@settings(max_examples=40)
def test_any_range_read_into_matches_what_was_sealed_from_memory(  # type: ignore[no-untyped-def]
    alice: Any, tmp_path: Path, sizes, chunk_size, data
) -> None:
    files = {f"m{i}/part.bin": os.urandom(size) for i, size in enumerate(sizes)}
    target = tmp_path / "memory.env"
    envelope.seal_entries(_entries(files), target, alice.public_key(), chunk_size=chunk_size, overwrite=True)
    with envelope.open_folder(target, alice) as folder:
        for name, content in files.items():
            start = data.draw(st.integers(0, len(content)))
            stop = data.draw(st.integers(start, len(content)))
            buffer = bytearray(stop - start)
            folder.read_into(name, buffer, start)
            assert bytes(buffer) == content[start:stop]


def test_an_extraction_removes_what_a_killed_one_left_at_its_place(alice: Any, tmp_path: Path) -> None:
    """SIGKILL runs no clean-up: a killed extraction leaves its hidden folder (verified plaintext).
    The next extraction to the same place removes those of processes that no longer exist; one of
    a live process (an extraction under way) stays."""
    import subprocess
    import sys

    data = sealed(alice, payload([("a.txt", b"secret" * 100)]))
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              check=True).stdout)  # fmt: skip
    left = tmp_path / f".out.{dead}-k1ll3d.partial"
    (left / "sub").mkdir(parents=True)
    (left / "sub" / "a.txt").write_bytes(b"secret" * 50)
    alive = tmp_path / f".out.{os.getppid()}-running.partial"
    alive.mkdir()
    other = tmp_path / f".other.{dead}-k1ll3d.partial"
    other.mkdir()
    with envelope.open_folder(data, alice) as folder:
        folder.extract(tmp_path / "out")
    assert (tmp_path / "out" / "a.txt").read_bytes() == b"secret" * 100
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out", alive.name, other.name])
