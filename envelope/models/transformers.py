"""Hugging Face transformers: a model folder (config, generation config, tokenizer files, the
weights as safetensors shards and their index) sealed as one envelope folder (spec/FORMAT.md
section 11), and loaded back with ``from_pretrained`` without a plaintext file on disk::

    from envelope.models import transformers as sealed_hf
    sealed_hf.save_pretrained(model, "gpt2.env", public_key, tokenizer=tokenizer, max_shard_size="2GB")
    model = sealed_hf.from_pretrained("gpt2.env", private_key)
    tokenizer = sealed_hf.tokenizer_from_pretrained("gpt2.env", private_key)

Saving serializes the configuration to JSON in memory and writes each shard's safetensors bytes
straight from the tensors into the sealing writer. Loading builds the model with transformers'
own loader (on the meta device, then filled), handing it tensors that are decrypted when it asks
for them: a shard's data are decrypted, by the workers, into one buffer whose pieces become the
parameters (no copy unless a ``dtype`` asks for one), and a shard is released as soon as its last
tensor has been taken, so the load holds the model and at most the shards being converted.

Tokenizer files are the exception: transformers only reads and writes them as files, so they pass
through a private folder (mode 0700) on a RAM-backed filesystem (tmpfs, as Keras assets do in
:mod:`envelope.models.keras`), removed before the call returns; with no tmpfs, the call is refused.

Nothing in a sealed folder is run: a configuration that names remote code (``auto_map``) is
refused unless the caller brings the model class (``model_class=``), pickled ``.bin`` weights are
refused, and ``trust_remote_code=True`` is refused.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import shutil
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from envelope import (
    DEFAULT_CHUNK_SIZE,
    EnvelopeError,
    IdentityLike,
    MalformedError,
    RecipientLike,
    SignedBy,
    Signer,
    SigningKey,
    UnsafeModelError,
    UsageError,
)
from envelope.atomic import PathLike
from envelope.folders import FolderEntry, SealedFolder, open_folder, seal_entries

from ._common import FRAMEWORK, model_metadata, private_ram_folder, ram_filesystem, require
from ._safetensors_format import DTYPE_BITS, PREFIX, TensorInfo, TensorTable, check_header_len, parse_header
from ._safetensors_writing import serialize
from ._tensor_memory import TORCH_TYPES, torch_device

__all__ = ["MODEL_FORMAT", "from_pretrained", "save_pretrained", "tokenizer_from_pretrained"]

MODEL_FORMAT = "huggingface-folder"
DEFAULT_MAX_SHARD_SIZE = "5GB"  # what transformers' own save_pretrained cuts shards at

CONFIG = "config.json"
GENERATION_CONFIG = "generation_config.json"
WEIGHTS = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"
_PICKLED_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")
_REFUSED_KWARGS = ("state_dict", "config", "pretrained_model_name_or_path", "gguf_file", "from_tf", "from_flax")


def _transformers() -> Any:
    return require("transformers", "transformers")


# --- saving ------------------------------------------------------------------------------------


def _weights(transformers: Any, model: Any) -> dict[str, Any]:
    """The state dict transformers' ``save_pretrained`` writes: tied weights once (the one the model
    expects on reload), and converted weights back in the checkpoint's original layout, by
    transformers' own helpers where this version has them."""
    state = model.state_dict()
    remove_tied = getattr(transformers.modeling_utils, "remove_tied_weights_from_state_dict", None)
    state = remove_tied(state, model) if remove_tied is not None else _first_of_shared(state)
    loading = importlib.import_module("transformers.core_model_loading")
    revert = getattr(loading, "revert_weight_conversion", None)
    if revert is not None:
        state = revert(model, state)
    return {name: tensor.detach() for name, tensor in state.items()}


