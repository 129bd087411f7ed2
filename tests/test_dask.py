# ruff: noqa: F811 - the fixtures imported from remote_fixtures are arguments of the tests
"""Sealed shards on Dask: a LocalCluster of two worker processes, S3 on loopback (moto's server).

Workers hold the private key the way a real cluster's do: a key file they can read, named by an
environment variable they were started with. The task graphs carry the name, never the key.
"""

from __future__ import annotations

import os
import pickle
import random

import pytest
from remote_fixtures import bucket, key_file, moto_server, need  # noqa: F401 - fixtures

import envelope
from envelope.errors import AuthenticationError, UsageError

need("fsspec")
need("s3fs")
need("pyarrow")
dd = need("dask.dataframe")
distributed = need("dask.distributed")
pd = need("pandas")
fsspec = need("fsspec")
envelope_dask = need("envelope.dask")

IDENTITY_ENV = "ENVELOPE_TEST_WORKER_KEY"


@pytest.fixture(scope="module")
def client(key_file):
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        env={IDENTITY_ENV: key_file[1].read_text()},  # the key itself, as a CI secret or a mounted env is
    )
    with cluster, distributed.Client(cluster) as client:
        client.wait_for_workers(2)
        yield client


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("plain")
    rng = random.Random(7)
    for index in range(6):
        folder = root / ("nested" if index % 2 else "")
        folder.mkdir(exist_ok=True)
        (folder / f"shard-{index}.bin").write_bytes(rng.randbytes(300_000 + index))
    return root


def tree(root):
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            found[os.path.relpath(path, root)] = open(path, "rb").read()
    return found


def test_seal_and_open_a_prefix_on_two_workers(client, moto_server, bucket, key_file, shards, tmp_path):
    key, _ = key_file
    s3 = moto_server.options()
    sealing = envelope_dask.seal_prefix(
        str(shards), f"s3://{bucket}/sealed", key.public_key(), destination_options=s3, metadata={"set": "t"}
    )
    with distributed.get_task_stream(client) as stream:
        done = sealing.compute()
    assert {t["worker"] for t in stream.data} == set(client.scheduler_info()["workers"])  # both worked
    assert sorted(r["bytes"] for r in done) == sorted(len(v) for v in tree(shards).values())
    listing = fsspec.filesystem("s3", **s3).find(f"{bucket}/sealed")
    assert sorted(listing) == sorted(f"{bucket}/sealed/{name}.env" for name in tree(shards))

    opening = envelope_dask.open_prefix(
        f"s3://{bucket}/sealed", str(tmp_path / "opened"), identity_env=IDENTITY_ENV, source_options=s3
    )
    opening.compute()
    assert tree(tmp_path / "opened") == tree(shards)
    # Plaintext outputs on a local disk are private (0600), as open_file makes them: fsspec's own
    # local files got the umask's mode (0644), after a detour through the system temp folder.
    modes = {path.stat().st_mode & 0o777 for path in (tmp_path / "opened").rglob("*") if path.is_file()}
    assert modes == {0o600}


def test_local_files_seal_and_open_on_the_cluster(client, key_file, shards, tmp_path):
    """Local paths on both sides (a shared disk): the empty source options of a local source are
    not storage options given without a URL."""
    private, path = key_file
    plain = sorted(p for p in shards.rglob("*.bin"))
    sealed = [tmp_path / f"{p.name}.env" for p in plain]
    opened = [tmp_path / p.name for p in plain]
    envelope_dask.seal_files(
        zip(map(str, plain), map(str, sealed)), private.public_key(), metadata={"set": "local"}
    ).compute()
    assert {envelope.inspect(p).unverified_metadata["set"] for p in sealed} == {"local"}
    done = envelope_dask.open_files(zip(map(str, sealed), map(str, opened)), identity=str(path)).compute()
    assert [r["bytes"] for r in done] == [p.stat().st_size for p in plain]
    assert [p.read_bytes() for p in opened] == [p.read_bytes() for p in plain]
    assert {p.stat().st_mode & 0o777 for p in opened} == {0o600}


