# ruff: noqa: F811 - the fixtures imported from remote_fixtures are arguments of the tests
"""URLs where the SDK takes paths: the rule that tells them apart, what happens without fsspec,
and the path functions, inspect, check_signature and the model adapters against a real S3 API
(moto's server in a child process on loopback, s3fs pointing at it). docs/REMOTE.md, "URLs in the SDK".
"""

from __future__ import annotations

import builtins
import errno
import io
import os
import random
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from remote_fixtures import bucket, moto_server, need  # noqa: F401 - fixtures

import envelope
from envelope.files import is_url

CHUNK = 64 << 10
TOKEN = 57 + 16 * ((9 + CHUNK) // 16 + 1)  # spec/FORMAT.md 7.3: the token of a full chunk
MIB = 1 << 20


# --- which strings are URLs (no fsspec needed) ---------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("s3://bucket/key", True),
        ("envelope::s3://bucket/key", True),
        ("simplecache::s3://bucket/key", True),
        ("file:///tmp/x", True),
        ("arrow_hdfs://host/x", True),
        ("git+https://host/x", True),
        ("/data/a::b.env", False),  # a colon pair inside a path: a local file
        ("dir/x::y", False),
        ("./s3://bucket/key", False),  # how a local file named like a URL is given
        ("x::y", False),  # one letter is a drive, never a protocol
        ("C:\\models\\x.env", False),
        ("C://models/x.env", False),
        ("c:/models/x.env", False),
        ("notes:v2", False),
        ("s3:/bucket/key", False),
        ("3d://x", False),
        ("model.env", False),
        ("", False),
        (b"s3://bucket/key", False),
        (Path("s3://bucket/key"), False),  # a Path is always local
    ],
)
def test_is_url(value, expected):
    assert is_url(value) is expected


def test_the_sdk_and_the_fsspec_layer_share_one_rule():
    fsspec_layer = need("envelope.fsspec")
    assert fsspec_layer.is_url is is_url is envelope.is_url


def test_errors_show_no_credentials_of_a_url(alice, tmp_path):
    """A password in a URL, or a presigned query, never reaches a message."""
    need("fsspec")
    url = "memory://user:hunter2@x/model.env?X-Amz-Signature=5ec7e7"
    for call in (
        lambda: envelope.inspect(url),
        lambda: envelope.open_file(url, tmp_path / "out", alice),
        lambda: envelope.open_file(f"envelope::nowhere::{url}", tmp_path / "out", alice),
    ):
        with pytest.raises((OSError, envelope.EnvelopeError)) as failed:
            call()
        shown = f"{failed.value} {getattr(failed.value, 'filename', '')}"
        assert "hunter2" not in shown and "5ec7e7" not in shown and "***@x/model.env?..." in shown


SECRETS = ("hunter2", "5ec7e7", "AKIDEXAMPLE")


def shown_to_a_user(error):
    """Everything of an error that a message, a log line or the CLI's one line shows."""
    from envelope.cli.errors import describe

    return f"{error} {error!r} {getattr(error, 'filename', '')} {describe(error)}"


def opened_by_the_filesystem(fsspec, url, **options):
    """``fs.open`` of the envelope:: filesystem (fsspec.open's own wrapper names the path itself)."""
    fs, path = fsspec.core.url_to_fs(url, **options)
    return fs.open(path, "rb")


