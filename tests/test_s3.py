# ruff: noqa: F811 - the fixtures imported from remote_fixtures are arguments of the tests
"""envelope:: over S3: a real S3 API (moto's server mode, in a child process on loopback) and s3fs.

What goes over the wire is counted where s3fs returns it (S3File._fetch_range: every ranged GET).
"""

from __future__ import annotations

import os
import random
import time

import pytest
from remote_fixtures import MotoServer, bucket, key_file, moto_server, need  # noqa: F401 - fixtures

import envelope
from envelope.errors import AuthenticationError, NoMatchingKeyError, ObjectChangedError, RemoteError

fsspec = need("fsspec")
s3fs = need("s3fs")
from envelope.fsspec import HEADER_WINDOW  # noqa: E402

MIB = 1 << 20
TOKEN = 57 + 16 * ((9 + MIB) // 16 + 1)  # spec/FORMAT.md 7.3: the token of a full 1 MiB chunk


@pytest.fixture(scope="module")
def payload() -> bytes:
    return random.Random(3).randbytes(12 * MIB + 5)


@pytest.fixture(scope="module")
def sealed_url(moto_server, bucket, key_file, payload) -> str:
    key, _ = key_file
    url = f"envelope::s3://{bucket}/data.bin.env"
    with fsspec.open(url, "wb", envelope={"recipients": key.public_key()}, s3=moto_server.options()) as f:
        f.write(payload)
    return url


@pytest.fixture
def s3(moto_server):
    return s3fs.S3FileSystem(**moto_server.options())


@pytest.fixture
def fetches(monkeypatch):
    """The length of every ranged GET s3fs makes."""
    sizes: list[int] = []
    original = s3fs.core.S3File._fetch_range

    def counted(self, start, end):
        data = original(self, start, end)
        sizes.append(len(data))
        return data

    monkeypatch.setattr(s3fs.core.S3File, "_fetch_range", counted)
    return sizes


def reading(moto_server, key_file, **envelope_options):
    return {"envelope": {"identity": str(key_file[1]), **envelope_options}, "s3": moto_server.options()}


def test_round_trip_and_pass_through(moto_server, bucket, key_file, sealed_url, payload, s3):
    with fsspec.open(sealed_url, "rb", **reading(moto_server, key_file)) as f:
        assert f.size == len(payload)
        assert f.read() == payload
    fs, path = fsspec.core.url_to_fs(sealed_url, **reading(moto_server, key_file))
    assert fs.info(path)["size"] == s3.info(path)["size"] > len(payload)  # info: the sealed size
    assert f"{bucket}/data.bin.env" in fs.glob(f"{bucket}/*.env")
    assert fs.exists(path) and not fs.exists(f"{bucket}/absent.env")


def test_a_random_1_mib_read_fetches_the_header_the_final_chunk_and_two_chunks(
    moto_server, key_file, sealed_url, payload, fetches
):
    with fsspec.open(sealed_url, "rb", **reading(moto_server, key_file)) as f:
        f.seek(5 * MIB + 12345)
        assert f.read(MIB) == payload[5 * MIB + 12345 : 6 * MIB + 12345]
    final_token = 57 + 16 * ((9 + 5) // 16 + 1)  # the last chunk holds 5 bytes
    assert fetches == [HEADER_WINDOW, final_token, 2 * TOKEN]  # three GETs, nothing around them


def test_a_sequential_read_fetches_each_chunk_once_in_few_gets(moto_server, key_file, sealed_url, payload, fetches):
    with fsspec.open(sealed_url, "rb", **reading(moto_server, key_file, read_ahead=4 * MIB)) as f:
        parts = []
        while piece := f.read(MIB):
            parts.append(piece)
    assert b"".join(parts) == payload
    assert sum(fetches) <= 12 * TOKEN + HEADER_WINDOW + 2 * 73  # the header window and final chunk twice
    assert len(fetches) <= 8  # header, final chunk, chunk 0, chunk 1, then 4 MiB windows


def test_the_final_chunk_is_fetched_once(moto_server, key_file, sealed_url, payload, fetches):
    """The reader verifies the final chunk when it opens and keeps its plaintext: reading it again
    (a zip archive's directory, the end of a sequential read) fetches nothing more."""
    with fsspec.open(sealed_url, "rb", **reading(moto_server, key_file)) as f:
        assert f.read(10) == payload[:10]  # chunk 0: the held segment moves off the final chunk
        before = len(fetches)
        f.seek(-3, os.SEEK_END)
        assert f.read() == payload[-3:]
        assert len(fetches) == before  # the final chunk again: no GET
        f.seek(0)
        assert f.read() == payload
    final_token = 57 + 16 * ((9 + 5) // 16 + 1)  # the last chunk holds 5 bytes
    assert fetches.count(final_token) == 1


def test_an_interrupted_upload_leaves_no_object(moto_server, bucket, key_file, s3):
    key, _ = key_file
    fs, path = fsspec.core.url_to_fs(
        f"envelope::s3://{bucket}/interrupted.env", envelope={"recipients": key.public_key()}, s3=moto_server.options()
    )
    with pytest.raises(KeyError), fs.open(path, "wb", block_size=5 * MIB) as f:
        f.write(random.Random(1).randbytes(11 * MIB))  # two 5 MiB parts are uploaded by now
        raise KeyError("interrupted")
    assert not s3.exists(path)
    uploads = s3.call_s3("list_multipart_uploads", Bucket=bucket).get("Uploads", [])
    assert [u for u in uploads if u["Key"] == "interrupted.env"] == []  # the upload was aborted


def test_missing_truncated_and_wrong_key(moto_server, bucket, key_file, stranger, sealed_url, s3):
    options = reading(moto_server, key_file)
    with pytest.raises(FileNotFoundError):
        fsspec.open(f"envelope::s3://{bucket}/absent.env", "rb", **options).open()
    sealed = s3.cat(f"{bucket}/data.bin.env")
    s3.pipe(f"{bucket}/truncated.env", sealed[:-1000])
    with pytest.raises(AuthenticationError):
        fsspec.open(f"envelope::s3://{bucket}/truncated.env", "rb", **options).open()
    with pytest.raises(NoMatchingKeyError):
        fsspec.open(sealed_url, "rb", envelope={"identity": stranger}, s3=moto_server.options()).open()


def test_an_object_replaced_between_two_reads_is_refused(moto_server, bucket, key_file, payload, s3):
    key, _ = key_file
    s3.pipe(f"{bucket}/replaced.env", envelope.seal(payload, key.public_key()))
    url = f"envelope::s3://{bucket}/replaced.env"
    with fsspec.open(url, "rb", **reading(moto_server, key_file)) as f:
        assert f.read(MIB) == payload[:MIB]
        s3.pipe(f"{bucket}/replaced.env", envelope.seal(payload, key.public_key()))  # same plaintext, new ETag
        with pytest.raises(ObjectChangedError):
            f.read(MIB)


def test_a_network_failure_mid_read_is_a_remote_error(bucket, key_file, payload):
    key, _ = key_file
    server = MotoServer()  # this one is stopped halfway
    try:
        options = server.options()
        s3fs.S3FileSystem(**options).mkdir(bucket)
        url = f"envelope::s3://{bucket}/network.env"
        with fsspec.open(url, "wb", envelope={"recipients": key.public_key()}, s3=options) as f:
            f.write(payload[: 3 * MIB])
        f = fsspec.open(url, "rb", envelope={"identity": key}, s3=options).open()
        assert f.read(MIB) == payload[:MIB]
    finally:
        server.stop()
    started = time.monotonic()
    with pytest.raises(RemoteError) as raised:
        f.read(MIB)
    assert isinstance(raised.value, OSError)  # code that handles I/O errors sees one
    assert time.monotonic() - started < 30
    f.close()
