"""The public face: what it exports, what it imports, how errors are arranged."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import envelope


def test_public_names_exist():
    for name in [*envelope.__all__, "open", "inspect"]:
        assert hasattr(envelope, name), name


def test_one_base_error():
    errors = [
        envelope.MalformedError,
        envelope.UnsupportedError,
        envelope.LimitError,
        envelope.NoMatchingKeyError,
        envelope.AuthenticationError,
        envelope.InvalidKeyError,
        envelope.UsageError,
    ]
    assert all(issubclass(e, envelope.EnvelopeError) for e in errors)
    assert issubclass(envelope.UsageError, ValueError)


def test_import_is_light():
    """`import envelope` pulls in no ML framework and no test tooling."""
    code = (
        "import sys, envelope; heavy = {'tensorflow', 'keras', 'torch', 'onnx', 'safetensors', 'numpy', 'hypothesis'};"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_docstring_example_runs():
    import doctest

    assert doctest.testmod(envelope, verbose=False).failed == 0


def test_oaep_only_no_pkcs1_v15_anywhere():
    """Key hygiene: the package never uses RSA PKCS#1 v1.5 padding (Bleichenbacher's oracle)."""
    from pathlib import Path

    sources = Path(envelope.__file__).parent.rglob("*.py")
    offenders = [str(p) for p in sources if "PKCS1v15" in p.read_text() or "pkcs1v15" in p.read_text().lower()]
    assert offenders == []
    assert "OAEP" in (Path(envelope.__file__).parent / "recipients.py").read_text()


def test_all_lists_exactly_the_lazy_exports():
    assert set(envelope.__all__) == {*envelope._MODULE_OF, "__version__"} - {"open", "inspect"}


def test_star_import_shadows_neither_open_nor_inspect():
    """`from envelope import *` must not replace the builtin open or the inspect module."""
    namespace: dict[str, object] = {}
    exec("import inspect\nfrom envelope import *", namespace)
    assert "open" not in namespace
    assert namespace["inspect"].__name__ == "inspect"  # type: ignore[attr-defined]
    assert callable(envelope.open) and callable(envelope.inspect)


_EXTRAS_MODULES = {"fsspec", "s3fs", "dask", "distributed", "pyarrow"}


def test_public_names_survive_submodule_imports():
    """A submodule named like a public function would replace it on the package (inspect did)."""
    import importlib
    import pkgutil
    import types

    for module in pkgutil.iter_modules(envelope.__path__):
        try:
            importlib.import_module(f"envelope.{module.name}")
        except (envelope.MissingDependencyError, ModuleNotFoundError) as exc:
            # An install without the fsspec or dask extra (tools/floors.sh runs this test in one): the
            # modules for those extras cannot be imported there. tools/test.sh installs every extra.
            missing = getattr(exc, "name", None) or getattr(exc.__cause__, "name", None) or ""
            if os.environ.get("ENVELOPE_REQUIRE_FRAMEWORKS") or missing.split(".")[0] not in _EXTRAS_MODULES:
                raise
    assert not [name for name in envelope.__all__ if isinstance(getattr(envelope, name), types.ModuleType)]
    assert callable(envelope.inspect)


def test_envelope_info_help_loads_no_cryptography_or_framework():
    """`envelope-info --help` (and inspecting a file) needs neither RSA/X.509 code nor an ML framework."""
    vector = Path(__file__).resolve().parent.parent / "spec" / "vectors" / "v1" / "signed-ed25519.envelope"
    for argv in (["--help"], [str(vector)], ["--json", str(vector)]):
        code = (
            "import sys\n"
            "from envelope.cli import info\n"
            f"try:\n    status = info.main({argv!r})\nexcept SystemExit as exit:\n    status = exit.code\n"
            "heavy = ('cryptography', 'tensorflow', 'torch', 'keras')\n"
            "print(status, sorted(m for m in sys.modules if m.startswith(heavy)))"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        assert out.strip().splitlines()[-1] == "0 []", argv


def _sdk_imports(tree):
    """(line, absolute module, imported names) of every import of the envelope package in ``tree``;
    a single-dot relative import is a sibling of the importing module, not the SDK."""
    import ast

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level != 1:
            module = node.module or ""
            if node.level >= 2:
                module = "envelope" + (f".{module}" if module else "")
            yield node.lineno, module, [alias.name for alias in node.names]


def test_the_cli_and_the_adapters_stand_on_the_public_face():
    """cli/ and models/ import the SDK only as its users can: ``envelope`` and its public modules,
    never an underscore module or name (their own helpers, such as models._common, excepted)."""
    import ast

    def private(name: str) -> bool:
        return name.startswith("_") and not name.endswith("__")

    package = Path(envelope.__file__).parent
    reaches = []
    for sub in ("cli", "models"):
        for path in sorted((package / sub).rglob("*.py")):
            for line, module, names in _sdk_imports(ast.parse(path.read_text())):
                parts = module.split(".")
                if parts[0] != "envelope" or parts[1:2] == [sub]:  # not the SDK, or their own helpers
                    continue
                if any(private(p) for p in parts[1:]) or any(private(n) for n in names):
                    reaches.append(f"{path.name}:{line} {module}: {names}")
    assert reaches == []
