"""Issue 20, item 4: Hugging Face model folders sealed as one envelope folder (spec/FORMAT.md
section 11) by save_pretrained and loaded back by from_pretrained / tokenizer_from_pretrained.
Every model and tokenizer here is built locally from a config; nothing comes from the hub."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from frameworks import need
from tracing import written_paths

import envelope

os.environ["HF_HUB_OFFLINE"] = "1"  # a test that reached for the hub would fail, not download
torch = need("torch")
need("safetensors")
transformers = need("transformers")
tokenizers = need("tokenizers")
from envelope.models import transformers as sealed_hf  # noqa: E402

CHUNK = 4096  # small chunks keep the folders of these tiny models small (each member starts a chunk)
TEXT = torch.tensor([[3, 1, 4, 1, 5, 9, 2, 6]])


def gpt2() -> Any:
    """GPT-2 whose output layer is its input embedding (tied weights), two blocks."""
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=64, n_positions=32)
    config.bos_token_id = config.eos_token_id = 0
    return transformers.GPT2LMHeadModel(config).eval()


def llama() -> Any:
    """A second architecture: rotary embeddings (a buffer that is not in the checkpoint), untied."""
    torch.manual_seed(1)
    config = transformers.LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=32,
        tie_word_embeddings=False,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=2,
    )
    return transformers.LlamaForCausalLM(config).eval()


def bert() -> Any:
    torch.manual_seed(2)
    config = transformers.BertConfig(
        vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    return transformers.BertModel(config).eval()


def tokenizer() -> Any:
    """A byte-pair tokenizer trained here on a few strings."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.Whitespace()
    corpus = ["sealed models load without plaintext", "one shard at a time", "the folder is one file"]
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=80, special_tokens=["<unk>", "<eos>"]))
    return transformers.PreTrainedTokenizerFast(tokenizer_object=bpe, unk_token="<unk>", eos_token="<eos>")


def outputs(model: Any) -> Any:
    with torch.no_grad():
        result = model(TEXT)
    return result.logits if hasattr(result, "logits") else result.last_hidden_state


def save(model: Any, target: Path, key: Any, **options: Any) -> Path:
    sealed_hf.save_pretrained(model, target, key.public_key(), chunk_size=CHUNK, **options)
    return target


# --- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("shard", [None, "4KB"], ids=["one-file", "sharded"])
@pytest.mark.parametrize("make", [gpt2, llama, bert])
def test_a_sealed_model_gives_the_same_outputs(alice, tmp_path, make, shard):
    model = make()
    options = {} if shard is None else {"max_shard_size": shard}
    sealed = save(model, tmp_path / "model.env", alice, **options)
    with envelope.open_folder(sealed, alice) as folder:
        names = folder.names()
        config = json.loads(folder.read("config.json"))
    assert config["architectures"] == [type(model).__name__]
    if shard is None:
        assert "model.safetensors" in names and "model.safetensors.index.json" not in names
    else:
        shards = [n for n in names if n.startswith("model-")]
        assert len(shards) > 2 and "model.safetensors.index.json" in names
        with envelope.open_folder(sealed, alice) as folder:
            index = json.loads(folder.read("model.safetensors.index.json"))
        assert sorted(set(index["weight_map"].values())) == shards
    loaded = sealed_hf.from_pretrained(sealed, alice)
    assert type(loaded) is type(model) and not loaded.training
    assert torch.equal(outputs(loaded), outputs(model))
    assert not [name for name, p in loaded.named_parameters() if p.device.type == "meta"]


def test_tied_weights_are_sealed_once_and_tied_again(alice, tmp_path):
    model = gpt2()
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()
    sealed = save(model, tmp_path / "gpt2.env", alice)
    with envelope.open_folder(sealed, alice) as folder:
        header_len = int.from_bytes(folder.read("model.safetensors")[:8], "little")
        header = json.loads(folder.read("model.safetensors")[8 : 8 + header_len])
    assert "transformer.wte.weight" in header and "lm_head.weight" not in header
    loaded = sealed_hf.from_pretrained(sealed, alice)
    assert loaded.lm_head.weight.data_ptr() == loaded.transformer.wte.weight.data_ptr()


