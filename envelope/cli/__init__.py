"""The command-line tools: ``envelope`` (keygen, seal, open, rewrap, verify) and ``envelope-info``.

One module per concern: ``main`` and ``info`` are the two programs; ``keygen``, ``seal``,
``open``, ``rewrap`` and ``verify`` are the subcommands; ``completion`` and ``manpage`` generate
shell completion and the manual pages from the parsers; the rest are their shared helpers. Modules
import the SDK inside the functions that need it, and only its public face (``envelope``,
``envelope.limits``), so ``--help`` stays fast. Documented in ``docs/CLI.md``.
"""