def _first_of_shared(state: Mapping[str, Any]) -> dict[str, Any]:
    """Of tensors that share memory (tied weights), the first only."""
    kept: dict[str, Any] = {}
    seen: list[tuple[str, int, int]] = []
    for name, tensor in state.items():
        if tensor.numel():
            start = tensor.data_ptr()
            span = (str(tensor.device), start, start + tensor.numel() * tensor.element_size())
            if any(d == span[0] and a < span[2] and span[1] < b for d, a, b in seen):
                continue
            seen.append(span)
        kept[name] = tensor
    return kept


def _split(weights: dict[str, Any], max_shard_size: int | str) -> Any:
    """Shards as transformers cuts them (huggingface_hub's splitter, which it calls)."""
    hub = require("huggingface_hub", "transformers")
    if isinstance(max_shard_size, bool) or not isinstance(max_shard_size, (int, str)):
        raise UsageError(f"max_shard_size must be a number of bytes or a size such as '5GB', not {max_shard_size!r}")
    try:
        if isinstance(max_shard_size, int) and max_shard_size <= 0:
            raise ValueError("not positive")
        return hub.split_torch_state_dict_into_shards(
            weights, filename_pattern="model{suffix}.safetensors", max_shard_size=max_shard_size
        )
    except ValueError:
        raise UsageError(
            f"max_shard_size must be a positive number of bytes or a size such as '5GB' or '500MB', "
            f"not {max_shard_size!r}"
        ) from None


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode()


def _config_json(model: Any) -> bytes:
    config = model.config
    saved = config.__class__.from_dict(config.to_dict())  # a copy: the caller's config is not touched
    saved.architectures = [model.__class__.__name__]
    text: str = saved.to_json_string(use_diff=True)
    return text.encode()


def _tokenizer_files(tokenizer: Any) -> dict[str, bytes]:
    """The files ``tokenizer.save_pretrained`` writes, written into a private RAM folder and read
    back (transformers writes tokenizers only as files)."""
    with _ram_folder() as folder:
        tokenizer.save_pretrained(folder)
        files: dict[str, bytes] = {}
        names = sorted(os.listdir(folder))
        templates = os.path.join(folder, _TEMPLATES)
        if os.path.isdir(templates) and not os.path.islink(templates):
            names += sorted(f"{_TEMPLATES}/{name}" for name in os.listdir(templates))
        for name in names:
            path = os.path.join(folder, *name.split("/"))
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as f:
                    files[name] = f.read()
        return files