@pytest.mark.parametrize("shard", ["5GB", "20KB"])
def test_the_sealed_folder_is_what_transformers_saves(alice, tmp_path, shard):
    """The same files as model.save_pretrained + tokenizer.save_pretrained, the weights and the
    index byte for byte, sharded or not."""
    model, tok = gpt2(), tokenizer()
    plain = tmp_path / "plain"
    model.save_pretrained(plain, max_shard_size=shard)
    tok.save_pretrained(plain)
    sealed = save(model, tmp_path / "gpt2.env", alice, tokenizer=tok, max_shard_size=shard)
    with envelope.open_folder(sealed, alice) as folder:
        assert sorted(folder.names()) == sorted(p.name for p in plain.iterdir())
        weights = [n for n in folder.names() if n.endswith(".safetensors") or n.endswith(".index.json")]
        if shard == "5GB":
            assert weights == ["model.safetensors"]
        else:
            assert len(weights) > 3 and "model.safetensors.index.json" in weights
        for name in weights:
            assert folder.read(name) == (plain / name).read_bytes(), name
        for name in ("config.json", "generation_config.json", "tokenizer.json"):
            assert json.loads(folder.read(name)) == json.loads((plain / name).read_text()), name


def test_a_plain_folder_sealed_by_seal_folder_loads_too(alice, tmp_path):
    model = llama()
    plain = tmp_path / "plain"
    model.save_pretrained(plain, max_shard_size="20KB")
    envelope.seal_folder(plain, tmp_path / "llama.env", alice.public_key(), chunk_size=CHUNK)
    loaded = sealed_hf.from_pretrained(tmp_path / "llama.env", alice)
    assert torch.equal(outputs(loaded), outputs(model))


def test_from_bytes_and_from_a_url(alice, tmp_path):
    need("fsspec")
    model = gpt2()
    save(model, tmp_path / "gpt2.env", alice, max_shard_size=8000)
    sealed = (tmp_path / "gpt2.env").read_bytes()
    assert torch.equal(outputs(sealed_hf.from_pretrained(sealed, alice)), outputs(model))
    url = "memory://sealed-models/gpt2.env"
    save(model, url, alice, max_shard_size=8000)  # type: ignore[arg-type]
    assert torch.equal(outputs(sealed_hf.from_pretrained(url, alice)), outputs(model))


def test_dtype_converts_and_model_class_is_honoured(alice, tmp_path):
    model = gpt2()
    sealed = save(model, tmp_path / "gpt2.env", alice, max_shard_size=8000)
    half = sealed_hf.from_pretrained(sealed, alice, dtype=torch.float16)
    assert {p.dtype for p in half.parameters()} == {torch.float16}
    on_cpu = sealed_hf.from_pretrained(sealed, alice, device=torch.device("cpu"))
    assert torch.equal(outputs(on_cpu), outputs(model))
    with pytest.raises(envelope.UsageError, match="device"):
        sealed_hf.from_pretrained(sealed, alice, device="meta")
    with pytest.raises(envelope.UsageError, match="not a PyTorch device"):
        sealed_hf.from_pretrained(sealed, alice, device="abacus")
    base = sealed_hf.from_pretrained(sealed, alice, model_class=transformers.GPT2Model)
    assert type(base) is transformers.GPT2Model
    assert torch.equal(base.wte.weight, model.transformer.wte.weight)


