"""Model adapters: save a model sealed, load it back, with no plaintext on disk.

One module per framework, each importing its framework only when called::

    from envelope.models import keras as sealed_keras
    sealed_keras.save(model, "model.keras.env", recipients=public_key)
    model = sealed_keras.load("model.keras.env", private_key)

Every adapter records ``envelope.framework``, ``envelope.framework_version`` and
``envelope.model_format`` in the file's metadata, and its ``load`` checks that the file holds what
it expects. Sealing needs only public keys, so a file that opens proves nothing about who made it:
loads that would run code from the file raise :class:`~envelope.UnsafeModelError` (a TorchScript
archive always; a full unpickle or a SavedModel graph unless the caller opts in), and Keras loads
with its own ``safe_mode=True`` by default.

Installing a framework is the job of an extra of the ``envelope-ml`` distribution:
``pip install 'envelope-ml[keras]'`` (Keras alone: it needs a backend), ``envelope-ml[tensorflow]``
(Keras and TensorFlow, for SavedModel exports), ``envelope-ml[torch]``, ``envelope-ml[safetensors]``,
``envelope-ml[onnx]``, ``envelope-ml[transformers]``, or ``envelope-ml[all]``.

:mod:`envelope.models.transformers` seals a Hugging Face model folder (configuration, tokenizer,
safetensors shards) as one sealed folder and loads it with ``from_pretrained``.
"""

from __future__ import annotations

__all__ = ["keras", "onnx", "safetensors", "torch", "transformers"]
