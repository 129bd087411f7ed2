"""``python -m envelope``: the ``envelope`` program (as ``python -m envelope.cli``)."""

from __future__ import annotations

import sys

from .cli.main import main

if __name__ == "__main__":  # importing the module (pkgutil walks, documentation tools) runs nothing
    sys.exit(main())