@pytest.fixture(scope="module")
def frames(moto_server, bucket, key_file):
    """Three Parquet shards, sealed, under s3://BUCKET/table/."""
    found = []
    for index in range(3):
        frame = pd.DataFrame({"n": range(index * 500, (index + 1) * 500), "label": [f"r{index}"] * 500})
        found.append(frame)
        url = f"envelope::s3://{bucket}/table/part-{index}.parquet.env"
        with fsspec.open(url, "wb", envelope={"recipients": key_file[0].public_key()}, s3=moto_server.options()) as f:
            frame.to_parquet(f)
    return found


def test_read_sealed_parquet_shards_with_dask_dataframe(client, moto_server, bucket, key_file, frames):
    _, path = key_file
    s3 = moto_server.options()
    options = {"envelope": {"identity": str(path)}, "s3": s3}
    table = dd.read_parquet(f"envelope::s3://{bucket}/table/*.parquet.env", storage_options=options)
    assert table.npartitions == 3
    result = table.compute().sort_values("n").reset_index(drop=True)
    pd.testing.assert_frame_equal(result, pd.concat(frames).reset_index(drop=True), check_dtype=False)
    labels = dd.read_parquet(
        f"envelope::s3://{bucket}/table/*.parquet.env", storage_options=options, columns=["label"]
    ).compute()
    assert sorted(set(labels["label"])) == ["r0", "r1", "r2"]


def test_private_keys_stay_out_of_task_graphs(client, moto_server, bucket, key_file, frames):
    key, path = key_file
    secret = envelope.private_key_pem(key)
    s3 = moto_server.options()
    by_path = envelope_dask.open_prefix(
        f"s3://{bucket}/sealed", "/tmp/unused", identity=str(path), source_options=s3
    )  # built, never run
    graph = pickle.dumps(dict(by_path.__dask_graph__()))
    assert str(path).encode() in graph and secret not in graph and b"PRIVATE KEY" not in graph
    for identity in (key, secret, secret.decode()):
        with pytest.raises(UsageError, match="never pickled"):
            envelope_dask.open_prefix(f"s3://{bucket}/sealed", "/tmp/unused", identity=identity, source_options=s3)
    # Through dask.dataframe, key text is refused before any graph carries it (a str is a path,
    # never key text; dask may wrap the error).
    with pytest.raises(Exception) as raised:
        dd.read_parquet(
            f"envelope::s3://{bucket}/table/*.parquet.env",
            storage_options={"envelope": {"identity": secret.decode()}, "s3": s3},
        ).compute()
    chain, error = [], raised.value
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    assert any(isinstance(e, UsageError) and ("never pickled" in str(e) or "not key text" in str(e)) for e in chain)


def test_a_tampered_shard_fails_the_job_and_leaves_no_plaintext(client, key_file, shards, tmp_path):
    key, _ = key_file
    envelope_dask.seal_prefix(str(shards), str(tmp_path / "sealed"), key.public_key()).compute()
    victim = tmp_path / "sealed" / "shard-0.bin.env"
    data = bytearray(victim.read_bytes())
    data[-500] ^= 1
    victim.write_bytes(bytes(data))
    with pytest.raises(AuthenticationError):
        envelope_dask.open_prefix(
            str(tmp_path / "sealed"), str(tmp_path / "opened"), identity_env=IDENTITY_ENV
        ).compute()
    assert not (tmp_path / "opened" / "shard-0.bin").exists()


# --- names and destinations from an untrusted store (issue 17) -----------------------------------
# These build and run their bags in this process (scheduler="sync"): what is checked is what a
# task writes, and the memory filesystem is the store.


