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
