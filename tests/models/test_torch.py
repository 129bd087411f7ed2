"""envelope.models.torch: state dicts round-trip with weights_only loading; pickles need an opt-in;
nothing but torch.save's zip archive reaches torch.load."""

from __future__ import annotations

import io
import pickle
import re
import tarfile
import warnings
import zipfile
from pathlib import Path

import pytest
from frameworks import need

import envelope

torch = need("torch")
from envelope.models import torch as sealed_torch  # noqa: E402

TORCH_METADATA = {
    "envelope.framework": "torch",
    "envelope.framework_version": str(torch.__version__),
    "envelope.model_format": "torch-save",
}


def sealed_as_torch(data: bytes, key) -> bytes:  # type: ignore[no-untyped-def]
    """Bytes sealed with the metadata the adapter writes, as anyone holding the public key can."""
    return envelope.seal(data, key.public_key(), metadata=TORCH_METADATA)


def torch_save_bytes(obj, **kwargs) -> bytes:  # type: ignore[no-untyped-def]
    buffer = io.BytesIO()
    torch.save(obj, buffer, **kwargs)
    return buffer.getvalue()


@pytest.fixture
def torch_load_calls(monkeypatch) -> list[object]:  # type: ignore[no-untyped-def]
    """Every call the adapter makes to torch.load (which still does its work)."""
    calls: list[object] = []
    real_load = torch.load

    def recording_load(f, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(f)
        return real_load(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", recording_load)
    return calls


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.norm = torch.nn.BatchNorm2d(4)
        self.head = torch.nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.head(torch.flatten(self.norm(self.conv(x)), 1))


def test_state_dict_round_trip_gives_the_same_outputs(alice, tmp_path):
    torch.manual_seed(0)
    net = Net().eval()
    path = tmp_path / "net.pt.env"
    sealed_torch.save(net.state_dict(), path, alice.public_key(), metadata={"arch": "Net"})
    restored = Net().eval()
    restored.load_state_dict(sealed_torch.load(path, alice))
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(net(x), restored(x))
    metadata = envelope.open_with_metadata(path.read_bytes(), alice).metadata
    assert metadata["envelope.framework"] == "torch" and metadata["envelope.framework_version"] == torch.__version__
    assert metadata["arch"] == "Net"


def test_whole_module_pickles_need_the_unsafe_opt_in(alice):
    buffer = io.BytesIO()
    sealed_torch.save(Net(), buffer, alice.public_key())  # a whole module: a pickle of code references
    with pytest.raises(envelope.UnsafeModelError, match="unsafe_allow_pickle"):
        sealed_torch.load(buffer.getvalue(), alice)
    module = sealed_torch.load(buffer.getvalue(), alice, unsafe_allow_pickle=True)
    assert isinstance(module, Net)


@pytest.mark.parametrize("unsafe", [False, True])
def test_a_malformed_pickle_is_a_typed_error(alice, unsafe):
    data = rezipped(PLAIN, lambda entries: [(n, b"garbage" if n.endswith("data.pkl") else d) for n, d in entries])
    expected = (
        "malformed" if unsafe else r"If you trust its origin \(and pin it: signed_by=\), pass unsafe_allow_pickle=True"
    )
    with pytest.raises(envelope.UnsafeModelError, match=expected) as info:
        sealed_torch.load(sealed_as_torch(data, alice), alice, unsafe_allow_pickle=unsafe)
    assert isinstance(info.value.__cause__, pickle.UnpicklingError)


def test_wrong_key_and_wrong_framework(alice, stranger):
    buffer = io.BytesIO()
    sealed_torch.save({"w": torch.ones(2)}, buffer, alice.public_key())
    with pytest.raises(envelope.NoMatchingKeyError):
        sealed_torch.load(buffer.getvalue(), stranger)
    with pytest.raises(envelope.UsageError, match=r"holds no model recorded by envelope.models, not a PyTorch model"):
        sealed_torch.load(envelope.seal(b"x", alice.public_key()), alice)


def test_large_tensors_span_many_chunks(alice):
    tensors = {"big": torch.arange(600_000, dtype=torch.float32)}  # 2.4 MB: three 1 MiB chunks
    buffer = io.BytesIO()
    sealed_torch.save(tensors, buffer, alice.public_key())
    assert envelope.inspect(buffer.getvalue()).chunk_count == 3
    assert torch.equal(sealed_torch.load(io.BytesIO(buffer.getvalue()), alice)["big"], tensors["big"])


def test_archives_torch_save_writes_to_a_path_are_accepted(alice, tmp_path):
    """torch.save names the archive's folder after the file it writes: any one folder will do."""
    torch.save({"w": torch.arange(3.0), "empty": {}}, tmp_path / "weights.pt")
    assert zipfile.ZipFile(tmp_path / "weights.pt").namelist()[0].startswith("weights/")
    loaded = sealed_torch.load(sealed_as_torch((tmp_path / "weights.pt").read_bytes(), alice), alice)
    assert torch.equal(loaded["w"], torch.arange(3.0)) and loaded["empty"] == {}


# --- what never reaches torch.load (CVE-2025-32434: torch < 2.6 ran TorchScript under weights_only) ---


class AddOne(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 1


def torchscript_bytes() -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated, and still loadable
        torch.jit.save(torch.jit.script(AddOne()), buffer)
    return buffer.getvalue()


def test_torchscript_archives_are_refused_before_torch_load(alice, torch_load_calls):
    archive = torchscript_bytes()
    records = {name.split("/", 1)[1] for name in zipfile.ZipFile(io.BytesIO(archive)).namelist()}
    assert "constants.pkl" in records and any(r.startswith("code/") for r in records)  # what jit.save writes
    for unsafe in (False, True):  # TorchScript is code: no pickle opt-in lets it through
        with pytest.raises(envelope.UnsafeModelError, match="TorchScript"):
            sealed_torch.load(sealed_as_torch(archive, alice), alice, unsafe_allow_pickle=unsafe)
    assert torch_load_calls == []


@pytest.mark.parametrize("marker", ["code/__torch__.py", "constants.pkl"])
def test_a_torch_save_archive_with_a_torchscript_record_is_refused(alice, torch_load_calls, marker):
    buffer = io.BytesIO(torch_save_bytes({"w": torch.ones(2)}))
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr(f"archive/{marker}", b"def forward(self, x): ...")
    with pytest.raises(envelope.UnsafeModelError, match="TorchScript"):
        sealed_torch.load(sealed_as_torch(buffer.getvalue(), alice), alice)
    assert torch_load_calls == []


def legacy_tar() -> bytes:
    """The pre-1.0 tar layout torch.load still dispatches to (members sys_info, pickle, storages, tensors)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("sys_info", "pickle", "storages", "tensors"):
            member = tarfile.TarInfo(name)
            payload = pickle.dumps({})
            member.size = len(payload)
            tar.addfile(member, io.BytesIO(payload))
    return buffer.getvalue()


@pytest.mark.parametrize("unsafe", [False, True])
@pytest.mark.parametrize("kind", ["raw pickle", "tar"])
def test_legacy_formats_are_refused_before_torch_load(alice, torch_load_calls, kind, unsafe):
    if kind == "raw pickle":
        data = torch_save_bytes({"w": torch.ones(2)}, _use_new_zipfile_serialization=False)
        assert torch.load(io.BytesIO(data), weights_only=True)["w"].sum() == 2  # torch itself would load it
        torch_load_calls.clear()
    else:
        data = legacy_tar()
    with pytest.raises(envelope.UnsafeModelError, match="legacy tar and raw-pickle formats are refused"):
        sealed_torch.load(sealed_as_torch(data, alice), alice, unsafe_allow_pickle=unsafe)
    assert torch_load_calls == []


def rezipped(source: bytes, edit) -> bytes:  # type: ignore[no-untyped-def]
    """A copy of a zip archive, its (name, data) entries passed through ``edit``."""
    with zipfile.ZipFile(io.BytesIO(source)) as archive:
        entries = [(name, archive.read(name)) for name in archive.namelist()]
    out = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(out, "w") as archive:
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate names some tests make on purpose
        for name, data in edit(entries):
            archive.writestr(name, data)
    return out.getvalue()


PLAIN = torch_save_bytes({"w": torch.ones(2)})
NOT_TORCH_SAVE = {
    "zip after a raw pickle": pickle.dumps({"w": 1}) + PLAIN,
    "zip after a zip header": PLAIN[:30] + PLAIN,
    "not a zip past its magic": b"PK\x03\x04" + bytes(100),
    "entry outside the folder": rezipped(PLAIN, lambda e: [*e, ("other/data.pkl", b"x")]),
    "entry of another kind": rezipped(PLAIN, lambda e: [*e, ("archive/extra/hook.py", b"x")]),
    "no data.pkl": rezipped(PLAIN, lambda e: [(n, d) for n, d in e if not n.endswith("/data.pkl")]),
    "duplicate data.pkl": rezipped(PLAIN, lambda e: [*e, ("archive/data.pkl", pickle.dumps({}))]),
    "an empty zip": rezipped(PLAIN, lambda e: []),
}


@pytest.mark.parametrize("name", NOT_TORCH_SAVE)
def test_anything_but_what_torch_save_writes_is_refused(alice, torch_load_calls, name):
    with pytest.raises(envelope.UnsafeModelError, match=r"torch\.save's zip archive|not a readable zip"):
        sealed_torch.load(sealed_as_torch(NOT_TORCH_SAVE[name], alice), alice)
    assert torch_load_calls == []


def test_entry_names_from_the_file_are_escaped_in_the_message(alice):
    data = rezipped(PLAIN, lambda e: [*e, ("archive/\x1b[2J\u202eevil", b"x")])
    with pytest.raises(envelope.UnsafeModelError) as info:
        sealed_torch.load(sealed_as_torch(data, alice), alice)
    assert "\x1b" not in str(info.value) and "\u202e" not in str(info.value)
    assert "\\x1b[2J\\u202eevil" in str(info.value)


@pytest.mark.filterwarnings("ignore:'torch.load' received a zip file that looks like a TorchScript archive")
def test_torchs_own_torchscript_refusal_is_typed_too(alice, monkeypatch):
    """Should torch's zip reader ever see records zipfile did not, its RuntimeError is still mapped."""
    monkeypatch.setattr(sealed_torch, "_check_archive", lambda reader: None)
    with pytest.raises(envelope.UnsafeModelError, match="TorchScript") as info:
        sealed_torch.load(sealed_as_torch(torchscript_bytes(), alice), alice)
    assert isinstance(info.value.__cause__, RuntimeError)


# --- PyTorch versions whose weights_only loading runs code (CVE-2025-32434, CVE-2026-24747) ---


@pytest.mark.parametrize("version", ["2.5.1", "2.6.0", "2.9.1+cpu", "1.13.1", "nonsense"])
def test_an_affected_pytorch_is_refused_before_anything_is_read(alice, monkeypatch, torch_load_calls, version):
    sealed = io.BytesIO()
    sealed_torch.save({"w": torch.ones(2)}, sealed, alice.public_key())
    monkeypatch.setattr(torch, "__version__", version)
    with pytest.raises(envelope.MissingDependencyError, match=r"PyTorch 2\.10 or later.*envelope-ml\[torch\]"):
        sealed_torch.load(sealed.getvalue(), alice)
    assert torch_load_calls == []


@pytest.mark.parametrize("version", ["2.10.0", "2.13.0+cpu", "2.14.0a0+git1234", "3.0.0"])
def test_a_fixed_pytorch_is_accepted(alice, monkeypatch, version):
    sealed = io.BytesIO()
    sealed_torch.save({"w": torch.ones(2)}, sealed, alice.public_key())
    monkeypatch.setattr(torch, "__version__", version)
    assert torch.equal(sealed_torch.load(sealed.getvalue(), alice)["w"], torch.ones(2))


def test_the_torch_extra_requires_the_same_floor():
    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    (requirement,) = [r for r in pyproject["project"]["optional-dependencies"]["torch"] if r.startswith("torch")]
    floor = re.fullmatch(r"torch>=(\d+)\.(\d+)", requirement)
    assert floor is not None and (int(floor[1]), int(floor[2])) == sealed_torch.MIN_TORCH_VERSION


def test_a_trusted_torchscript_file_can_still_be_read_with_torch_jit_load(alice):
    """The way out the refusal points to: torch.jit.load on an EnvelopeReader, a deliberate choice."""
    sealed = sealed_as_torch(torchscript_bytes(), alice)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(envelope.EnvelopeReader(io.BytesIO(sealed), alice))
    assert torch.equal(module(torch.zeros(2)), torch.ones(2))


# --- issue 20: decrypted into an anonymous memory file, storages mapped onto it -----------------


def test_a_load_maps_the_tensors_onto_one_anonymous_memory_file(alice, torch_load_calls):
    tensors = {"a": torch.randn(300, 7), "b": torch.arange(1000, dtype=torch.int16), "c": torch.tensor(1.5)}
    sealed = io.BytesIO()
    sealed_torch.save(tensors, sealed, alice.public_key(), chunk_size=4096)
    loaded = sealed_torch.load(sealed.getvalue(), alice, threads=2)
    assert all(torch.equal(loaded[k], tensors[k]) for k in tensors)
    (path,) = torch_load_calls
    assert isinstance(path, str) and path.startswith("/proc/self/fd/")  # a memfd: no name on any filesystem
    loaded["a"][0, 0] = 42.0  # copy-on-write pages: the tensors are the caller's to change
    assert loaded["a"][0, 0] == 42.0


def test_without_memfd_the_archive_is_read_through_a_verified_reader(alice, monkeypatch, torch_load_calls):
    monkeypatch.delattr(sealed_torch.os, "memfd_create")
    sealed = io.BytesIO()
    sealed_torch.save({"w": torch.arange(5000.0)}, sealed, alice.public_key(), chunk_size=1024)
    assert torch.equal(sealed_torch.load(sealed.getvalue(), alice)["w"], torch.arange(5000.0))
    assert not isinstance(torch_load_calls[0], str)


def test_a_compressed_record_is_refused(alice, torch_load_calls):
    source = io.BytesIO(PLAIN)
    out = io.BytesIO()
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as rezip:
        for name in archive.namelist():
            rezip.writestr(name, archive.read(name))
    with pytest.raises(envelope.UnsafeModelError, match="a record is compressed"):
        sealed_torch.load(sealed_as_torch(out.getvalue(), alice), alice)
    assert torch_load_calls == []


def test_device_argument(alice):
    sealed = io.BytesIO()
    sealed_torch.save({"w": torch.ones(3)}, sealed, alice.public_key())
    assert sealed_torch.load(sealed.getvalue(), alice, device="cpu")["w"].device.type == "cpu"
    for device, message in [("meta", "holds no data"), ("nonsense", "not a PyTorch device")]:
        with pytest.raises(envelope.UsageError, match=message):
            sealed_torch.load(sealed.getvalue(), alice, device=device)
    with pytest.raises(envelope.UsageError, match="not both"):
        sealed_torch.load(sealed.getvalue(), alice, device="cpu", map_location="cpu")
    if not torch.cuda.is_available():
        with pytest.raises(envelope.UsageError, match="no CUDA device"):
            sealed_torch.load(sealed.getvalue(), alice, device="cuda")
