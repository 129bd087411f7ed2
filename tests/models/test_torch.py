"""envelope.models.torch: state dicts round-trip with weights_only loading; pickles need an opt-in."""

from __future__ import annotations

import io

import pytest
from frameworks import need

import envelope

torch = need("torch")
from envelope.models import torch as sealed_torch  # noqa: E402


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
    with pytest.raises(envelope.UsageError, match="unsafe_allow_pickle"):
        sealed_torch.load(buffer.getvalue(), alice)
    module = sealed_torch.load(buffer.getvalue(), alice, unsafe_allow_pickle=True)
    assert isinstance(module, Net)


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
