"""``python -m envelope``: the ``envelope`` program (as ``python -m envelope.cli``)."""

from __future__ import annotations

import sys

from .cli.main import main

sys.exit(main())