@pytest.fixture
def memory_store():
    """A fresh folder of fsspec's memory filesystem, removed afterwards."""
    fs = fsspec.filesystem("memory")
    root = f"/store-{random.Random().randrange(1 << 32):08x}"
    yield fs, root
    if fs.exists(root):
        fs.rm(root, recursive=True)


def nothing_under(folder):
    return not folder.exists() or not any(folder.rglob("*"))


@pytest.mark.parametrize(
    "name",
    [
        "shards/../../../outside/x.bin",
        "../x.bin",
        "shards//x.bin",
        "shards/./x.bin",
        "shards\\..\\..\\x.bin",
        "shards/x::file:///tmp/x.bin",
        "shards/x\x00.bin",
    ],
)
def test_a_listed_name_that_leaves_the_destination_is_refused_before_anything_runs(
    key_file, memory_store, tmp_path, name
):
    key, _ = key_file
    fs, root = memory_store
    fs.pipe(f"{root}/a-good-one.bin", b"plain")
    fs.pipe(f"{root}/{name}", b"plain")
    out = tmp_path / "deep" / "out"
    with pytest.raises(UsageError, match="could lead outside the destination") as refused:
        envelope_dask.seal_prefix(f"memory://{root}", str(out), key.public_key())
    assert repr(name.split("/", 1)[-1])[1:-1] in str(refused.value)  # named, escaped
    assert "\x00" not in str(refused.value)
    assert nothing_under(tmp_path)  # not even the good name was written


def test_a_sealed_name_that_leaves_the_destination_is_refused_before_anything_runs(key_file, memory_store, tmp_path):
    key, path = key_file
    fs, root = memory_store
    sealed = envelope.seal(b"plaintext", key.public_key())
    fs.pipe(f"{root}/a-good-one.bin.env", sealed)
    fs.pipe(f"{root}/shards/../../../{tmp_path.name}/escaped.bin.env", sealed)
    fs.pipe(f"{root}/dots/...env", sealed)  # "..env" without its suffix is ".."
    out = tmp_path / "out"
    for pattern in ("*.env", "dots/*"):
        with pytest.raises(UsageError, match="could lead outside the destination"):
            envelope_dask.open_prefix(f"memory://{root}", str(out), pattern=pattern, identity=str(path))
    assert nothing_under(tmp_path)


def test_a_symbolic_link_inside_the_destination_is_never_written_through(key_file, tmp_path):
    key, path = key_file
    source = tmp_path / "plain"
    (source / "shards").mkdir(parents=True)
    (source / "shards" / "x.bin").write_bytes(b"plaintext")
    (source / "top.bin").write_bytes(b"plaintext")
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "shards").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UsageError, match="symbolic link"):
        envelope_dask.seal_prefix(str(source), str(out), key.public_key(), pattern="shards/*").compute(scheduler="sync")
    assert nothing_under(outside)
    # The file itself a link to a file outside: not replaced through it, even with overwrite.
    (outside / "victim").write_bytes(b"keep me")
    (out / "top.bin.env").symlink_to(outside / "victim")
    with pytest.raises(UsageError, match="symbolic link"):
        envelope_dask.seal_prefix(str(source), str(out), key.public_key(), pattern="top.bin", overwrite=True).compute(
            scheduler="sync"
        )
    assert (outside / "victim").read_bytes() == b"keep me"
    # Opening: the same rules for the plaintext.
    sealed = tmp_path / "sealed"
    (sealed / "shards").mkdir(parents=True)
    (sealed / "shards" / "x.bin.env").write_bytes(envelope.seal(b"plaintext", key.public_key()))
    with pytest.raises(UsageError, match="symbolic link"):
        envelope_dask.open_prefix(str(sealed), str(out), identity=str(path)).compute(scheduler="sync")
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]


