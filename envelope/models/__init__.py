"""Model adapters: save a model sealed, load it back, with no plaintext on disk.

One module per framework, each importing its framework only when called::

    from envelope.models import keras as sealed_keras
    sealed_keras.save(model, "model.keras.env", recipients=public_key)
    model = sealed_keras.load("model.keras.env", private_key)

Every adapter records ``envelope.framework``, ``envelope.framework_version`` and
``envelope.model_format`` in the file's metadata, and its ``load`` checks that the file holds what
it expects. Installing a framework is the job of an extra: ``pip install 'envelope[keras]'``,
``envelope[torch]``, ``envelope[safetensors]``, ``envelope[onnx]``, or ``envelope[all]``.
"""

from __future__ import annotations

__all__ = ["keras", "onnx", "safetensors", "torch"]
