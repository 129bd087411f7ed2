"""envelope.models.keras: real Keras models round-trip, and no plaintext reaches the disk."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from frameworks import need
from tracing import written_paths

import envelope
from envelope.models import _common

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = need("keras")
np = need("numpy")
from envelope.models import keras as sealed_keras  # noqa: E402

SECRET_TOKEN = "zebra-secret-vocabulary-token"


@keras.saving.register_keras_serializable(package="envelope_tests")
class Scale(keras.layers.Layer):
    """A custom layer with a trainable weight and its own config."""

    def __init__(self, factor: float = 2.0, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        self.factor = factor

    def build(self, input_shape):  # type: ignore[no-untyped-def]
        self.bias = self.add_weight(shape=(input_shape[-1],), initializer="random_normal", name="bias")

    def call(self, x):  # type: ignore[no-untyped-def]
        return x * self.factor + self.bias

    def get_config(self):  # type: ignore[no-untyped-def]
        return {**super().get_config(), "factor": self.factor}


def sequential():  # type: ignore[no-untyped-def]
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    rng = np.random.default_rng(0)
    model.fit(rng.normal(size=(32, 6)), rng.normal(size=(32, 2)), epochs=2, verbose=0)
    return model


def functional_with_custom_layer():  # type: ignore[no-untyped-def]
    inputs = keras.Input((4,))
    hidden = Scale(3.0)(keras.layers.Dense(5)(inputs))
    return keras.Model(inputs, keras.layers.Dense(1)(hidden))


def vocabulary_model():  # type: ignore[no-untyped-def]
    inputs = keras.Input((1,), dtype="string")
    lookup = keras.layers.StringLookup(vocabulary=[SECRET_TOKEN, "apple", "banana"])
    return keras.Model(inputs, lookup(inputs))


def test_sequential_round_trip_with_optimizer_state(alice, tmp_path):
    model = sequential()
    path = tmp_path / "model.keras.env"
    sealed_keras.save(model, path, alice.public_key(), metadata={"run": 7})
    loaded = sealed_keras.load(path, alice)
    x = np.random.default_rng(1).normal(size=(10, 6)).astype("float32")
    assert np.array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    assert loaded.optimizer is not None
    assert int(loaded.optimizer.iterations.numpy()) == int(model.optimizer.iterations.numpy()) > 0
    metadata = envelope.open_with_metadata(path.read_bytes(), alice).metadata
    assert metadata["run"] == 7
    assert metadata["envelope.framework"] == "keras" and metadata["envelope.model_format"] == "keras-v3"
    assert metadata["envelope.framework_version"] == keras.__version__
    assert sorted(os.listdir(tmp_path)) == ["model.keras.env"]


def test_functional_model_with_custom_layer(alice, tmp_path):
    model = functional_with_custom_layer()
    sealed = tmp_path / "f.env"
    sealed_keras.save(model, sealed, alice.public_key())
    x = np.random.default_rng(2).normal(size=(3, 4)).astype("float32")
    for kwargs in ({}, {"custom_objects": {"Scale": Scale}}, {"compile": False, "safe_mode": True}):
        loaded = sealed_keras.load(sealed, alice, **kwargs)
        assert np.array_equal(model(x).numpy(), loaded(x).numpy())
        assert isinstance(loaded.layers[2], Scale) and loaded.layers[2].factor == 3.0


def test_file_objects_and_bytes(alice, tmp_path):
    import io

    model = sequential()
    buffer = io.BytesIO()
    sealed_keras.save(model, buffer, alice.public_key())
    x = np.ones((1, 6), dtype="float32")
    for source in (buffer.getvalue(), io.BytesIO(buffer.getvalue())):
        assert np.array_equal(model(x).numpy(), sealed_keras.load(source, alice)(x).numpy())


def test_model_with_vocabulary_assets_round_trips(alice, tmp_path):
    model = vocabulary_model()
    path = tmp_path / "vocab.env"
    sealed_keras.save(model, path, alice.public_key())
    loaded = sealed_keras.load(path, alice)
    words = np.array([["apple"], [SECRET_TOKEN], ["unknown"]])
    assert loaded(words).numpy().tolist() == model(words).numpy().tolist() == [[2], [1], [0]]
    assert SECRET_TOKEN.encode() not in path.read_bytes()  # the vocabulary is sealed, not in clear


def test_assets_are_refused_without_a_ram_folder(alice, tmp_path, monkeypatch):
    monkeypatch.setattr(_common, "ram_filesystem", lambda: None)
    with pytest.raises(envelope.UsageError, match="RAM-backed"):
        sealed_keras.save(vocabulary_model(), tmp_path / "v.env", alice.public_key())
    assert os.listdir(tmp_path) == []  # nothing, not even a partial sealed file
    sealed_keras.save(sequential(), tmp_path / "plain.env", alice.public_key())  # no assets: fine


def test_signed_keras_models_load_only_from_the_pinned_signer(alice, tmp_path, monkeypatch):
    """Issue 13, item 3, for the Keras adapter: the pin is checked before Keras sees a byte, on
    .keras archives and on SavedModel exports alike."""
    publisher, impostor = envelope.generate_signing_key(), envelope.generate_signing_key()
    model = sequential()
    sealed_keras.save(model, tmp_path / "signed.env", alice.public_key(), sign_with=publisher)
    sealed_keras.save(model, tmp_path / "forged.env", alice.public_key(), sign_with=impostor)
    loaded = sealed_keras.load(tmp_path / "signed.env", alice, signed_by=publisher.public_key())
    x = np.random.default_rng(3).normal(size=(4, 6)).astype("float32")
    assert np.array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    saving_lib = sys.modules["keras.src.saving.saving_lib"]  # what the adapter hands the archive to
    monkeypatch.setattr(saving_lib, "load_model", lambda *a, **k: pytest.fail("Keras saw the impostor's model"))
    with pytest.raises(envelope.SignerError):
        sealed_keras.load(tmp_path / "forged.env", alice, signed_by=publisher.public_key())
    need("tensorflow")
    sealed_keras.export_saved_model(model, tmp_path / "served.env", alice.public_key(), sign_with=impostor)
    with pytest.raises(envelope.SignerError):
        sealed_keras.load_saved_model(
            tmp_path / "served.env", alice, signed_by=publisher.public_key(), unsafe_trust_graph=True
        )


def test_saved_model_export_round_trip(alice, tmp_path):
    need("tensorflow")
    model = functional_with_custom_layer()
    path = tmp_path / "served.env"
    sealed_keras.export_saved_model(model, path, alice.public_key(), metadata={"signature": "serve"})
    served = sealed_keras.load_saved_model(path, alice, unsafe_trust_graph=True)
    x = np.random.default_rng(5).normal(size=(4, 4)).astype("float32")
    assert np.allclose(served.serve(x).numpy(), model(x).numpy())
    metadata = envelope.open_with_metadata(path.read_bytes(), alice).metadata
    assert metadata["envelope.framework"] == "tensorflow" and metadata["envelope.model_format"] == "tf-saved-model-tar"
    with pytest.raises(envelope.UsageError, match=r"holds a TensorFlow SavedModel .*, not a Keras model"):
        sealed_keras.load(path, alice)  # a SavedModel is not a .keras archive, and the check says so


def test_loading_a_saved_model_needs_the_trust_opt_in(alice, monkeypatch):
    """tf.saved_model.load runs the graph's initialisers (any op, file writes included) as it loads."""
    import io

    tf = need("tensorflow")
    sealed = io.BytesIO()
    sealed_keras.export_saved_model(functional_with_custom_layer(), sealed, alice.public_key())
    calls: list[object] = []
    real_load = tf.saved_model.load

    def recording_load(export_dir, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(export_dir)
        return real_load(export_dir, *args, **kwargs)

    monkeypatch.setattr(tf.saved_model, "load", recording_load)
    with pytest.raises(envelope.UnsafeModelError, match=r"runs ops from its graph.*unsafe_trust_graph=True"):
        sealed_keras.load_saved_model(sealed.getvalue(), alice)
    assert calls == []
    assert sealed_keras.load_saved_model(sealed.getvalue(), alice, unsafe_trust_graph=True) is not None
    assert len(calls) == 1


def test_saved_model_archive_with_escaping_names_is_refused(alice, tmp_path):
    need("tensorflow")
    import io
    import tarfile

    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        member = tarfile.TarInfo("../outside.pb")
        member.size = 1
        tar.addfile(member, io.BytesIO(b"x"))
    meta = {
        "envelope.framework": "tensorflow",
        "envelope.framework_version": "x",
        "envelope.model_format": "tf-saved-model-tar",
    }
    sealed = envelope.seal(archive.getvalue(), alice.public_key(), metadata=meta)
    with pytest.raises(envelope.UsageError, match="unexpected entry"):
        sealed_keras.load_saved_model(sealed, alice, unsafe_trust_graph=True)


# --- Keras versions whose safe_mode a crafted file gets past (issue 17 item 5) ---


class CountingFile(io.BytesIO):
    """A sealed file that counts the bytes read from it."""

    bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        return data

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        count = super().readinto(buffer)
        self.bytes_read += count
        return count


@pytest.fixture(scope="module")
def sealed_sequential(alice) -> bytes:  # type: ignore[no-untyped-def]
    sealed = io.BytesIO()
    sealed_keras.save(sequential(), sealed, alice.public_key())
    return sealed.getvalue()


@pytest.mark.parametrize("version", ["3.2.0", "3.8.0", "3.11.3", "3.12.0", "3.13.0", "3.13.1", "2.15.0", "nonsense"])
def test_an_affected_keras_is_refused_before_anything_is_read(alice, monkeypatch, sealed_sequential, version):
    monkeypatch.setattr(keras, "__version__", version)
    source = CountingFile(sealed_sequential)
    with pytest.raises(envelope.MissingDependencyError, match=r"Keras 3\.12\.1 or later.*envelope-ml\[keras\]") as info:
        sealed_keras.load(source, alice)
    assert repr(version) in str(info.value)
    assert source.bytes_read == 0 and source.tell() == 0


@pytest.mark.parametrize("version", ["3.12.1", "3.12.4", "3.13.2", "3.15.1", "3.16.0.dev2026010103", "4.0.0"])
def test_a_fixed_keras_is_accepted(alice, monkeypatch, sealed_sequential, version):
    monkeypatch.setattr(keras, "__version__", version)
    assert len(sealed_keras.load(sealed_sequential, alice).layers) == 2


def test_the_keras_extras_require_the_same_floor():
    tomllib = pytest.importorskip("tomllib")
    extras = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    floor = ".".join(map(str, sealed_keras.MIN_KERAS_VERSION))
    excluded = "".join(f",!={'.'.join(map(str, v))}" for v in sorted(sealed_keras.AFFECTED_KERAS_VERSIONS))
    for extra in ("keras", "tensorflow"):
        assert f"keras>={floor}{excluded}" in extras[extra], extra


def test_wrong_key_and_wrong_framework(alice, stranger, tmp_path):
    path = tmp_path / "m.env"
    sealed_keras.save(sequential(), path, alice.public_key())
    with pytest.raises(envelope.NoMatchingKeyError):
        sealed_keras.load(path, stranger)
    other = tmp_path / "plain.env"
    other.write_bytes(envelope.seal(b"not a model", alice.public_key()))
    with pytest.raises(envelope.UsageError, match="not a Keras model"):
        sealed_keras.load(other, alice)


def test_reserved_metadata_keys(alice, tmp_path):
    with pytest.raises(envelope.UsageError, match="reserved"):
        sealed_keras.save(sequential(), tmp_path / "m.env", alice.public_key(), metadata={"envelope.framework": "x"})


def test_envelope_info_shows_the_framework(alice, tmp_path):
    path = tmp_path / "m.env"
    sealed_keras.save(sequential(), path, alice.public_key())
    info = Path(sys.executable).parent / "envelope-info"
    record = json.loads(subprocess.run([info, "--json", path], capture_output=True, check=True).stdout)["files"][0]
    assert record["metadata"]["envelope.framework"] == "keras"
    assert record["metadata"]["envelope.model_format"] == "keras-v3"


# --- backends: Keras alone needs one, and TensorFlow is only one of them ---

TORCH_BACKEND_SCRIPT = """
import io, sys
sys.modules["tensorflow"] = None  # as if TensorFlow were not installed: the keras extra alone
import numpy as np, keras, envelope
from envelope.models import keras as sealed_keras
assert keras.backend.backend() == "torch", keras.backend.backend()
key = envelope.generate_private_key(2048)
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu"), keras.layers.Dense(1)])
model.compile(optimizer="adam", loss="mse")
rng = np.random.default_rng(0)
model.fit(rng.normal(size=(16, 4)), rng.normal(size=(16, 1)), epochs=1, verbose=0)
sealed = io.BytesIO()
sealed_keras.save(model, sealed, key.public_key())
loaded = sealed_keras.load(sealed.getvalue(), key)
x = rng.normal(size=(5, 4)).astype("float32")
assert np.array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
print(envelope.open_with_metadata(sealed.getvalue(), key).metadata["envelope.backend"])
"""


def test_keras_round_trips_on_the_torch_backend_without_tensorflow():
    need("torch")
    env = {**os.environ, "KERAS_BACKEND": "torch"}  # Keras picks its backend once, at import
    run = subprocess.run([sys.executable, "-c", TORCH_BACKEND_SCRIPT], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == "torch"


MISSING_BACKEND_SCRIPT = """
import io, sys
sys.modules["tensorflow"] = None  # Keras is installed, its default backend is not
import envelope
from envelope.models import keras as sealed_keras
try:
    sealed_keras.save(object(), io.BytesIO(), envelope.generate_private_key(2048).public_key())
except envelope.MissingDependencyError as exc:
    print(exc)
"""


def test_a_missing_backend_is_named_with_the_extra_that_installs_one():
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    run = subprocess.run([sys.executable, "-c", MISSING_BACKEND_SCRIPT], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    message = run.stdout.strip()
    assert message.startswith("Keras needs a backend, and the one it is set to use (TensorFlow) is not installed")
    assert "pip install 'envelope-ml[tensorflow]'" in message and "KERAS_BACKEND=torch" in message


# --- no plaintext on disk -----------------------------------------------------------------

WATCHED_SCRIPT = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, keras, envelope
from envelope.models import keras as sealed_keras
key = envelope.load_private_key(sys.argv[2])
inputs = keras.Input((1,), dtype="string")
model = keras.Model(inputs, keras.layers.StringLookup(vocabulary=[os.environ["VOCAB_TOKEN"], "apple"])(inputs))
print("BEGIN-ENVELOPE-WORK", flush=True)
sealed_keras.save(model, sys.argv[1], key.public_key())
loaded = sealed_keras.load(sys.argv[1], key)
assert loaded(np.array([["apple"]])).numpy().tolist() == [[2]]
dense = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
sealed_keras.export_saved_model(dense, sys.argv[1] + ".savedmodel", key.public_key())
served = sealed_keras.load_saved_model(sys.argv[1] + ".savedmodel", key, unsafe_trust_graph=True)
x = np.ones((1, 3), dtype="float32")
assert np.allclose(served.serve(x).numpy(), dense(x).numpy())
"""


def _watched_run(tmp_path: Path, alice, strace: bool) -> tuple[Path, Path, str]:  # type: ignore[no-untyped-def]
    out, tmpdir = tmp_path / "out", tmp_path / "tmpdir"
    out.mkdir()
    tmpdir.mkdir()
    key = tmp_path / "alice.pem"
    key.write_bytes(envelope.private_key_pem(alice))
    script = tmp_path / "work.py"
    script.write_text(WATCHED_SCRIPT)  # the token comes through the environment, so no file holds it
    command = [sys.executable, str(script), str(out / "vocab.env"), str(key)]
    trace = tmp_path / "trace.log"
    if strace:
        calls = "openat,open,creat,mkdir,mkdirat,rename,renameat,renameat2,link,linkat,write"
        command = ["strace", "-f", "-e", f"trace={calls}", "-e", "write=none", "-o", str(trace), *command]
    env = {**os.environ, "TMPDIR": str(tmpdir), "VOCAB_TOKEN": SECRET_TOKEN}
    subprocess.run(command, env=env, check=True, capture_output=True)
    return out, tmpdir, trace.read_text() if strace else ""


def _ram_staging_folders() -> set[str]:
    return {p for p in os.listdir("/dev/shm") if p.startswith("envelope-")} if os.path.isdir("/dev/shm") else set()


def test_no_model_bytes_reach_the_disk(alice, tmp_path):
    """TMPDIR points at an empty folder: it stays empty, and the vocabulary is nowhere on disk."""
    before = _ram_staging_folders()
    out, tmpdir, _ = _watched_run(tmp_path, alice, strace=False)
    assert os.listdir(tmpdir) == []
    assert sorted(os.listdir(out)) == ["vocab.env", "vocab.env.savedmodel"]
    for root, _, files in os.walk(tmp_path):
        for name in files:
            assert SECRET_TOKEN.encode() not in (Path(root) / name).read_bytes(), name
    assert _ram_staging_folders() - before == set()  # the tmpfs staging folders were removed


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_every_file_written_during_save_and_load_is_in_ram_or_the_sealed_output(alice, tmp_path):
    """System-call trace: from the start of save to the end of load, every file opened for writing
    is in the private tmpfs folder or is the sealed output's temporary file."""
    out, _, trace = _watched_run(tmp_path, alice, strace=True)
    writes = written_paths(trace)
    # The sealed outputs: an O_TMPFILE opened on their folder (or a hidden .partial file where
    # O_TMPFILE is unavailable); then the tmpfs staging folders, and /dev/null.
    sealed_output = rf"{re.escape(str(out))}(/\.vocab\.env[^/]*\.partial)?"
    allowed = re.compile(rf"^(/dev/shm/envelope-[^/]+(/.*)?|{sealed_output}|/dev/null)$")
    assert writes, "the trace saw no file being written at all"
    assert [w for w in writes if not allowed.match(w)] == []
    assert any(w.startswith("/dev/shm/envelope-") for w in writes)  # the assets were staged in RAM