def test_the_tokenizer_round_trips(alice, tmp_path):
    tok = tokenizer()
    sealed = save(gpt2(), tmp_path / "gpt2.env", alice, tokenizer=tok)
    loaded = sealed_hf.tokenizer_from_pretrained(sealed, alice)
    text = "sealed models load one shard at a time"
    assert loaded(text)["input_ids"] == tok(text)["input_ids"]
    assert loaded.eos_token == "<eos>"
    again = sealed_hf.tokenizer_from_pretrained(sealed, alice, trust_remote_code=False)  # what is done anyway
    assert again(text)["input_ids"] == tok(text)["input_ids"]
    tok.chat_template = {"default": "{{ messages }}", "tool_use": "{{ tools }}"}  # two: a file in a subfolder
    templated = save(gpt2(), tmp_path / "templates.env", alice, tokenizer=tok)
    assert sealed_hf.tokenizer_from_pretrained(templated, alice).chat_template == tok.chat_template
    with pytest.raises(envelope.UsageError, match="no tokenizer"):
        sealed_hf.tokenizer_from_pretrained(save(gpt2(), tmp_path / "bare.env", alice), alice)


def test_a_staging_folder_left_by_a_killed_process_is_removed_by_the_next_call(alice, tmp_path, monkeypatch):
    """tokenizer files are staged in a private tmpfs folder named for the process; one left by a
    process that died (SIGKILL, SIGTERM) is removed by the next call. Folders of live processes stay."""
    import subprocess
    import sys

    ram = tmp_path / "ram"
    ram.mkdir()
    monkeypatch.setattr(sealed_hf, "ram_filesystem", lambda: str(ram))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    left = ram / f"envelope-{int(dead.stdout)}-abcd1234"
    left.mkdir(mode=0o700)
    (left / "tokenizer.json").write_text("the vocabulary")
    alive = ram / f"envelope-{os.getppid()}-abcd1234"  # the test runner's parent: alive
    alive.mkdir(mode=0o700)
    other = ram / "envelope-not-a-pid"
    other.mkdir()
    sealed = save(gpt2(), tmp_path / "gpt2.env", alice, tokenizer=tokenizer())
    sealed_hf.tokenizer_from_pretrained(sealed, alice)
    assert sorted(p.name for p in ram.iterdir()) == sorted([alive.name, other.name])


def test_generation_config_comes_back(alice, tmp_path):
    model = gpt2()
    model.generation_config.max_new_tokens = 7
    loaded = sealed_hf.from_pretrained(save(model, tmp_path / "gpt2.env", alice), alice)
    assert loaded.generation_config.max_new_tokens == 7


# --- refusals ----------------------------------------------------------------------------------


def test_signed_folders_load_only_from_the_pinned_signer(alice, tmp_path):
    publisher, impostor = envelope.generate_signing_key(), envelope.generate_signing_key()
    model = gpt2()
    signed = save(model, tmp_path / "signed.env", alice, sign_with=publisher, max_shard_size=8000)
    forged = save(model, tmp_path / "forged.env", alice, sign_with=impostor)
    loaded = sealed_hf.from_pretrained(signed, alice, signed_by=publisher.public_key())
    assert torch.equal(outputs(loaded), outputs(model))
    with pytest.raises(envelope.SignerError, match="not among"):
        sealed_hf.from_pretrained(forged, alice, signed_by=publisher.public_key())
    with pytest.raises(envelope.SignerError, match="not among"):
        sealed_hf.tokenizer_from_pretrained(forged, alice, signed_by=publisher.public_key())


def test_the_wrong_key_is_a_typed_error(alice, bob, tmp_path):
    sealed = save(gpt2(), tmp_path / "gpt2.env", alice)
    with pytest.raises(envelope.NoMatchingKeyError):
        sealed_hf.from_pretrained(sealed, bob)