@pytest.mark.parametrize(
    "url",
    [
        "memory://user:hunter2@x/{name}?X-Amz-Credential=AKIDEXAMPLE&X-Amz-Signature=5ec7e7",
        "memory://x/{name}?sig=5ec7e7&Signature=hunter2&cred=AKIDEXAMPLE",
    ],
)
def test_the_fsspec_layer_and_dask_show_no_credentials_of_a_url(alice, tmp_path, monkeypatch, url):
    """open_url, the envelope:: filesystem and the Dask helpers: every message shows the URL
    without its user information and its query (issue 17 item 2)."""
    fsspec = need("fsspec")
    from envelope.fsspec import open_url

    missing = url.format(name="missing.env")
    calls = [
        lambda: open_url(missing, "rb", identity=alice),
        lambda: opened_by_the_filesystem(fsspec, f"envelope::{missing}", envelope={"identity": alice}),
    ]
    dask = None
    try:
        import envelope.dask as dask
    except ImportError:
        pass
    if dask is not None:
        calls += [
            lambda: dask.seal_prefix(url.format(name="nothing"), str(tmp_path / "out"), alice.public_key()),
            lambda: dask.open_files([(missing, str(tmp_path / "out"))], identity=str(tmp_path)).compute(
                scheduler="sync"
            ),
        ]
    for call in calls:
        with pytest.raises((OSError, envelope.EnvelopeError)) as failed:
            call()
        said = shown_to_a_user(failed.value)
        assert not any(secret in said for secret in SECRETS), said
    # A network failure: RemoteError, named the same way.
    memory = fsspec.filesystem("memory")
    memory.pipe("/x/model.env", envelope.seal(b"data", alice.public_key()))
    memory.pipe("/user:hunter2@x/model.env", envelope.seal(b"data", alice.public_key()))

    def refused(*args, **kwargs):
        raise ConnectionResetError("the connection to https://user:hunter2@x was reset")

    monkeypatch.setattr(type(memory), "_open", refused)
    for call in (
        lambda: open_url(url.format(name="model.env"), "rb", identity=alice),
        lambda: open_url(url.format(name="model.env"), "wb", recipients=[alice.public_key()]),
    ):
        with pytest.raises(envelope.RemoteError) as failed:
            call()
        said = shown_to_a_user(failed.value)
        assert not any(secret in said for secret in SECRETS), said
        assert "model.env" in said


