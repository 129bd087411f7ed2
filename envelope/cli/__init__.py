"""The command-line tools: ``envelope`` (keygen, seal, open, rewrap, verify) and ``envelope-info``.

One module per concern: ``main`` and ``info`` are the two programs; ``keygen``, ``seal``,
``open``, ``rewrap`` and ``verify`` are the subcommands; the rest are their shared helpers. Modules
import the SDK inside the functions that need it, so ``--help`` stays fast. Documented in
``docs/CLI.md``.
"""