def test_a_changed_or_cut_folder_is_refused(alice, tmp_path):
    """The folder layer authenticates every member: a byte changed in a shard's chunk, or the
    folder cut short (its last members dropped), fails the load before a model is returned."""
    sealed = save(gpt2(), tmp_path / "gpt2.env", alice, max_shard_size=8000)
    data = bytearray(sealed.read_bytes())
    changed, cut = tmp_path / "changed.env", tmp_path / "cut.env"
    data[len(data) // 2] ^= 1
    changed.write_bytes(bytes(data))
    cut.write_bytes(sealed.read_bytes()[: len(data) // 2])
    for bad in (changed, cut):
        with pytest.raises(envelope.AuthenticationError):
            sealed_hf.from_pretrained(bad, alice)


def _reseal(alice: Any, sealed: Path, target: Path, change: dict[str, bytes | None]) -> Path:
    """The folder's members with some replaced (None: dropped), sealed again."""
    with envelope.open_folder(sealed, alice) as folder:
        files = {name: folder.read(name) for name in folder.names()}
    for name, data in change.items():
        if data is None:
            files.pop(name)
        else:
            files[name] = data
    entries = [envelope.FolderEntry(n, len(d), lambda out, d=d: out.write(d)) for n, d in files.items()]
    envelope.seal_entries(entries, target, alice.public_key(), chunk_size=CHUNK)
    return target


def test_a_shard_missing_from_the_index_is_refused(alice, tmp_path):
    sealed = save(gpt2(), tmp_path / "gpt2.env", alice, max_shard_size=8000)
    with envelope.open_folder(sealed, alice) as folder:
        shard = next(n for n in folder.names() if n.startswith("model-"))
    dropped = _reseal(alice, sealed, tmp_path / "dropped.env", {shard: None})
    with pytest.raises(envelope.MalformedError, match="not in the folder"):
        sealed_hf.from_pretrained(dropped, alice)


def test_remote_code_is_never_run(alice, tmp_path):
    """A config naming remote code (auto_map) is refused unless the caller brings the class; then
    the folder's Python file, which would leave a mark if run, is not run either."""
    model = gpt2()
    sealed = save(model, tmp_path / "gpt2.env", alice)
    mark = tmp_path / "ran"
    with envelope.open_folder(sealed, alice) as folder:
        config = json.loads(folder.read("config.json"))
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilModel", "AutoConfig": "modeling_evil.Cfg"}
    evil = f"open({str(mark)!r}, 'w').write('ran')\n".encode()
    remote = _reseal(
        alice, sealed, tmp_path / "remote.env", {"config.json": json.dumps(config).encode(), "modeling_evil.py": evil}
    )
    with pytest.raises(envelope.UnsafeModelError, match="auto_map"):
        sealed_hf.from_pretrained(remote, alice)
    with pytest.raises(envelope.UnsafeModelError, match="trust_remote_code"):
        sealed_hf.from_pretrained(remote, alice, trust_remote_code=True)
    loaded = sealed_hf.from_pretrained(remote, alice, model_class=transformers.GPT2LMHeadModel)
    assert torch.equal(outputs(loaded), outputs(model))
    assert not mark.exists()


def test_without_architectures_the_base_model_of_the_type_loads(alice, tmp_path):
    model = gpt2()
    sealed = save(model, tmp_path / "gpt2.env", alice)
    with envelope.open_folder(sealed, alice) as folder:
        config = json.loads(folder.read("config.json"))
    config["architectures"] = ["os", "NoSuchModel"]  # names that are not transformers' model classes
    other = _reseal(alice, sealed, tmp_path / "other.env", {"config.json": json.dumps(config).encode()})
    base = sealed_hf.from_pretrained(other, alice)
    assert type(base) is transformers.GPT2Model
    assert torch.equal(base.h[0].attn.c_attn.weight, model.transformer.h[0].attn.c_attn.weight)


def test_a_checkpoint_that_does_not_fit_its_config_is_a_typed_error(alice, tmp_path):
    sealed = save(gpt2(), tmp_path / "gpt2.env", alice)
    with envelope.open_folder(sealed, alice) as folder:
        config = json.loads(folder.read("config.json"))
    config["n_embd"] = 64  # the weights are 32 wide
    wider = _reseal(alice, sealed, tmp_path / "wider.env", {"config.json": json.dumps(config).encode()})
    with pytest.raises(envelope.UnsafeModelError, match="could not build the model"):
        sealed_hf.from_pretrained(wider, alice)
    config["n_embd"] = "wide"
    bad = _reseal(alice, sealed, tmp_path / "bad.env", {"config.json": json.dumps(config).encode()})
    with pytest.raises(envelope.UnsafeModelError, match=r"could not (read config\.json|build the model)"):
        sealed_hf.from_pretrained(bad, alice)


def test_missing_weights_are_initialised_as_transformers_does(alice, tmp_path):
    """As transformers' from_pretrained: a checkpoint without some weights of the model (a new
    head, say) loads, those weights initialised, the others from the checkpoint."""
    from safetensors.torch import save as safetensors_bytes

    model = gpt2()
    sealed = save(model, tmp_path / "gpt2.env", alice)
    state = {k: v for k, v in model.state_dict().items() if k not in ("lm_head.weight", "transformer.ln_f.bias")}
    fewer = _reseal(alice, sealed, tmp_path / "fewer.env", {"model.safetensors": safetensors_bytes(state)})
    loaded = sealed_hf.from_pretrained(fewer, alice)
    assert loaded.transformer.ln_f.bias.device.type == "cpu"
    assert torch.equal(loaded.transformer.h[1].mlp.c_fc.weight, model.transformer.h[1].mlp.c_fc.weight)


def test_pickled_weights_are_refused(alice, tmp_path):
    sealed = save(gpt2(), tmp_path / "gpt2.env", alice)
    pickled = _reseal(
        alice, sealed, tmp_path / "pickled.env", {"model.safetensors": None, "pytorch_model.bin": b"\x80\x04."}
    )
    with pytest.raises(envelope.UnsafeModelError, match="pickle"):
        sealed_hf.from_pretrained(pickled, alice)


def test_a_folder_of_another_adapter_or_without_a_model_is_refused(alice, tmp_path):
    sealed = save(gpt2(), tmp_path / "gpt2.env", alice)
    no_config = _reseal(alice, sealed, tmp_path / "noconfig.env", {"config.json": None})
    with pytest.raises(envelope.UsageError, match=r"config\.json"):
        sealed_hf.from_pretrained(no_config, alice)
    unknown = _reseal(alice, sealed, tmp_path / "unknown.env", {"config.json": b'{"model_type": "\\u001b[2J"}'})
    with pytest.raises(envelope.UsageError, match="model_type") as caught:
        sealed_hf.from_pretrained(unknown, alice)
    assert "\x1b" not in str(caught.value)  # a file-controlled string, escaped
    with pytest.raises(envelope.UsageError, match="max_shard_size"):
        sealed_hf.save_pretrained(gpt2(), tmp_path / "x.env", alice.public_key(), max_shard_size="lots")
    with pytest.raises(envelope.UsageError, match="PreTrainedModel"):
        sealed_hf.save_pretrained({"w": torch.ones(1)}, tmp_path / "x.env", alice.public_key())


# --- memory and disk, in a fresh process ---------------------------------------------------------

MIB = 1 << 20
SECRET_FLOAT = 1234.5678125  # a float whose bytes are easy to look for
SECRET_WORD = "zanzibarquux"  # a word of the tokenizer's vocabulary

WATCHED_SCRIPT = """
import json, os, sys
import torch, transformers, envelope
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from envelope.models import transformers as sealed_hf

def status(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))

key = envelope.load_private_key(sys.argv[2])
out = sys.argv[1]
torch.manual_seed(0)
config = transformers.GPT2Config(n_layer=4, n_embd=512, n_head=4, vocab_size=16384, n_positions=64)
model = transformers.GPT2LMHeadModel(config).eval()
with torch.no_grad():
    model.transformer.wte.weight[5, :4] = float.fromhex(os.environ["SECRET_FLOAT"])
sealed_size = sum(t.numel() * t.element_size() for n, t in model.state_dict().items() if n != "lm_head.weight")
bpe = Tokenizer(models.BPE(unk_token="<unk>"))
bpe.pre_tokenizer = pre_tokenizers.Whitespace()
corpus = ["the " + os.environ["SECRET_WORD"] + " word", "another line"]
bpe.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=60, special_tokens=["<unk>"]))
tok = transformers.PreTrainedTokenizerFast(tokenizer_object=bpe, unk_token="<unk>")
tiny = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=16))
print("BEGIN-ENVELOPE-WORK", flush=True)
sealed_hf.save_pretrained(tiny, out + "/tiny.env", key.public_key())
sealed_hf.save_pretrained(model, out + "/gpt2.env", key.public_key(), tokenizer=tok, max_shard_size=4 << 20)
sealed_hf.from_pretrained(out + "/tiny.env", key)  # the loader's code imported before the measure
x = torch.tensor([[1, 2, 3, 5]])
with torch.no_grad():
    expected = model(x).logits
del model
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak RSS to the current RSS
before = status("VmRSS")
loaded = sealed_hf.from_pretrained(out + "/gpt2.env", key)
peak = status("VmHWM") - before
with torch.no_grad():
    same = bool(torch.equal(loaded(x).logits, expected))
words = sealed_hf.tokenizer_from_pretrained(out + "/gpt2.env", key)
known = os.environ["SECRET_WORD"] in words.get_vocab()
print(json.dumps({"model": sealed_size, "peak": peak, "same": same, "word": known}))
"""


def _watched(tmp_path: Path, alice: Any, *, strace: bool) -> tuple[dict[str, Any], str]:
    import subprocess
    import sys

    out, home = tmp_path / "out", tmp_path / "home"
    out.mkdir()
    home.mkdir()
    key = tmp_path / "alice.pem"
    key.write_bytes(envelope.private_key_pem(alice))
    script = tmp_path / "work.py"
    script.write_text(WATCHED_SCRIPT)  # the secrets come through the environment: no file holds them
    command = [sys.executable, str(script), str(out), str(key)]
    trace = tmp_path / "trace.log"
    if strace:
        calls = "openat,open,creat,mkdir,mkdirat,rename,renameat,renameat2,link,linkat,write"
        command = ["strace", "-f", "-e", f"trace={calls}", "-e", "write=none", "-o", str(trace), *command]
    env = {
        **os.environ,
        "SECRET_FLOAT": SECRET_FLOAT.hex(),
        "SECRET_WORD": SECRET_WORD,
        "TMPDIR": str(home),
        "HF_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
    }
    run = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["same"] and report["word"]
    return report, trace.read_text() if strace else ""


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux's peak-RSS reset")
def test_from_pretrained_peaks_at_the_model_and_a_little_more(alice, tmp_path):
    """An 80 MiB model in 4 MiB shards (the embedding, 32 MiB, a shard of its own): a load that
    held a second copy of the weights would peak at the model + 80 MiB."""
    report, _ = _watched(tmp_path, alice, strace=False)
    assert report["model"] > 80 * MIB
    assert report["peak"] <= report["model"] + 32 * MIB, report["peak"] / MIB


@pytest.mark.skipif(__import__("shutil").which("strace") is None, reason="strace is not installed")
def test_no_plaintext_file_is_written_by_save_or_load(alice, tmp_path):
    """System-call trace from the start of the first save to the end of the last load: every file
    opened for writing is a sealed output, or in a private tmpfs folder (the tokenizer's files); the
    weights' and the vocabulary's bytes are in no file under the test's folder."""
    import re
    import struct

    _, trace = _watched(tmp_path, alice, strace=True)
    # From the marker on: torch's import, before it, probes TMPDIR and makes a cache folder there.
    writes = written_paths(trace)
    out = re.escape(str(tmp_path / "out"))
    allowed = re.compile(
        rf"^({out}(/\.[^/]*\.partial)?|/dev/shm/envelope-[^/]+(/.*)?|/dev/null|/proc/self/clear_refs)$"
    )
    assert writes, "the trace saw no file being written at all"
    assert [w for w in writes if not allowed.match(w)] == []
    staged = {w for w in writes if re.fullmatch(r"/dev/shm/envelope-[^/]+", w)}
    assert staged  # the tokenizer's files were staged in RAM (on save and on load)...
    assert not [folder for folder in staged if os.path.exists(folder)]  # ...in folders since removed
    weights = struct.pack("<f", SECRET_FLOAT) * 4
    for root, _, files in os.walk(tmp_path):
        for name in files:
            data = (Path(root) / name).read_bytes()
            assert weights not in data and SECRET_WORD.encode() not in data, name