def test_local_paths_with_colons_stay_local_files(alice, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("weights:v2").write_bytes(b"local weights")
    envelope.seal_file("weights:v2", "./backup::v2.env", alice.public_key())
    envelope.open_file(str(tmp_path / "backup::v2.env"), "opened:v2", alice)
    assert Path("opened:v2").read_bytes() == b"local weights"
    assert envelope.inspect(Path("backup::v2.env")).file_size == os.path.getsize("backup::v2.env")
    with pytest.raises((envelope.UsageError, envelope.MissingDependencyError)):
        envelope.inspect("backup::v2.env")  # a URL by the rule (protocol "backup"): never the local file


@pytest.fixture
def without_fsspec(monkeypatch):
    """As if fsspec were not installed: importing it (or what imports it) fails."""
    monkeypatch.setitem(sys.modules, "fsspec", None)
    for name in ("envelope.fsspec", "envelope._remote"):
        monkeypatch.delitem(sys.modules, name, raising=False)


def test_a_url_without_fsspec_names_the_extra(alice, tmp_path, without_fsspec):
    src = tmp_path / "plain.bin"
    src.write_bytes(b"data")
    with pytest.raises(envelope.MissingDependencyError, match=r"envelope-ml\[s3\]"):
        envelope.seal_file(src, "s3://bucket/x.env", alice.public_key())
    with pytest.raises(envelope.MissingDependencyError, match=r"envelope-ml\[s3\]"):
        envelope.inspect("envelope::s3://bucket/x.env")
    with pytest.raises(envelope.MissingDependencyError, match=r"envelope-ml\[fsspec\]"):
        envelope.open_file("gs://bucket/x.env", tmp_path / "out", alice)
    with pytest.raises(envelope.MissingDependencyError, match=r"envelope-ml\[fsspec\]"):
        envelope.check_signature("file:///tmp/x.env")
    assert not (tmp_path / "out").exists()
    envelope.seal_file(src, tmp_path / "x.env", alice.public_key())  # local paths need nothing more
    assert envelope.verify_file(tmp_path / "x.env", alice).plaintext_len == 4


def test_a_protocol_whose_package_is_missing_names_it(monkeypatch):
    need("fsspec")
    monkeypatch.setitem(sys.modules, "s3fs", None)
    registry = sys.modules["fsspec.registry"]._registry  # the classes fsspec imported so far
    monkeypatch.delitem(registry, "s3", raising=False)
    with pytest.raises(envelope.MissingDependencyError, match=r"s3fs.*envelope-ml\[s3\]"):
        envelope.inspect("s3://bucket/x.env")


def test_local_paths_never_import_fsspec(alice, tmp_path):
    key = tmp_path / "key.pem"
    key.write_bytes(envelope.private_key_pem(alice))
    code = f"""
import sys, envelope
src, folder = {str(tmp_path / "plain")!r}, {str(tmp_path)!r}
open(src, "wb").write(b"data")
key = envelope.load_private_key({str(key)!r})
envelope.seal_file(src, folder + "/x::1.env", key.public_key())
envelope.open_file(folder + "/x::1.env", folder + "/out", key)
envelope.inspect(folder + "/x::1.env")
print(sorted(m for m in sys.modules if m.split(".")[0] in ("fsspec", "s3fs") or m == "envelope._remote"))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_storage_options_without_a_url_are_refused(alice, tmp_path):
    src = tmp_path / "plain.bin"
    src.write_bytes(b"data")
    with pytest.raises(envelope.UsageError, match="no argument is a URL"):
        envelope.seal_file(src, tmp_path / "x.env", alice.public_key(), storage_options={"anon": True})
    with pytest.raises(envelope.UsageError, match="no argument is a URL"):
        envelope.inspect(envelope.seal(b"x", alice.public_key()), storage_options={"anon": True})
    assert not (tmp_path / "x.env").exists()


# --- URLs that name local files ----------------------------------------------------------------


def test_file_urls_get_what_local_paths_get(alice, tmp_path, monkeypatch):
    """file:// resolves to its local path: same-folder atomic outputs with their modes, never
    fsspec's staging of uncommitted files in the system temp folder."""
    need("fsspec")
    import tempfile

    def refuse(*args, **kwargs):
        raise AssertionError("a temporary file outside the destination folder")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    src = tmp_path / "plain.bin"
    src.write_bytes(b"weights" * 1000)
    envelope.seal_file(f"file://{src}", f"envelope::file://{tmp_path}/x.env", alice.public_key())
    envelope.open_file(f"file://{tmp_path}/x.env", f"file://{tmp_path}/out.bin", alice)
    assert (tmp_path / "out.bin").read_bytes() == src.read_bytes()
    assert stat.S_IMODE((tmp_path / "out.bin").stat().st_mode) == 0o600  # atomic_output's private mode
    assert envelope.inspect(f"file://{tmp_path}/x.env") == envelope.inspect(tmp_path / "x.env")
    with pytest.raises(envelope.OutputExistsError):
        envelope.open_file(f"file://{tmp_path}/x.env", f"file://{tmp_path}/out.bin", alice)
    with pytest.raises(envelope.UsageError, match="input file"):
        envelope.seal_file(f"file://{src}", str(src), alice.public_key(), overwrite=True)


def test_plaintext_is_never_sent_where_it_would_be_staged_on_disk(alice, tmp_path):
    need("fsspec")
    sealed = tmp_path / "x.env"
    sealed.write_bytes(envelope.seal(b"secret", alice.public_key()))
    with pytest.raises(envelope.UsageError, match="stage the plaintext"):
        envelope.open_file(sealed, "simplecache::memory://plain/out.bin", alice)  # a local cache file
    with pytest.raises(envelope.UsageError, match="stage the plaintext"):  # the system temp folder
        envelope.open_file(sealed, "dir::file://out.bin", alice, storage_options={"dir": {"path": str(tmp_path)}})
    with pytest.raises(envelope.UsageError, match="plaintext"):
        envelope.open_file(sealed, "envelope::memory://plain/out.bin", alice)  # would seal it again
    with pytest.raises(envelope.UsageError, match="plaintext"):
        envelope.seal_file(f"envelope::file://{sealed}", tmp_path / "y.env", alice.public_key())
    with pytest.raises(envelope.UsageError, match="goes first"):
        envelope.inspect("simplecache::envelope::memory://plain/x.env")
    with pytest.raises(envelope.UsageError, match="no such protocol"):
        envelope.inspect("nosuchprotocol://x.env")
    assert os.listdir(tmp_path) == ["x.env"]


# --- S3 -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3(moto_server, bucket):
    return need("s3fs").S3FileSystem(**moto_server.options())


@pytest.fixture(scope="module")
def options(moto_server):
    return moto_server.options()


@pytest.fixture(scope="module")
def payload() -> bytes:
    return random.Random(7).randbytes(40 * CHUNK + 321)


@pytest.fixture
def plain_file(tmp_path, payload) -> Path:
    path = tmp_path / "plain.bin"
    path.write_bytes(payload)
    return path


@pytest.fixture
def sealed_url(s3, bucket, alice, plain_file, options, request) -> str:
    url = f"s3://{bucket}/{request.node.name}.env"
    envelope.seal_file(
        plain_file, url, alice.public_key(), chunk_size=CHUNK, metadata={"n": 1}, storage_options=options
    )
    return url


@pytest.fixture
def fetches(monkeypatch):
    """The length of every ranged GET s3fs makes."""
    s3fs = need("s3fs")
    sizes: list[int] = []
    original = s3fs.core.S3File._fetch_range

    def counted(self, start, end):
        data = original(self, start, end)
        sizes.append(len(data))
        return data

    monkeypatch.setattr(s3fs.core.S3File, "_fetch_range", counted)
    return sizes


def pending_uploads(s3, bucket, key):
    uploads = s3.call_s3("list_multipart_uploads", Bucket=bucket).get("Uploads", [])
    return [u for u in uploads if u["Key"] == key]


def test_seal_open_verify_and_inspect_through_s3(alice, sealed_url, payload, plain_file, s3, options, tmp_path):
    local_copy = tmp_path / "copy.env"
    local_copy.write_bytes(s3.cat(sealed_url))
    assert envelope.inspect(sealed_url, storage_options=options) == envelope.inspect(local_copy)
    assert envelope.verify_file(sealed_url, alice, storage_options=options) == (len(payload), {"n": 1}, None)
    seen: list[int] = []
    opened = envelope.open_file(
        f"envelope::{sealed_url}", tmp_path / "out.bin", alice, progress=seen.append, storage_options=options
    )
    assert opened == (len(payload), {"n": 1}, None)
    assert (tmp_path / "out.bin").read_bytes() == payload
    assert stat.S_IMODE((tmp_path / "out.bin").stat().st_mode) == 0o600
    assert seen == [CHUNK] * 40 + [321]  # one call per verified chunk, in order
    envelope.open_file(sealed_url, sealed_url + ".plain", alice, storage_options=options)  # S3 to S3
    assert s3.cat(sealed_url + ".plain") == payload
    envelope.seal_file(sealed_url + ".plain", sealed_url + ".again", alice.public_key(), storage_options=options)
    assert envelope.open(s3.cat(sealed_url + ".again"), alice) == payload


def test_sealed_objects_are_read_through_the_verified_ranged_reader(alice, sealed_url, payload, options, fetches):
    envelope.inspect(sealed_url, storage_options=options)
    assert fetches == [4096]  # one ranged read of the header window: no byte of the payload
    del fetches[:]
    envelope.verify_file(sealed_url, alice, storage_options=options)
    final_token = 57 + 16 * ((9 + 321) // 16 + 1)
    sealed_size = envelope.inspect(sealed_url, storage_options=options).file_size
    assert sealed_size is not None
    assert sum(fetches[:2]) == 4096 + final_token  # the header window and the final chunk first
    assert sum(fetches[2:-1]) <= sealed_size  # then each chunk once (the last GET is inspect's)


def test_a_modified_object_opens_to_nothing(alice, sealed_url, s3, options, tmp_path):
    sealed = bytearray(s3.cat(sealed_url))
    sealed[-3 * TOKEN] ^= 1  # a late chunk: earlier ones verify and are read first
    s3.pipe(sealed_url, bytes(sealed))
    with pytest.raises(envelope.AuthenticationError):
        envelope.open_file(sealed_url, tmp_path / "out.bin", alice, storage_options=options)
    assert not (tmp_path / "out.bin").exists()
    with pytest.raises(envelope.AuthenticationError):
        envelope.open_file(sealed_url, sealed_url + ".plain", alice, storage_options=options)
    assert not s3.exists(sealed_url + ".plain")
    assert pending_uploads(s3, *sealed_url[5:].split("/", 1)) == []


def test_missing_objects_wrong_keys_and_dead_endpoints(alice, stranger, sealed_url, bucket, options, tmp_path):
    absent = f"s3://{bucket}/absent.env"
    with pytest.raises(FileNotFoundError) as missing:
        envelope.open_file(absent, tmp_path / "out", alice, storage_options=options)
    # Named as a local file's error names its path (s3fs says only "bucket/key").
    assert (missing.value.errno, missing.value.strerror, missing.value.filename) == (
        errno.ENOENT, "No such file or directory", absent
    )  # fmt: skip
    with pytest.raises(FileNotFoundError, match=r"absent\.env"):
        envelope.inspect(absent, storage_options=options)
    with pytest.raises(FileNotFoundError) as no_bucket:
        envelope.inspect("s3://no-such-bucket/x.env", storage_options=options)
    assert no_bucket.value.filename == "s3://no-such-bucket/x.env" and "bucket" in no_bucket.value.strerror
    with pytest.raises(envelope.NoMatchingKeyError):
        envelope.verify_file(sealed_url, stranger, storage_options=options)
    dead = {**options, "client_kwargs": {**options["client_kwargs"], "endpoint_url": "http://127.0.0.1:9"}}
    with pytest.raises(envelope.RemoteError):
        envelope.inspect(sealed_url, storage_options=dead)
    assert not (tmp_path / "out").exists()


def test_plaintext_bound_for_s3_never_touches_the_local_disk(alice, sealed_url, payload, s3, options, monkeypatch):
    """s3fs holds an upload's parts in memory (its block_size); nothing is staged in a file."""
    real_open, real_os_open = builtins.open, os.open

    def no_writes(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+"):
            raise AssertionError(f"a local file opened for writing: {file}")
        return real_open(file, mode, *args, **kwargs)

    def no_write_flags(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise AssertionError(f"a local file opened for writing: {path}")
        return real_os_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", no_writes)
    monkeypatch.setattr(io, "open", no_writes)
    monkeypatch.setattr(os, "open", no_write_flags)
    envelope.open_file(sealed_url, sealed_url + ".plain", alice, storage_options=options)
    monkeypatch.undo()
    assert s3.cat(sealed_url + ".plain") == payload


def test_an_existing_object_is_kept_unless_overwrite(alice, plain_file, sealed_url, s3, options):
    s3.pipe(sealed_url + ".plain", b"precious")
    with pytest.raises(envelope.OutputExistsError) as refused:
        envelope.seal_file(plain_file, sealed_url, alice.public_key(), storage_options=options)
    assert refused.value.path == sealed_url and isinstance(refused.value, FileExistsError)
    with pytest.raises(envelope.OutputExistsError):
        envelope.open_file(sealed_url, sealed_url + ".plain", alice, storage_options=options)
    assert s3.cat(sealed_url + ".plain") == b"precious"
    envelope.open_file(sealed_url, sealed_url + ".plain", alice, overwrite=True, storage_options=options)
    assert s3.cat(sealed_url + ".plain") == plain_file.read_bytes()


def test_an_object_that_appears_during_the_upload_is_not_replaced(alice, plain_file, bucket, s3, options):
    """The commit is conditional (If-None-Match: *): checking first is not enough."""
    url = f"s3://{bucket}/raced.env"

    def someone_else_writes(count: int) -> None:
        if not s3.exists(url):
            s3.pipe(url, b"theirs")

    with pytest.raises(envelope.OutputExistsError):
        envelope.seal_file(
            plain_file, url, alice.public_key(), chunk_size=CHUNK, progress=someone_else_writes, storage_options=options
        )
    assert s3.cat(url) == b"theirs"
    assert pending_uploads(s3, bucket, "raced.env") == []


def test_an_interrupted_upload_leaves_no_object(alice, tmp_path, bucket, s3, options):
    src = tmp_path / "big.bin"
    src.write_bytes(random.Random(2).randbytes(12 * MIB))
    url = f"s3://{bucket}/interrupted.env"
    done: list[int] = []

    def interrupt(count: int) -> None:
        done.append(count)
        if sum(done) >= 11 * MIB:  # two 5 MiB parts are uploaded by now
            raise KeyError("interrupted")

    with pytest.raises(KeyError):
        envelope.seal_file(
            src, url, alice.public_key(), progress=interrupt, storage_options={**options, "default_block_size": 5 * MIB}
        )
    assert not s3.exists(url)
    assert pending_uploads(s3, bucket, "interrupted.env") == []  # the multipart upload was aborted


def test_rewrap_in_place_and_the_same_object_twice(alice, bob, sealed_url, plain_file, options, s3):
    with pytest.raises(envelope.UsageError, match="input object"):
        envelope.open_file(sealed_url, sealed_url, alice, overwrite=True, storage_options=options)
    envelope.rewrap_file(sealed_url, sealed_url, alice, add=bob.public_key(), overwrite=True, storage_options=options)
    assert envelope.open(s3.cat(sealed_url), bob) == plain_file.read_bytes()


def test_pinned_signers_are_checked_on_remote_reads(alice, plain_file, bucket, s3, options, tmp_path, fetches):
    publisher, impostor = envelope.generate_signing_key(), envelope.generate_signing_key()
    url = f"s3://{bucket}/signed.env"
    envelope.seal_file(
        plain_file, url, alice.public_key(), chunk_size=CHUNK, sign_with=publisher, storage_options=options
    )
    opened = envelope.open_file(url, tmp_path / "out", alice, signed_by=publisher.public_key(), storage_options=options)
    assert opened.signer is not None and opened.signer.verified
    del fetches[:]
    assert opened.signer.key_id == envelope.check_signature(url, storage_options=options).key_id
    assert len(fetches) <= 3 and sum(fetches) <= s3.size(url)  # the footer, then 16 MiB windows
    with pytest.raises(envelope.SignerError):
        envelope.open_file(url, tmp_path / "other", alice, signed_by=impostor.public_key(), storage_options=options)
    with pytest.raises(envelope.SignerError):
        envelope.check_signature(url, signed_by=impostor.public_key(), storage_options=options)
    sealed = bytearray(s3.cat(url))
    sealed[-1] ^= 1  # the signature itself
    s3.pipe(url, bytes(sealed))
    with pytest.raises(envelope.SignatureError):
        envelope.verify_file(url, alice, signed_by=publisher.public_key(), storage_options=options)
    with pytest.raises(envelope.SignatureError):
        envelope.check_signature(url, storage_options=options)
    assert not (tmp_path / "other").exists()


def test_model_adapters_take_urls(alice, bucket, s3, options):
    np = need("numpy")
    need("safetensors")
    from envelope.models import safetensors as sealed_st

    publisher = envelope.generate_signing_key()
    tensors = {"w": np.arange(12, dtype=np.float32).reshape(3, 4)}
    url = f"s3://{bucket}/model.safetensors.env"
    sealed_st.save(tensors, url, alice.public_key(), sign_with=publisher, storage_options=options)
    loaded = sealed_st.load(url, alice, signed_by=publisher.public_key(), storage_options=options)
    assert np.array_equal(loaded["w"], tensors["w"])
    with pytest.raises(envelope.SignerError):
        sealed_st.load(url, alice, signed_by=envelope.generate_signing_key().public_key(), storage_options=options)
    with pytest.raises(envelope.OutputExistsError):
        sealed_st.save(tensors, url, alice.public_key(), storage_options=options)
    assert envelope.check_signature(url, storage_options=options).verified


def test_a_framework_that_seeks_reads_through_the_ranged_reader(alice, bucket, options, fetches):
    """torch.load seeks around a zip archive (its directory sits in the last chunks): each seek
    fetches the chunks it lands in, never the whole object in one GET."""
    torch = need("torch")
    from envelope.models import torch as sealed_torch

    state = {"big": torch.zeros(4 * MIB // 4), "small": torch.arange(10)}
    url = f"s3://{bucket}/model.pt.env"
    sealed_torch.save(state, url, alice.public_key(), storage_options=options)
    info = envelope.inspect(url, storage_options=options)
    assert info.file_size is not None and info.chunk_count is not None
    final_token = info.file_size - info.header_size - (info.chunk_count - 1) * info.token_size
    del fetches[:]
    loaded = sealed_torch.load(url, alice, storage_options=options)
    assert torch.equal(loaded["small"], state["small"]) and torch.equal(loaded["big"], state["big"])
    assert fetches[:2] == [4096, final_token]  # opening: the header window, the final chunk
    assert final_token not in fetches[2:]  # the archive's directory sits there: not fetched again
    assert max(fetches) < info.file_size and sum(fetches) < 2 * info.file_size