def test_an_existing_destination_is_replaced_only_with_overwrite(key_file, memory_store, tmp_path):
    key, path = key_file
    fs, root = memory_store
    source = tmp_path / "plain"
    source.mkdir()
    (source / "x.bin").write_bytes(b"new plaintext")
    out = tmp_path / "out"
    out.mkdir()
    (out / "x.bin.env").write_bytes(b"old")
    with pytest.raises(envelope.OutputExistsError):
        envelope_dask.seal_prefix(str(source), str(out), key.public_key()).compute(scheduler="sync")
    assert (out / "x.bin.env").read_bytes() == b"old"
    envelope_dask.seal_prefix(str(source), str(out), key.public_key(), overwrite=True).compute(scheduler="sync")
    assert envelope.open((out / "x.bin.env").read_bytes(), key) == b"new plaintext"
    # A URL destination, sealed and plain.
    fs.pipe(f"{root}/sealed/x.bin.env", b"old")
    fs.pipe(f"{root}/opened/x.bin", b"old")
    with pytest.raises(envelope.OutputExistsError):
        envelope_dask.seal_prefix(str(source), f"memory://{root}/sealed", key.public_key()).compute(scheduler="sync")
    assert fs.cat(f"{root}/sealed/x.bin.env") == b"old"
    with pytest.raises(envelope.OutputExistsError):
        envelope_dask.open_prefix(str(out), f"memory://{root}/opened", identity=str(path)).compute(scheduler="sync")
    assert fs.cat(f"{root}/opened/x.bin") == b"old"
    envelope_dask.open_prefix(str(out), f"memory://{root}/opened", identity=str(path), overwrite=True).compute(
        scheduler="sync"
    )
    assert fs.cat(f"{root}/opened/x.bin") == b"new plaintext"
    # Opened locally: the same.
    (tmp_path / "opened").mkdir()
    (tmp_path / "opened" / "x.bin").write_bytes(b"old")
    with pytest.raises(envelope.OutputExistsError):
        envelope_dask.open_prefix(str(out), str(tmp_path / "opened"), identity=str(path)).compute(scheduler="sync")
    assert (tmp_path / "opened" / "x.bin").read_bytes() == b"old"


def test_plaintext_never_goes_through_a_caching_wrapper(key_file, memory_store, tmp_path):
    key, path = key_file
    fs, root = memory_store
    sealed = tmp_path / "sealed"
    sealed.mkdir()
    (sealed / "x.bin.env").write_bytes(envelope.seal(b"plaintext", key.public_key()))
    fs.pipe(f"{root}/plain/x.bin", b"plaintext")
    for wrapper in ("simplecache", "filecache", "blockcache"):
        with pytest.raises(UsageError, match="local cache folder"):
            envelope_dask.open_prefix(str(sealed), f"{wrapper}::memory://{root}/opened", identity=str(path))
        with pytest.raises(UsageError, match="local cache folder"):
            envelope_dask.open_files(
                [(str(sealed / "x.bin.env"), f"{wrapper}::memory://{root}/x.bin")], identity=str(path)
            )
        with pytest.raises(UsageError, match="local cache folder"):
            envelope_dask.seal_prefix(f"{wrapper}::memory://{root}/plain", str(tmp_path / "out"), key.public_key())
        with pytest.raises(UsageError, match="local cache folder"):
            envelope_dask.seal_files(
                [(f"{wrapper}::memory://{root}/plain/x.bin", str(tmp_path / "x.env"))], key.public_key()
            )
    assert not fs.exists(f"{root}/opened") and not fs.exists(f"{root}/x.bin")
    # A sealed source may go through one: what it caches is ciphertext.
    fs.pipe(f"{root}/sealed/x.bin.env", (sealed / "x.bin.env").read_bytes())
    envelope_dask.open_files(
        [(f"simplecache::memory://{root}/sealed/x.bin.env", str(tmp_path / "x.bin"))],
        identity=str(path),
        source_options={"simplecache": {"cache_storage": str(tmp_path / "cache")}},
    ).compute(scheduler="sync")
    assert (tmp_path / "x.bin").read_bytes() == b"plaintext"