def save_pretrained(
    model: Any,
    target: PathLike,
    recipients: RecipientLike | Iterable[RecipientLike],
    *,
    tokenizer: Any = None,
    sign_with: Signer | SigningKey | None = None,
    max_shard_size: int | str = DEFAULT_MAX_SHARD_SIZE,
    metadata: Mapping[str, Any] | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    overwrite: bool = False,
    threads: int | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> None:
    """Seal a transformers model (a ``PreTrainedModel``), and its tokenizer if given, as the folder
    ``model.save_pretrained`` would write: ``config.json``, ``generation_config.json`` (a model
    that generates), the tokenizer's files, and the weights as ``model.safetensors`` or, past
    ``max_shard_size`` (bytes, or ``"5GB"``, ``"500MB"``: powers of ten, as transformers reads
    them), ``model-0000k-of-0000n.safetensors`` shards with ``model.safetensors.index.json``: the
    bytes transformers' own ``save_pretrained`` writes (tied weights once, shards cut by its
    splitter). All of it goes into the one sealed file ``target`` (a path or URL, which appears
    only once complete; ``sign_with`` signs it). The shards are written from the tensors' own
    memory as they are sealed; no plaintext file is made (the tokenizer's files pass through a
    private tmpfs folder, see the module's notes)."""
    transformers = _transformers()
    if not isinstance(model, transformers.PreTrainedModel):
        raise UsageError(f"model must be a transformers PreTrainedModel, not {type(model).__name__}")
    weights = _weights(transformers, model)
    split = _split(weights, max_shard_size)
    entries: list[FolderEntry] = []

    def data(name: str, payload: bytes) -> None:
        entries.append(FolderEntry(name, len(payload), lambda out: out.write(payload)))

    data(CONFIG, _config_json(model))
    generation = getattr(model, "generation_config", None)
    if generation is not None and model.can_generate():
        data(GENERATION_CONFIG, generation.to_json_string(use_diff=True).encode())
    for name, tensors in split.filename_to_tensors.items():
        serialized = serialize({t: weights[t].contiguous() for t in tensors}, {"format": "pt"})
        entries.append(FolderEntry(name, serialized.size, serialized.write_to))
    if split.is_sharded:
        total = {"total_parameters": model.num_parameters(), **split.metadata}
        data(WEIGHTS_INDEX, _json_bytes({"metadata": total, "weight_map": split.tensor_to_filename}))
    if tokenizer is not None:
        for name, payload in _tokenizer_files(tokenizer).items():
            if name in {entry.name for entry in entries}:
                raise UsageError(f"the tokenizer writes {name!r}, which the model's files already hold")
            data(name, payload)
    meta = model_metadata(metadata, "transformers", transformers.__version__, MODEL_FORMAT)
    seal_entries(
        entries,
        target,
        recipients,
        metadata=meta,
        sign_with=sign_with,
        chunk_size=chunk_size,
        overwrite=overwrite,
        threads=threads,
        storage_options=storage_options,
    )


# --- loading -----------------------------------------------------------------------------------


def _check_folder(folder: SealedFolder) -> None:
    """A folder sealed by this module, or by ``envelope seal DIR`` (no adapter metadata), holds a
    transformers model; one sealed by another adapter does not."""
    framework = folder.metadata.get(FRAMEWORK)
    if framework is not None and framework != "transformers":
        raise UsageError(f"this folder was sealed by the {framework!r} adapter, not as a transformers model")


def _json_member(folder: SealedFolder, name: str) -> dict[str, Any]:
    if name not in folder:
        raise UsageError(f"this sealed folder has no {name}: it does not hold a transformers model")
    try:
        value = json.loads(folder.read(name))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise MalformedError(f"{name} in this sealed folder is not valid JSON") from None
    if not isinstance(value, dict):
        raise MalformedError(f"{name} in this sealed folder is not a JSON object")
    return value


def _refuse_remote_code(kwargs: dict[str, Any]) -> None:
    """Refuse ``trust_remote_code=True``; a ``False`` given is taken out (it is passed anyway)."""
    if kwargs.pop("trust_remote_code", False):
        raise UnsafeModelError(
            "trust_remote_code=True would run Python code from the sealed folder, which a sealed model never "
            "does: sealing needs only public keys, so the code proves nothing about who wrote it. Install the "
            "model's code as a package you trust and pass its class as model_class="
        )
    given = sorted(k for k in _REFUSED_KWARGS if k in kwargs)
    if given:
        raise UsageError(f"from_pretrained sets {', '.join(given)} itself, from the sealed folder")


def _config(transformers: Any, values: dict[str, Any], model_class: Any) -> Any:
    """The configuration object, from the code installed here: ``model_class``'s configuration
    class, or the one transformers registers for ``model_type``. A configuration that names
    remote code (``auto_map``) needs ``model_class``."""
    if model_class is not None:
        if not (isinstance(model_class, type) and issubclass(model_class, transformers.PreTrainedModel)):
            raise UsageError(f"model_class must be a transformers PreTrainedModel class, not {model_class!r}")
        return getattr(model_class, "config_class").from_dict(values)  # noqa: B009 (mypy sees only a type)
    if "auto_map" in values:
        raise UnsafeModelError(
            "this model's config.json names remote code (auto_map), which is never run from a sealed folder: "
            "pass model_class= with the model's class, from code you installed and trust"
        )
    model_type = values.get("model_type")
    mapping = transformers.CONFIG_MAPPING
    if not isinstance(model_type, str) or model_type not in mapping:
        raise UsageError(
            f"config.json's model_type {model_type!r} is not one this transformers ({transformers.__version__}) "
            "knows: pass model_class="
        )
    return mapping[model_type].from_dict(values)


def _model_class(transformers: Any, config: Any) -> Any:
    """The class ``config.architectures`` names, looked up in the transformers package itself
    (never imported from the folder); else the base model of the configuration's type."""
    for name in getattr(config, "architectures", None) or []:
        found = getattr(transformers, name, None) if isinstance(name, str) and name.isidentifier() else None
        if isinstance(found, type) and issubclass(found, transformers.PreTrainedModel):
            return found
    try:
        return transformers.MODEL_MAPPING[type(config)]
    except KeyError:
        raise UsageError(
            f"no model class of this transformers matches {getattr(config, 'architectures', None)!r}: pass model_class="
        ) from None


def _weight_files(folder: SealedFolder) -> list[str]:
    if WEIGHTS_INDEX in folder:
        index = _json_member(folder, WEIGHTS_INDEX)
        weight_map = index.get("weight_map")
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            raise MalformedError(f"{WEIGHTS_INDEX} in this sealed folder has no valid weight_map")
        files = sorted(set(weight_map.values()))
        missing = [name for name in files if name not in folder]
        if missing:
            raise MalformedError(f"{WEIGHTS_INDEX} lists shards that are not in the folder: {missing[:3]}")
        return files
    if WEIGHTS in folder:
        return [WEIGHTS]
    if any(name in folder for name in _PICKLED_WEIGHTS):
        raise UnsafeModelError(
            "this folder's weights are pickles (pytorch_model.bin), which can run code when loaded; "
            "from_pretrained loads safetensors weights only (convert the model with save_pretrained first)"
        )
    raise UsageError("this sealed folder holds no model.safetensors nor model.safetensors.index.json")


class _Shard:
    """One safetensors member: its header read and checked when the folder is opened, its data
    decrypted (by the workers, into one buffer) when a tensor of it is first asked for, and let go
    of once every tensor of it has been handed out."""

    def __init__(self, folder: SealedFolder, name: str, lock: threading.Lock, threads: int | None) -> None:
        self._folder, self.name, self._lock, self._threads = folder, name, lock, threads
        self.table = self._read_table()
        self._left = len(self.table.tensors)
        self._data: Any = None

    def _read_table(self) -> TensorTable:
        folder, size = self._folder, self._folder.size(self.name)
        if size < PREFIX.size:
            raise UnsafeModelError(f"{self.name!r} is not a valid safetensors file: shorter than its header length")
        prefix = bytearray(PREFIX.size)
        folder.read_into(self.name, prefix, 0)
        (length,) = PREFIX.unpack(prefix)
        check_header_len(length, size)
        raw = bytearray(length)
        folder.read_into(self.name, raw, PREFIX.size)
        return parse_header(bytes(raw), size - PREFIX.size - length)

    def take(self, info: TensorInfo) -> Any:
        """The tensor ``info`` describes, with storage of its own over the shard's buffer."""
        import numpy
        import torch

        with self._lock:
            if self._data is None:
                start = self.table.data_start
                self._data = numpy.empty(self._folder.size(self.name) - start, dtype=numpy.uint8)
                self._folder.read_into(self.name, self._data, start, threads=self._threads)
            data = self._data
            self._left -= 1
            if self._left <= 0:  # (a tensor asked for again after that decrypts the shard again)
                self._data = None  # the tensors hold what they use of it
        dtype = getattr(torch, TORCH_TYPES[info.dtype])
        if info.begin == info.end:
            return torch.empty(info.shape, dtype=dtype)
        piece = data[info.begin : info.end]
        if piece.ctypes.data % (DTYPE_BITS[info.dtype] // 8):
            piece = piece.copy()  # safetensors does not promise alignment
        # frombuffer gives each tensor a storage of its own (transformers tells tied weights
        # apart by storage), over the shard's memory: no copy.
        return torch.frombuffer(piece, dtype=dtype).reshape(info.shape)


class _SealedTensor:
    """A checkpoint tensor not yet decrypted, as transformers' loader takes a safetensors slice:
    ``dtype``, ``shape``, and ``[...]`` to read it."""

    def __init__(self, shard: _Shard, info: TensorInfo, dtype: Any) -> None:
        self._shard, self._info = shard, info
        self.dtype, self.shape = dtype, info.shape

    def is_floating_point(self) -> bool:
        return bool(self.dtype.is_floating_point)

    def get_shape(self) -> list[int]:
        return list(self._info.shape)

    def get_dtype(self) -> str:
        return self._info.dtype

    def __getitem__(self, index: Any) -> Any:
        tensor = self._shard.take(self._info)
        return tensor if index is Ellipsis else tensor[index]


def _lazy_state_dict(folder: SealedFolder, threads: int | None) -> dict[str, _SealedTensor]:
    import torch

    lock = threading.Lock()
    tensors: dict[str, _SealedTensor] = {}
    for name in _weight_files(folder):
        shard = _Shard(folder, name, lock, threads)
        for key, info in shard.table.tensors.items():
            kind = getattr(torch, TORCH_TYPES.get(info.dtype, ""), None)
            if kind is None:
                raise UsageError(f"{name!r}: tensor {key!r} has dtype {info.dtype}, which this PyTorch lacks")
            if key in tensors:
                raise MalformedError(f"tensor {key!r} is in two shards of this folder")
            tensors[key] = _SealedTensor(shard, info, kind)
    return tensors


def from_pretrained(
    source: PathLike | bytes,
    identity: IdentityLike | Iterable[IdentityLike],
    *,
    model_class: Any = None,
    signed_by: SignedBy | None = None,
    device: Any = None,
    dtype: Any = "auto",
    threads: int | None = None,
    storage_options: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    """Load a model from a sealed folder (a path, a URL, or the sealed bytes), as
    ``model_class.from_pretrained(folder)`` loads a plain one, in evaluation mode.

    The folder's header, signature (``signed_by`` pins the signer) and index are verified first;
    ``config.json`` is read into the configuration class transformers has for its ``model_type``
    (or ``model_class``'s); the model class is ``model_class``, else the one ``architectures``
    names in the transformers package, else the configuration's base model. The weights
    (``model.safetensors``, or the shards ``model.safetensors.index.json`` lists) are handed to
    transformers' loader tensor by tensor and decrypted shard by shard into the parameters' own
    memory. ``dtype``: ``"auto"`` (the checkpoint's), or a ``torch.dtype`` to convert to.
    ``device``: where the model goes once loaded on the CPU (``model.to(device)``, parameter by
    parameter; the CUDA path is untested here). Other keyword arguments go to transformers'
    ``from_pretrained`` (``attn_implementation``...); ``trust_remote_code=True`` raises
    :class:`~envelope.UnsafeModelError`.
    """
    _refuse_remote_code(kwargs)
    if "torch_dtype" in kwargs:  # transformers' former name for dtype
        dtype = kwargs.pop("torch_dtype")
    transformers = _transformers()
    with open_folder(source, identity, signed_by=signed_by, storage_options=storage_options) as folder:
        _check_folder(folder)
        with _refused_by_transformers("read config.json"):
            config = _config(transformers, _json_member(folder, CONFIG), model_class)
        chosen = model_class if model_class is not None else _model_class(transformers, config)
        target = None if device is None else torch_device(require("torch", "transformers"), device)
        state = _lazy_state_dict(folder, threads)
        with _quiet(transformers), _refused_by_transformers("build the model"):
            model = chosen.from_pretrained(None, config=config, state_dict=state, dtype=dtype, **kwargs)
        if GENERATION_CONFIG in folder and getattr(model, "generation_config", None) is not None:
            values = _json_member(folder, GENERATION_CONFIG)
            model.generation_config = transformers.GenerationConfig.from_dict(values)
    if target is not None and target.type != "cpu":
        model.to(target)  # parameter by parameter: each CPU copy is freed as its move completes
    model.eval()
    return model


@contextlib.contextmanager
def _refused_by_transformers(what: str) -> Iterator[None]:
    """transformers' own errors about the folder's contents (a checkpoint that does not fit its
    configuration, a configuration it cannot read) as :class:`~envelope.UnsafeModelError`, their
    text escaped (it can quote the folder's names); envelope's errors pass unchanged."""
    try:
        yield
    except (EnvelopeError, MemoryError):
        raise
    except Exception as exc:  # transformers and huggingface_hub raise their own classes too
        detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        raise UnsafeModelError(
            f"transformers could not {what} from this sealed folder: {type(exc).__name__} {detail!r}"
        ) from exc


@contextlib.contextmanager
def _quiet(transformers: Any) -> Iterator[None]:
    """transformers' loading progress bar is noise for a library call; its warnings stay."""
    utils = transformers.utils.logging
    was = utils.is_progress_bar_enabled()
    utils.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            utils.enable_progress_bar()


# --- tokenizers --------------------------------------------------------------------------------

_TEMPLATES = "additional_chat_templates"  # a tokenizer's chat templates beyond the first, one file each
_TOKENIZER_FILES = re.compile(
    r"^(tokenizer\.json|tokenizer_config\.json|special_tokens_map\.json|added_tokens\.json|vocab\.(json|txt)|"
    r"merges\.txt|spiece\.model|tokenizer\.model|sentencepiece\.bpe\.model|chat_template\.(jinja|json)|"
    r"additional_chat_templates/[A-Za-z0-9_.-]+\.jinja)$"
)


@contextlib.contextmanager
def _ram_folder() -> Iterator[str]:
    """A private (0700) folder on a RAM-backed filesystem, removed on the way out."""
    base = ram_filesystem()
    if base is None:
        raise UsageError(
            "tokenizer files pass through a RAM-backed folder (transformers reads and writes them only as "
            "files), and none is available here: set ENVELOPE_RAM_DIR to a tmpfs mount"
        )
    folder = private_ram_folder(base)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def tokenizer_from_pretrained(
    source: PathLike | bytes,
    identity: IdentityLike | Iterable[IdentityLike],
    *,
    signed_by: SignedBy | None = None,
    storage_options: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    """Load the tokenizer of a sealed folder with ``AutoTokenizer.from_pretrained``. Its files
    (``tokenizer.json``, ``tokenizer_config.json``, vocabularies...) are decrypted into a private
    folder on a RAM-backed filesystem for the duration of the call, then removed; the weights
    are not read. A tokenizer configuration that names remote code (``auto_map``) raises
    :class:`~envelope.UnsafeModelError`; other keyword arguments go to ``AutoTokenizer``."""
    _refuse_remote_code(kwargs)
    transformers = _transformers()
    with open_folder(source, identity, signed_by=signed_by, storage_options=storage_options) as folder:
        _check_folder(folder)
        names = [name for name in folder.names() if _TOKENIZER_FILES.match(name)]
        if "tokenizer_config.json" not in names and "tokenizer.json" not in names:
            raise UsageError("this sealed folder holds no tokenizer (no tokenizer.json nor tokenizer_config.json)")
        if "tokenizer_config.json" in names and "auto_map" in _json_member(folder, "tokenizer_config.json"):
            raise UnsafeModelError(
                "this tokenizer's tokenizer_config.json names remote code (auto_map), which is never run from a "
                "sealed folder"
            )
        if CONFIG in folder:
            names.append(CONFIG)  # AutoTokenizer reads the model type from it
            if "auto_map" in _json_member(folder, CONFIG) and "tokenizer_config.json" not in names:
                raise UnsafeModelError("this folder's config.json names remote code (auto_map)")
        with _ram_folder() as staging:
            for name in names:
                path = os.path.join(staging, *name.split("/"))
                os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
                with open(fd, "wb") as f:
                    f.write(folder.read(name))
            with _refused_by_transformers("build the tokenizer"):
                return transformers.AutoTokenizer.from_pretrained(
                    staging, local_files_only=True, trust_remote_code=False, **kwargs
                )
